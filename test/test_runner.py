"""The policy node's behaviour without a master: PolicyRunner (execution/runner.py) and the Pacer in simulated time.

The clock is the test's: a tick, a model call and a sleep advance it, so nothing here depends on machine load.
Each check reads what the node would report (the runner's status, the stamps of what it sends)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from groot_ros.bench.node_path import camera_message, stream_messages
from groot_ros.core.layout import load_layout
from groot_ros.core.observation_log import ObservationLog, read_entry
from groot_ros.core.store import ObservationStore
from groot_ros.execution.config import load_execution_settings
from groot_ros.execution.inputs import InputMonitor
from groot_ros.execution.pacer import Pacer
from groot_ros.execution.runner import PolicyRunner, RunnerClocks

DT = 0.01


class SimClock:
    def __init__(self, t: float = 1000.0):
        self.t = t

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += max(0.0, seconds)

    def clocks(self) -> RunnerClocks:
        return RunnerClocks(now=self.now, perf=self.now, sleep=self.sleep)


class SimPolicy:
    """Returns a chunk holding `pose`; the call takes `latency` s of simulated time (the test's one thread: the
    control ticks of that time are skipped), or raises when told."""

    def __init__(self, clock: SimClock, pose: np.ndarray, chunk_size: int, latency: float = 0.0):
        self.clock, self.pose, self.chunk_size, self.latency = clock, pose, chunk_size, latency
        self.fail: Exception | None = None
        self.calls = 0

    def predict_chunk(self, obs, seed=None) -> np.ndarray:
        self.calls += 1
        self.clock.sleep(self.latency)
        if self.fail is not None:
            raise self.fail
        return np.tile(self.pose, (self.chunk_size, 1))


class Rig:
    """A runner on a store fed with message-shaped objects (the same pose every tick), sending into a list."""

    def __init__(self, sequences=None, **settings_overrides):
        self.sent: list[tuple[float, np.ndarray]] = []
        self.chunks: list = []
        self.logs: list[tuple[str, str]] = []
        self.stale: set[str] = set()  # streams and cameras that stop arriving
        self.layout = load_layout("depalletize", "4_pro", "sim")
        self.settings = load_execution_settings(None, settings_overrides)
        self.clock = SimClock()
        self.store = ObservationStore(self.layout)
        self.frame = np.zeros((48, 64, 3), np.uint8)
        self.feed()
        self.runner = PolicyRunner(self.layout, self.settings, None, self.store, InputMonitor(),
                                   lambda command, stamp: self.sent.append((stamp, command)), task="t", seed=0,
                                   sequences=sequences, on_chunk=self.chunks.append,
                                   log=lambda level, msg: self.logs.append((level, msg)), clocks=self.clock.clocks())
        pose, _ = self.runner.measured_pose()
        self.policy = SimPolicy(self.clock, pose, self.layout.chunk_size)
        self.runner.policy = self.policy

    def feed(self) -> None:
        now = self.clock.now()
        for name, msg in stream_messages(self.layout, now, np.random.default_rng(0)).items():
            if name not in self.stale:
                self.store.update(name, msg, now)
        for cam in self.layout.cameras:
            if cam.name not in self.stale:
                self.store.update(cam.name, camera_message(self.frame, now), now)

    def run(self, seconds: float) -> None:
        """Messages every tick, the worker when it wants a chunk, then the control tick, on the control grid."""
        end = self.clock.now() + seconds
        while self.clock.now() < end:
            self.runner.pacer.wait()
            self.feed()
            self.runner.worker_step()
            self.runner.control_step()


# -- the pacer ---------------------------------------------------------------------------------------------------

def test_pacer_keeps_the_grid_and_counts_skipped_ticks_without_a_burst():
    clock = SimClock(0.0)
    pacer = Pacer(DT, clock.now, clock.sleep)
    times = [pacer.wait() for _ in range(5)]
    np.testing.assert_allclose(times, np.arange(5) * DT)
    clock.t += 0.004  # a late tick (less than a period): runs at once, nothing missed
    assert pacer.wait() == pytest.approx(5 * DT) and pacer.missed == 0
    clock.t = 0.0935  # overran: ticks 7 and 8 are past, tick 9 (0.09) is the latest due
    assert pacer.wait() == pytest.approx(9 * DT)
    assert pacer.missed == 3  # 6, 7, 8 skipped, not sent one after another
    assert pacer.wait() == pytest.approx(10 * DT) and clock.t == pytest.approx(10 * DT)
    assert pacer.ticks == 8
    pacer.restart()
    clock.t = 5.0
    assert pacer.wait() == 5.0 and pacer.missed == 3  # a new grid: the pause is not missed ticks


# -- the runner --------------------------------------------------------------------------------------------------

def test_a_dry_run_commands_every_tick_with_stamps_and_reports_its_chunks():
    rig = Rig()
    started = rig.runner.start()
    assert started.ok and started.state == "running" and "dry run" in started.message
    rig.run(3.0)
    status = rig.runner.status()
    assert status.state == "running", status
    stamps = np.array([t for t, _ in rig.sent])
    assert len(stamps) == status.control_ticks >= 300  # one command per tick, nothing skipped in simulated time
    np.testing.assert_allclose(np.diff(stamps), DT)  # each command carries its tick's time
    assert status.missed_ticks == 0 and status.stall_ticks == 0
    assert [c.sequence for c in rig.chunks] == list(range(len(rig.chunks))) and status.chunks == len(rig.chunks)
    # async: the next chunk is asked for when less than inference_threshold_s is left of the 1.6 s chunk
    assert 3 <= len(rig.chunks) <= 5, len(rig.chunks)
    assert all(c.accepted for c in rig.chunks)
    assert float(status.latency["chunk_to_command_p50_ms"]) >= 0 and "observation_build_n" in status.latency


def test_no_control_tick_is_lost_at_a_chunk_switch():
    """The simulated-time form of the replay rostest's continuity check: every tick around every switch sends."""
    rig = Rig()
    rig.runner.start()
    rig.run(5.0)
    stamps = np.array([t for t, _ in rig.sent])
    switches = [c.done for c in rig.chunks[1:] if c.done < stamps[-1] - 0.2]
    assert len(switches) >= 3
    for t in switches:
        window = stamps[(stamps > t - 0.1 - DT / 2) & (stamps < t + 0.2 - DT / 2)]
        assert len(window) == 30 and np.diff(window).max() == pytest.approx(DT), t
    assert rig.runner.status().stall_ticks == 0


def test_a_stale_camera_holds_the_last_command_and_resume_waits_for_it():
    rig = Rig()
    rig.runner.start()
    rig.run(1.0)
    rig.stale.add("head")
    rig.run(2.0)
    status = rig.runner.status()
    assert status.state == "holding" and "head" in status.reason and "stale" in status.reason, status
    assert any("head" in p for p in status.input_problems)
    held = np.array([c[:14] for _, c in rig.sent[-20:]])
    assert np.ptp(held, axis=0).max() < 1e-9, "holding must not move the arms"
    refused = rig.runner.resume()
    assert not refused.ok and "head" in refused.message
    rig.stale.clear()
    rig.run(0.2)
    assert rig.runner.resume().ok
    chunks = len(rig.chunks)
    rig.run(2.0)
    assert rig.runner.status().state == "running" and len(rig.chunks) > chunks


def test_a_raising_model_holds_with_the_error_and_resume_tries_again():
    rig = Rig()
    rig.runner.start()
    rig.run(1.0)
    rig.policy.fail = RuntimeError("injected model failure")
    rig.run(2.0)
    status = rig.runner.status()
    assert status.state == "holding" and "inference failed: RuntimeError: injected model failure" in status.reason
    assert status.worker_error == "RuntimeError: injected model failure"
    assert any(level == "error" and "injected" in msg for level, msg in rig.logs)
    rig.policy.fail = None
    assert rig.runner.resume().ok
    chunks = len(rig.chunks)
    rig.run(2.0)
    assert len(rig.chunks) > chunks and rig.runner.status().worker_error == ""


def test_a_policy_that_cannot_answer_holds_like_a_stale_input_and_resume_waits_for_it():
    """policy/remote.py's problem(): the policy server is unreachable. No flapping between running and holding
    while it lasts; auto_resume resumes once it clears, as for a stream."""
    rig = Rig(watchdog={"auto_resume": True, "resume_after_s": 0.5})
    rig.policy.problem = lambda: rig.policy.down
    rig.policy.down = ""
    rig.runner.start()
    rig.run(1.0)
    rig.policy.down = "policy server ws://gpu:8000 unreachable for 0.0 s (ConnectionRefusedError); reconnecting"
    calls = rig.policy.calls
    rig.run(3.0)
    status = rig.runner.status()
    assert status.state == "holding" and "policy server ws://gpu:8000 unreachable" in status.reason, status
    assert status.holds == 1 and rig.policy.calls == calls, "held once, and no model call while it cannot answer"
    refused = rig.runner.resume()
    assert not refused.ok and "policy server ws://gpu:8000" in refused.message
    rig.policy.down = ""
    chunks = len(rig.chunks)
    rig.run(2.0)
    assert rig.runner.status().state == "running" and len(rig.chunks) > chunks


def test_inference_latency_is_the_models_time_since_the_observation():
    rig = Rig()
    rig.policy.latency = 0.05
    rig.runner.start()
    rig.run(2.0)
    status = rig.runner.status()
    assert status.chunks >= 1 and status.inference_latency == pytest.approx(0.05)
    assert status.missed_ticks >= 4  # the simulated model call held the test's one thread: 5 ticks skipped


def test_the_control_step_never_waits_for_the_model():
    """The model call runs outside the lock: while it blocks, control steps go on (here: the test's thread)."""
    rig = Rig()
    rig.runner.start()
    rig.run(0.5)
    release, entered = threading.Event(), threading.Event()
    rig.policy.predict_chunk = lambda obs, seed=None: (entered.set(), release.wait(10))[0] or \
        np.tile(rig.policy.pose, (rig.layout.chunk_size, 1))
    rig.clock.t += 2.0  # the chunk is nearly used up: the worker wants the next one
    rig.feed()
    worker = threading.Thread(target=rig.runner.worker_step)
    worker.start()
    assert entered.wait(10), "the worker did not call the model"
    sent = len(rig.sent)
    for _ in range(5):
        rig.runner.control_step()
    assert len(rig.sent) == sent + 5
    release.set()
    worker.join(10)
    assert not worker.is_alive()


class Sequences:
    def __init__(self, fail_startup: str = "", restored: bool = True):
        self.fail_startup, self.restored, self.calls = fail_startup, restored, []

    def startup(self) -> None:
        self.calls.append("startup")
        if self.fail_startup:
            raise RuntimeError(self.fail_startup)

    def exit_steps(self, safety):
        self.calls.append("exit")
        return [f"arm mode {'restored to 1' if self.restored else 'NOT restored'} (read back)"], self.restored


def test_stop_runs_the_exit_steps_and_reports_the_restore():
    sequences = Sequences()
    rig = Rig(sequences=sequences)
    assert rig.runner.start().ok
    rig.run(0.5)
    stopped = rig.runner.stop("~stop called")
    assert stopped.ok and stopped.state == "stopped" and "read back" in stopped.message
    status = rig.runner.status()
    assert status.restore_ok is True and sequences.calls == ["startup", "exit"]
    sent = len(rig.sent)
    rig.run(0.5)
    assert len(rig.sent) == sent, "a stopped node commands nothing"
    assert rig.runner.start().ok and rig.runner.status().restore_ok is None


def test_a_failed_start_up_stops_with_the_step_and_a_failed_restore_says_so():
    rig = Rig(sequences=Sequences(fail_startup="timed out waiting for: claws open", restored=False))
    result = rig.runner.start()
    assert not result.ok and result.state == "stopped"
    status = rig.runner.status()
    assert "start-up failed: timed out waiting for: claws open" in status.reason and status.restore_ok is False


def test_a_dead_worker_holds_and_start_restarts_it():
    rig = Rig()
    rig.runner.start()
    rig.run(0.5)
    rig.policy.predict_chunk = lambda obs, seed=None: None  # garbage: the worker fails after the model call
    rig.clock.t += 2.0
    rig.feed()
    stop = threading.Event()
    rig.runner.start_worker(lambda: not stop.is_set())
    rig.runner._worker.join(10)
    assert not rig.runner.worker_alive and "worker died" in rig.runner.status().worker_error
    rig.runner.control_step()
    assert rig.runner.status().state == "holding" and "worker" in rig.runner.status().reason
    assert not rig.runner.resume().ok
    del rig.policy.predict_chunk
    restarted = rig.runner.start(lambda: not stop.is_set())
    assert restarted.ok and "restarted" in restarted.message and rig.runner.worker_alive
    stop.set()


def test_blend_rtc_hands_the_policy_the_plan_under_way_with_the_measured_delay(tmp_path):
    """blend: rtc in simulated time: the first chunk has nothing to continue; each later call gets the plan at the
    new observation's row times, its delay rows from the measured observation-to-takeover time (0.15 s -> 2 rows
    of 0.1 s), and a chunk that keeps them takes over without a blend."""
    log_dir = tmp_path

    class PrefixPolicy(SimPolicy):
        prefixes: list = []

        def predict_chunk(self, obs, seed=None, prefix=None):
            self.prefixes.append(prefix)
            chunk = super().predict_chunk(obs, seed)
            if prefix is not None:
                chunk[: prefix.delay_steps] = prefix.actions[: prefix.delay_steps]
            return chunk

    rig = Rig(execution={"blend": "rtc"})
    rig.policy = rig.runner.policy = PrefixPolicy(rig.clock, rig.policy.pose, rig.layout.chunk_size, latency=0.15)
    rig.runner.obs_log = ObservationLog(log_dir)
    assert rig.runner.start().ok
    rig.run(4.0)
    prefixes = rig.policy.prefixes
    # The observation log keeps what each chunk continued: an offline replay gets the same inputs.
    logged = [read_entry(path).prefix for path in sorted(log_dir.glob("chunk_*.npz"))]
    assert len(logged) == len(prefixes) and logged[0] is None
    for entry, given in zip(logged[1:], prefixes[1:]):
        np.testing.assert_array_equal(entry.actions, given.actions)
        assert entry.delay_steps == given.delay_steps
    assert len(prefixes) >= 4 and prefixes[0] is None
    later = prefixes[2:]
    assert all(p is not None and p.delay_steps == 2 for p in later)
    np.testing.assert_allclose(later[-1].actions, np.tile(rig.policy.pose, (len(later[-1].actions), 1)), atol=1e-6)
    assert rig.runner.control.scheduler.stats.prefixes == len(prefixes) - 1
    assert rig.runner.status().stall_ticks == 0
