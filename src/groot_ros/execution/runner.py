"""The policy node's loops without ROS: the worker step, the control step, per-chunk bookkeeping, start and stop.

ros/node.py only wires this to ROS (parameters, subscribers, services, publishers); bench/node_path.py and the
unit tests drive the very same object, the tests in simulated time (an injected clock and sleep). Everything the
node reports (~status, /diagnostics) comes from `status()`, so a test checks what the node would publish.

Threads: a control loop (`run_control`, paced by one Pacer, never waits for the model) and an inference worker
(`run_worker`, started and restarted here). `_lock` guards the control step, the state machine and every
field below that both threads or the services touch, for short sections only (never a model call or a sleep
under it). `_motion_lock` is held by whoever streams commands outside the control loop (the start-up and exit
sequences the caller supplies), so a stop during the start-up waits for the sequence to notice and end.
"""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from groot_ros.core.latency import LatencyStats
from groot_ros.core.layout import Layout
from groot_ros.core.observation import Observation
from groot_ros.core.observation_log import ObservationLog
from groot_ros.core.prefix import ChunkPrefix
from groot_ros.core.store import ObservationResult, ObservationStore
from groot_ros.execution.claw_latch import ClawLatch
from groot_ros.execution.config import ExecutionSettings
from groot_ros.execution.control_step import ControlStep, Tick
from groot_ros.execution.inputs import InputMonitor, digest
from groot_ros.execution.pacer import Pacer
from groot_ros.execution.safety import SafetyEnvelope
from groot_ros.execution.recording import RunRecording
from groot_ros.execution.state_machine import OPERATOR, RUNNING, STARTING, StateMachine, Transition

Log = Callable[[str, str], None]  # (level: info|warn|error, message)


class Interrupted(RuntimeError):
    """Stop or shutdown arrived while a sequence was streaming commands."""


class Policy(Protocol):
    """What the runner calls of a ChunkPolicy (policy/base.py; execution/ does not import policy/)."""

    def predict_chunk(self, obs: Observation, seed: int | None = None,
                      prefix: ChunkPrefix | None = None) -> np.ndarray: ...

    # Optional: `problem() -> str`, why the policy cannot answer now ("" when it can; policy/remote.py: the server
    # is unreachable). An input problem like a stale stream: it holds, and resume waits until it clears.


class Sequences(Protocol):
    """The commands outside the policy (ros/commander.py in the node; nothing in a dry run)."""

    def startup(self) -> None:
        """Head, claws, arm mode, slow move, direct-to-WBC; raises naming the failed step, Interrupted on stop."""

    def exit_steps(self, safety: SafetyEnvelope) -> tuple[list[str], bool | None]:
        """Exit motion and restore; the report lines and whether the arm mode read back restored (None: dry run)."""


@dataclass(frozen=True)
class RunnerClocks:
    """`now`: the node's time (ROS time; header stamps, staleness, the scheduler). `perf`: intervals for the
    latency statistics and the pacer. `sleep`: the pacer's and the worker's idle waits."""

    now: Callable[[], float] = time.time
    perf: Callable[[], float] = time.perf_counter
    sleep: Callable[[float], None] = time.sleep


@dataclass(frozen=True)
class ChunkOut:
    """One chunk the model returned, for ~action_chunk and the observation log."""

    sequence: int
    chunk: np.ndarray
    observation: Observation
    done: float  # node time when the model returned
    accepted: bool
    reason: str  # why it was not executed (empty when accepted)


@dataclass(frozen=True)
class RunnerStatus:
    """What ~status and /diagnostics say, taken under the lock at one instant."""

    stamp: float  # node time when it was taken
    state: str
    reason: str
    chunks: int
    stall_ticks: int
    holds: int
    clamps: int
    control_ticks: int
    missed_ticks: int
    inference_latency: float
    chunk_age: float  # seconds since the current chunk's observation; -1 before the first chunk
    input_problems: tuple[str, ...]
    worker_error: str
    restore_ok: bool | None  # the last exit's read-back (None: no exit yet, or a dry run)
    safety_summary: str
    latency: dict[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()  # what the node gave up without holding (the observation log, recorded frames)


class PolicyRunner:
    """The node's behaviour, ROS-free. `send(command, stamp)` is the command path of the control loop (the node's:
    ros/commander.py `Commander.command`), stamp the tick's node time."""

    def __init__(self, layout: Layout, settings: ExecutionSettings, policy: Policy, store: ObservationStore,
                 inputs: InputMonitor, send: Callable[[np.ndarray, float], None], *, task: str,
                 seed: int | None = None, nominal_height: Callable[[], float] = lambda: 0.0,
                 sequences: Sequences | None = None, obs_log: ObservationLog | None = None,
                 on_chunk: Callable[[ChunkOut], None] = lambda _out: None, log: Log = lambda _lvl, _msg: None,
                 clocks: RunnerClocks = RunnerClocks(), recording: RunRecording | None = None,
                 operator_command: Callable[[np.ndarray], np.ndarray] = lambda pose: pose) -> None:
        self.layout = layout
        self.settings = settings
        self.policy = policy
        self.store = store
        self.inputs = inputs
        self.task = task
        self.seed = seed
        self.sequences = sequences
        self.obs_log = obs_log
        self.clocks = clocks
        self.recording = recording  # None: nothing recorded (record_dir unset)
        self.operator_command = operator_command  # the measured pose -> what the operator commands over it
        self._send = send
        self._on_chunk = on_chunk
        self._log = log
        self._nominal_height_source = nominal_height
        self._cameras = {c.name for c in layout.cameras}
        self.machine = StateMachine()
        self.latency = LatencyStats()
        self.pacer = Pacer(settings.execution.tick_dt, clocks.perf, clocks.sleep)
        self.latch = self._new_latch()
        self.control = self._new_control()
        self._lock = threading.RLock()
        self._motion_lock = threading.Lock()
        self._abort = threading.Event()  # set by stop: sequences end at their next tick
        self._closing = threading.Event()  # shutdown: no more commands from the loops
        self._nominal_height = 0.0
        self._min_interval = settings.execution.model_action_dt or layout.model_action_dt
        self._last_start = -float("inf")
        self._throttled: dict[str, float] = {}
        # guarded by _lock
        self._pose_now: np.ndarray | None = None
        self._last_problems: tuple[str, ...] = ()
        self._sequence = 0
        self._last_chunk_obs_time: float | None = None
        self._last_latency = 0.0
        self._worker_error = ""
        self._restore_ok: bool | None = None
        self._submitted_at: dict[int, float] = {}  # chunk id -> perf time when accepted
        self._executing_chunk = 0
        self._worker: threading.Thread | None = None
        self._obs_problem = ""  # why the last observation could not be built (not staleness: ticks see that)
        self._obs_problem_since: float | None = None
        self._warnings: tuple[str, ...] = ()
        self._reported: dict[str, str] = {}  # problems the caller sees (another commander): source -> line

    # -- inputs ---------------------------------------------------------------------------------------------

    def note_message(self, name: str) -> None:
        """Subscriber hook after the store got a message: the frozen-camera and clock-jump monitor."""
        sample = self.store.latest(name)
        if sample is None:
            return
        data = getattr(sample.msg, "data", None) if name in self._cameras else None
        content = digest(bytes(data)) if data is not None and self.inputs.frozen_after_s is not None else None
        self.inputs.update(name, sample.received, sample.stamp, content)

    def report_problem(self, source: str, line: str) -> None:
        """A problem only the caller can see (the node: another node publishing on the command topics): held,
        and ~resume refused, while it lasts; "" clears it."""
        with self._lock:
            self._reported[source] = line

    def measured_pose(self) -> tuple[np.ndarray | None, str]:
        """The pose in action space, or None and why (a missing stream, a malformed message)."""
        return self.store.measured_action(self._nominal_height)

    def _refresh_problems(self, now: float) -> list[str]:
        """Every input problem now (under _lock); the watchdog adds inference and worker problems."""
        problems = [str(p) for p in self.store.freshness_problems(now)] + self.inputs.problems(now)
        policy_problem = getattr(self.policy, "problem", lambda: "")()  # Policy: optional
        if policy_problem:
            problems.append(policy_problem)
        pose, problem = self.measured_pose()
        if problem and self.control.started:
            problems.append(problem)
        problems += [line for line in self._reported.values() if line]
        if self._obs_problem and (self.machine.held or self._obs_problem_since is not None
                                  and now - self._obs_problem_since > self.settings.watchdog.max_stall_s):
            problems.append("observation not usable: " + self._obs_problem)
        self._pose_now = pose
        self._last_problems = tuple(problems)
        return problems

    # -- control --------------------------------------------------------------------------------------------

    def control_step(self) -> Tick | None:
        """One control tick: the core's command goes out through `send`, stamped with the tick's node time. Taken
        over, nothing is sent and the operator's command is what a recorded frame keeps."""
        with self._lock:
            if self._closing.is_set():
                return None
            if self.machine.state == OPERATOR:
                self._record_operator()
                return None
            if not self.machine.commanding:
                return None
            t0 = self.clocks.perf()
            now = self.clocks.now()
            problems = self._refresh_problems(now)
            tick = self.control.tick(now, self._pose_now, problems, self.worker_alive)
            if tick.command is None:
                return tick
            if tick.chunk_id != self._executing_chunk:
                accepted = self._submitted_at.pop(tick.chunk_id, None)
                if accepted is not None:  # chunk accepted -> its first command: the non-model part of obs -> command
                    self.latency.record("chunk_to_command", self.clocks.perf() - accepted)
                for old in [k for k in self._submitted_at if k < tick.chunk_id]:  # replaced before they ran
                    del self._submitted_at[old]
                self._executing_chunk = tick.chunk_id
            self._send(tick.command, now)
            if self.recording is not None and tick.state == RUNNING:  # holds and pauses do not show the task
                self._record(now, tick.command, tick.raw, intervention=False)
            self.latency.record("tick_compute", self.clocks.perf() - t0)
            return tick

    def _record(self, now: float, action: np.ndarray, proposal: np.ndarray | None, intervention: bool) -> None:
        if not self.recording.tick(now, action, proposal, intervention):
            self._throttle("warn", "recorder behind: a frame was dropped (see ~status warnings)", 5.0, "recorder")

    def _record_operator(self) -> None:
        """A taken-over tick: the operator's latest command (over the measured pose where a channel has none)."""
        if self.recording is None:
            return
        pose, _ = self.measured_pose()
        if pose is not None and np.isfinite(pose).all():
            self._record(self.clocks.now(), self.operator_command(pose), None, intervention=True)

    def run_control(self, keep_going: Callable[[], bool]) -> None:
        """The control loop: one pacer, no catch-up bursts; a failing tick holds and says why."""
        last = None
        while keep_going() and not self._closing.is_set():
            self.pacer.wait()
            t = self.clocks.perf()
            if last is not None:
                self.latency.record("control_period", t - last)
            last = t
            try:
                self.control_step()
            except Exception as exc:  # noqa: BLE001 - a bug must not look like running: hold and say why
                with self._lock:
                    self.machine.hold([f"control tick failed: {type(exc).__name__}: {exc}"])
                self._throttle("error", "control tick failed (holding):\n" + traceback.format_exc(), 1.0, "tick")

    # -- inference ------------------------------------------------------------------------------------------

    @property
    def worker_alive(self) -> bool:
        """No worker thread started: the caller drives `worker_step` itself (bench, simulated time)."""
        return self._worker is None or self._worker.is_alive()

    def start_worker(self, keep_going: Callable[[], bool]) -> None:
        self._worker = threading.Thread(target=self._worker_main, args=(keep_going,), name="groot_inference",
                                        daemon=True)
        self._worker.start()

    def _restart_worker_if_dead(self, keep_going: Callable[[], bool]) -> bool:
        if self.worker_alive or self._closing.is_set():
            return False
        self._log("warn", f"restarting the inference worker (it died: {self._worker_error})")
        self.control.abandon_inference(self.clocks.now(), "the inference worker died")
        self._worker_error = ""
        self.start_worker(keep_going)
        return True

    def _worker_main(self, keep_going: Callable[[], bool]) -> None:
        """The worker dies on a bug outside the model call; the watchdog then holds with the reason."""
        try:
            self.run_worker(keep_going)
        except Exception as exc:  # noqa: BLE001 - recorded for ~status; start() restarts the worker
            with self._lock:
                self._worker_error = f"worker died: {type(exc).__name__}: {exc}"
            self._log("error", f"inference {self._worker_error}\n{traceback.format_exc()}")

    def run_worker(self, keep_going: Callable[[], bool]) -> None:
        while keep_going() and not self._closing.is_set():
            if self.worker_step() is None:
                self.clocks.sleep(0.002)

    def worker_step(self) -> ChunkOut | None:
        """Runs the model once if the core wants a chunk (never faster than the model's own rate: during a hold the
        core keeps asking, and back-to-back inferences would starve the machine). None: nothing was run.

        While held on something only the worker can measure (the inference latency, an observation that could
        not be built), it keeps going, its chunks refused: otherwise the old verdict would stand forever and
        ~resume (or auto-resume) would be refused for good."""
        now = self.clocks.now()
        with self._lock:
            probe = self.machine.held and (self.control.holding_on_latency or bool(self._obs_problem))
            wanted = (self.machine.state == RUNNING or probe) and self.control.wants_inference(now)
        if now < self._last_start:  # the clock jumped back: the last start is on the old time base
            self._last_start = -float("inf")
        if not wanted or now - self._last_start < self._min_interval:
            return None
        return self.infer(now)

    def infer(self, now: float) -> ChunkOut | None:
        """Observation -> model -> the core, with the bookkeeping; the model call runs outside the lock."""
        t_obs = self.clocks.perf()
        result = self.store.build_observation(now, self.task)
        self._note_observation_problem(now, result)
        if not result.ok:
            self._throttle("warn", "holding inference, observation not usable: " + result.summary(), 2.0, "obs")
            self.clocks.sleep(0.01)
            return None
        self.latency.record("observation_build", self.clocks.perf() - t_obs)
        obs = result.observation
        self._last_start = now
        with self._lock:
            self.control.inference_started(now)
            core = self.control
            prefix = core.prefix_for(obs.stamp)  # blend rtc: the plan under way, for the chunk to continue
        t_model = self.clocks.perf()
        try:
            chunk = self.policy.predict_chunk(obs, seed=self.seed, **({"prefix": prefix} if prefix is not None else {}))
        except Exception as exc:  # noqa: BLE001 - counted and held by the watchdog, never crashes the node
            error = f"{type(exc).__name__}: {exc}"
            self._throttle("error", "inference failed: " + error, 2.0, "inference")
            with self._lock:
                self._worker_error = error
                core.inference_failed(self.clocks.now(), error)
            return None
        self.latency.record("model_call", self.clocks.perf() - t_model)
        done = self.clocks.now()
        if self._closing.is_set():
            return None  # the robot is being restored: a late chunk must not move it
        with self._lock:
            if core is not self.control:
                return None  # restarted meanwhile: the chunk belongs to the old run
            submitted = core.submit(chunk, obs.stamp, done)
            if submitted.accepted:
                self._submitted_at[submitted.chunk_id] = self.clocks.perf()
            self._last_latency = done - obs.stamp
            self._worker_error = ""
            sequence = self._sequence
            self._sequence += 1
            self._last_chunk_obs_time = obs.stamp
        self.latency.record("inference", done - obs.stamp)
        if self.obs_log is not None:  # under the sequence number the chunk is published with
            self._write_log(sequence, obs, chunk, prefix)
        out = ChunkOut(sequence, chunk, obs, done, submitted.accepted, submitted.reason)
        self._on_chunk(out)
        if not submitted.accepted and not self.machine.held:  # held: refusing is the point, the hold says why
            self._throttle("warn", f"chunk {sequence} not executed: {submitted.reason}", 2.0, "rejected")
        return out

    def _write_log(self, sequence: int, obs: Observation, chunk: np.ndarray, prefix: ChunkPrefix | None) -> None:
        """A full disk or a vanished folder ends the logging, never the inference or the commands."""
        try:
            self.obs_log.write(sequence, obs, chunk, self.seed, prefix)
        except Exception as exc:  # noqa: BLE001 - any failure to log: stop logging, say so in /diagnostics
            warning = (f"observation log off since chunk {sequence} ({self.obs_log.directory}): "
                       f"{type(exc).__name__}: {exc}")
            self.obs_log = None
            with self._lock:
                self._warnings += (warning,)
            self._log("error", warning)

    def _note_observation_problem(self, now: float, result: ObservationResult) -> None:
        """Undecodable images, malformed fields: the worker is the only one to see them (the ticks judge only
        staleness). Kept until an observation builds again; a hold names them once they last (runner ticks)."""
        found = "; ".join(str(p) for p in result.problems if p.kind not in ("missing", "stale"))
        with self._lock:
            if not found:
                self._obs_problem, self._obs_problem_since = "", None
            elif not self._obs_problem:
                self._obs_problem, self._obs_problem_since = found, now
            else:
                self._obs_problem = found

    # -- start and stop -------------------------------------------------------------------------------------

    def start(self, keep_going: Callable[[], bool] = lambda: True) -> Transition:
        """Restarts a dead worker; from idle/stopped runs the start-up sequence, then the policy."""
        with self._lock:
            restarted = self._restart_worker_if_dead(keep_going)
            transition = self.machine.start()
            if not transition.ok:
                if restarted:
                    return Transition(True, self.machine.state, f"inference worker restarted ({self.machine.state})")
                return transition
            self._abort.clear()
            self._restore_ok = None
            self._nominal_height = self._nominal_height_source()
        try:
            with self._motion_lock:
                if self._abort.is_set():
                    raise Interrupted("stopped before the start-up began")
                if self.sequences is not None:  # dry run: nothing to command, modes untouched
                    self.sequences.startup()
        except Interrupted as exc:
            return Transition(False, self.machine.state, f"start-up interrupted: {exc}")
        except Exception as exc:  # noqa: BLE001 - any failure of a step: restore and say which
            with self._lock:
                self.machine.start_failed(str(exc))
            report = self._run_exit_steps()
            return Transition(False, self.machine.state, f"start-up failed: {exc}; {report}")
        with self._lock:
            if self.machine.state != STARTING:  # stopped meanwhile
                return Transition(False, self.machine.state, "start-up interrupted by stop")
            self.latch = self._new_latch()  # a new episode: every claw free
            self.control = self._new_control()  # fresh ramp from the measured pose
            transition = self.machine.started()
        return Transition(True, transition.state, transition.message
                          + (" (dry run: nothing is commanded)" if self.sequences is None else ""))

    def _new_latch(self) -> ClawLatch | None:
        cfg = self.settings.claw_latch
        claws = len(self.layout.action_indices("claw"))
        step_dt = self.settings.execution.model_action_dt or self.layout.model_action_dt
        return ClawLatch(cfg, claws, step_dt) if cfg.enabled and claws else None

    def _new_control(self) -> ControlStep:
        return ControlStep(self.layout, self.settings, self.machine, self.latch)

    def pause(self) -> Transition:
        with self._lock:
            return self.control.pause("paused by operator")

    def takeover(self, on: bool) -> Transition:
        """on: the operator commands the robot and the node nothing (recording the operator's commands). off: the
        policy takes over again from the measured pose, with the ramp, as after a start (a fresh control core:
        the old plan and the envelope's last command are where the robot was before the operator moved it)."""
        with self._lock:
            if on:
                return self.machine.takeover()
            if self.machine.state != OPERATOR:
                return self.machine.release()
            problems = self._refresh_problems(self.clocks.now())
            if not problems:
                self.control = self._new_control()  # the episode's claw latch carries over
            return self.machine.release(problems)

    def end_episode(self, keep: bool) -> Transition:
        """~episode (keep) / ~discard: the episode in progress is saved or dropped; recording goes on in a new one."""
        with self._lock:
            if self.recording is None:
                return Transition(False, self.machine.state, "not recording (record_dir is not set)")
            return Transition(True, self.machine.state,
                              self.recording.end_episode(self.clocks.now(), keep, "operator: next episode"))

    def resume(self) -> Transition:
        with self._lock:
            now = self.clocks.now()
            return self.control.resume(now, self._refresh_problems(now), self.worker_alive)

    def stop(self, why: str) -> Transition:
        with self._lock:
            transition = self.machine.stop(why)
            if not transition.ok:
                return transition
            self._abort.set()
            saved = "; " + self.recording.end_episode(self.clocks.now(), True, why) if self.recording else ""
        report = self._run_exit_steps()
        return Transition(bool(self._restore_ok) or self.sequences is None, self.machine.state,
                          f"stopped ({why}); {report}{saved}")

    def shutdown(self) -> Transition | None:
        """Ctrl-C, SIGTERM: the loops stop commanding, then the exit steps restore the robot (also while the model
        is mid-call: a chunk that returns later is dropped). None when already shutting down."""
        if self._closing.is_set():
            return None
        self._closing.set()
        return self.stop("node shutting down")

    @property
    def aborting(self) -> bool:
        """A sequence streaming commands must end now (stop requested)."""
        return self._abort.is_set()

    @property
    def closing(self) -> bool:
        return self._closing.is_set()

    def _run_exit_steps(self) -> str:
        """Every step runs whatever failed before; the arm mode is read back. stopping -> stopped."""
        with self._motion_lock:  # waits for a running start-up sequence to see the abort
            self._abort.clear()  # the exit steps themselves must run
            if self.sequences is None:
                lines, restored = ["dry run: nothing commanded, arm modes untouched"], None
            else:
                lines, restored = self.sequences.exit_steps(self.control.safety)
            self._abort.set()
        report = "; ".join(lines)
        with self._lock:
            self._restore_ok = restored
            self.machine.stopped(report)
            state = self.machine.state
        self._log("info" if restored is not False else "error", f"{state}: {report}")
        return report

    # -- reporting ------------------------------------------------------------------------------------------

    def status(self) -> RunnerStatus:
        with self._lock:
            report = self.control.report()
            state = self.machine.state
            reason = self.machine.reason()
            if self._worker_error and self._worker_error not in reason:
                reason = "; ".join(r for r in (reason, f"inference: {self._worker_error}") if r)
            problems = self._last_problems if self.machine.commanding else ()
            chunks, latency, obs_time = self._sequence, self._last_latency, self._last_chunk_obs_time
            worker_error, restore_ok, warnings = self._worker_error, self._restore_ok, self._warnings
            lost = self.recording.recorder.problem() if self.recording is not None else ""
            warnings += (lost,) if lost else ()
            ticks, missed = self.pacer.ticks, self.pacer.missed
            now = self.clocks.now()
        clamps = sum(sum(v.values()) if isinstance(v, dict) else int(v) for v in report["safety"].values())
        return RunnerStatus(
            stamp=now, state=state, reason=reason, chunks=chunks, stall_ticks=int(report["scheduler"]["stall_ticks"]),
            holds=int(report["state"]["trips"]), clamps=int(clamps), control_ticks=ticks, missed_ticks=missed,
            inference_latency=latency, chunk_age=now - obs_time if obs_time else -1.0,
            input_problems=tuple(problems), worker_error=worker_error, restore_ok=restore_ok,
            safety_summary=report["safety_summary"], latency=self.latency.summary(), warnings=warnings)

    def _throttle(self, level: str, message: str, period_s: float, key: str) -> None:
        """At most one message per `key` every `period_s` (a failure repeating every tick must not flood the log)."""
        now = self.clocks.perf()
        if now - self._throttled.get(key, -float("inf")) >= period_s:
            self._throttled[key] = now
            self._log(level, message)
