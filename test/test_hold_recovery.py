"""Holds that must end, and "running" that must not be a lie (issue 23), in simulated time without a master.

The runner (execution/runner.py) is driven by test_runner's Rig: one thread, the test's clock, the store fed
every tick. Each case reads what the node would report (`status()`, the commands it sends)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from groot_ros.core.images import encode_jpeg
from groot_ros.execution.runner import RunnerClocks
from test_runner import Rig


class CameraRig(Rig):
    """The head camera's message is the test's to choose (None: the normal rgb8 frame)."""

    def __init__(self, **overrides):
        self.head_msg = None
        super().__init__(**overrides)

    def feed(self) -> None:
        super().feed()
        if self.head_msg is not None:
            stamp = SimpleNamespace(secs=int(self.clock.t), nsecs=int((self.clock.t % 1) * 1e9))
            self.store.update("head", SimpleNamespace(header=SimpleNamespace(stamp=stamp), **self.head_msg),
                              self.clock.now())


def _still(rig: Rig, ticks: int = 20) -> bool:
    """The arms did not move over the last ticks."""
    held = np.array([c[:14] for _, c in rig.sent[-ticks:]])
    return float(np.ptp(held, axis=0).max()) < 1e-9


def test_a_latency_hold_ends_once_the_model_is_fast_again():
    """One slow inference (1.5 s, limit 1 s) holds; the worker keeps inferring while held, so ~resume succeeds
    as soon as a recent inference is within the limit (it was refused forever before)."""
    rig = Rig()
    rig.runner.start()
    rig.run(1.0)
    rig.policy.latency = 1.5
    rig.run(2.0)
    status = rig.runner.status()
    assert status.state == "holding" and "inference took 1.5" in status.reason, status
    refused = rig.runner.resume()
    assert not refused.ok and "inference took" in refused.message  # still the slow one: no fast one since
    rig.policy.latency = 0.05
    calls = rig.policy.calls
    rig.run(0.5)
    assert rig.policy.calls > calls, "the worker must keep inferring while held on latency"
    assert rig.runner.status().state == "holding", "held chunks are never executed"
    assert _still(rig)
    resumed = rig.runner.resume()
    assert resumed.ok, resumed.message
    chunks = sum(c.accepted for c in rig.chunks)
    rig.run(2.0)
    assert rig.runner.status().state == "running" and sum(c.accepted for c in rig.chunks) > chunks


def test_a_latency_hold_auto_resumes():
    rig = Rig(watchdog={"auto_resume": True, "resume_after_s": 0.3})
    rig.runner.start()
    rig.run(1.0)
    rig.policy.latency = 1.5
    rig.run(1.6)
    assert rig.runner.status().state == "holding"
    rig.policy.latency = 0.05
    rig.run(1.5)
    assert rig.runner.status().state == "running", rig.runner.status()


def test_every_chunk_late_holds_naming_the_horizon_and_resume_works_once_fast():
    """Limit raised to 5 s, inference 2 s: every 1.6 s chunk would arrive with all its rows past. Not running
    while the robot stands still: holding, naming the cause."""
    rig = Rig(watchdog={"max_inference_latency_s": 5.0, "max_stall_s": 6.0})
    rig.runner.start()
    rig.policy.latency = 2.0
    rig.run(5.0)
    status = rig.runner.status()
    assert status.state == "holding" and "horizon 1.6 s: every chunk would arrive late" in status.reason, status
    assert not rig.runner.resume().ok
    rig.policy.latency = 0.05
    rig.run(0.5)
    assert rig.runner.resume().ok


def test_no_chunk_for_max_stall_s_holds():
    """Running with a model that never returns a chunk (no worker at all here): a hold after max_stall_s."""
    rig = Rig()
    rig.runner.start()
    for _ in range(250):
        rig.runner.pacer.wait()
        rig.feed()
        rig.runner.control_step()
    status = rig.runner.status()
    assert status.state == "holding" and "no chunk executed for 2.0 s (limit 2 s)" in status.reason, status


def _mono16(shape=(48, 64)) -> dict:
    h, w = shape
    return {"encoding": "16UC1", "height": h, "width": w, "step": 2 * w, "data": bytes(2 * h * w)}


def test_an_undecodable_camera_holds_naming_it_and_resume_waits_for_a_good_frame():
    rig = CameraRig()
    rig.runner.start()
    rig.run(1.0)
    rig.head_msg = _mono16()
    rig.run(3.0)
    status = rig.runner.status()
    assert status.state == "holding", status
    assert "observation not usable: head" in status.reason and "16UC1" in status.reason, status.reason
    assert _still(rig)
    refused = rig.runner.resume()
    assert not refused.ok and "16UC1" in refused.message
    rig.head_msg = None
    rig.run(0.3)
    assert rig.runner.resume().ok


def test_a_truncated_jpeg_holds_naming_the_camera():
    rig = CameraRig()
    rig.runner.start()
    rig.run(1.0)
    jpeg = encode_jpeg(np.full((48, 64, 3), 100, np.uint8))
    rig.head_msg = {"format": "jpeg", "data": jpeg[: len(jpeg) // 3]}
    rig.run(3.0)
    status = rig.runner.status()
    assert status.state == "holding" and "head" in status.reason and "decode" in status.reason, status.reason


def test_a_clock_jumping_back_holds_and_resets_the_time_base():
    """use_sim_time replayed 5 s back: no chunk of the old time base may be replayed; the hold says why, and
    after ~resume chunks on the new time base run."""
    rig = Rig()
    sim = rig.clock
    jump = [0.0]  # ROS time = the simulated time + jump; the pacer keeps its monotonic clock, as in the node
    rig.clock = SimpleNamespace(now=lambda: sim.t + jump[0])
    rig.runner.clocks = RunnerClocks(now=rig.clock.now, perf=sim.now, sleep=sim.sleep)
    rig.runner.start()
    rig.run(1.0)
    chunks = sum(c.accepted for c in rig.chunks)
    jump[0] = -5.0
    rig.run(0.5)
    status = rig.runner.status()
    assert status.state == "holding" and "clock jumped back 4.99 s" in status.reason, status
    assert _still(rig, 40)
    resumed = rig.runner.resume()
    assert resumed.ok, resumed.message
    t_resume = rig.clock.now()
    rig.run(2.0)
    new = [c for c in rig.chunks if c.accepted and c.done >= t_resume]
    assert rig.runner.status().state == "running" and new and sum(c.accepted for c in rig.chunks) > chunks


def test_the_watchdog_and_the_store_judge_on_the_current_time_base():
    from groot_ros.core.layout import load_layout
    from groot_ros.core.store import ObservationStore
    from groot_ros.execution.config import ExecutionConfigError, WatchdogConfig
    from groot_ros.execution.watchdog import Watchdog

    dog = Watchdog(WatchdogConfig(max_inference_latency_s=5.0, max_stall_s=6.0))
    assert dog.update(0.0, inference_latency_s=1.0, horizon_s=1.6).ok
    assert dog.update(0.1, inference_latency_s=1.6, horizon_s=1.6).problems == (
        "inference took 1.600 s >= the chunk's horizon 1.6 s: every chunk would arrive late",)
    assert dog.update(0.2, inference_latency_s=1.6).ok  # sync: no horizon
    try:
        WatchdogConfig(max_inference_latency_s=5.0)
    except ExecutionConfigError as exc:
        assert "max_stall_s (2) must be longer than max_inference_latency_s (5)" in str(exc)
    else:
        raise AssertionError("a stall limit below the latency limit must be refused")
    layout = load_layout("depalletize", "4_pro", "sim")
    store = ObservationStore(layout)
    store.update("claws", SimpleNamespace(), 100.0)
    problems = {p.source: str(p) for p in store.freshness_problems(95.0)}
    assert "received 5.000 s after now (the clock jumped back)" in problems["claws"]


def test_a_stream_whose_stamps_go_backwards_holds_naming_it():
    """A publisher's clock reset by 0.3 s: within the stamp-offset limit, but an older stamp than the last."""
    from groot_ros.execution.inputs import InputMonitor

    monitor = InputMonitor(max_stamp_offset_s=0.5)
    monitor.update("head", 10.0, 10.0)
    monitor.update("head", 10.1, 9.8)
    assert monitor.problems(10.2) == ["head: header stamp jumped back 0.20 s (clock jumped back)"]
    monitor.update("head", 10.2, 9.9)  # going on from the new time base
    assert monitor.problems(11.2) == []
