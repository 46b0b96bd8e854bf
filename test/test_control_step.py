"""ControlStep: start-up, watchdog holds (stop consuming chunks), resume with a ramp, rejections."""

import numpy as np
import pytest

from groot_ros.execution.config import ExecutionConfig, ExecutionSettings, WatchdogConfig
from groot_ros.execution.control_step import ControlStep
from groot_ros.core.layout import load_layout

TICK = 0.01


@pytest.fixture(scope="module")
def layout():
    return load_layout("depalletize", "4_pro", "sim")


def _core(layout, auto_resume=False):
    return ControlStep(layout, ExecutionSettings(
        execution=ExecutionConfig(ramp_time=0.1, blend="crossfade"),
        watchdog=WatchdogConfig(auto_resume=auto_resume, resume_after_s=0.1, max_inference_latency_s=0.5)))


def _pose(layout, arm=0.0):
    mask = layout.action_interpolation_mask()
    pose = np.where(mask, arm, 0.0)
    pose[layout.action_names.index("Left_arm_3")] = pose[layout.action_names.index("Right_arm_3")] = -0.5
    pose[layout.action_names.index("Cmd_pose_pitch")] = 0.1
    return pose


def _chunk(layout, pose):
    return np.tile(pose, (layout.chunk_size, 1))


def test_no_command_until_a_valid_measured_pose(layout):
    core = _core(layout)
    assert core.tick(0.0).command is None
    bad = _pose(layout)
    bad[0] = np.nan
    tick = core.tick(0.01, bad)
    assert tick.command is None and tick.state == "no_pose"
    assert not core.wants_inference(0.01)
    tick = core.tick(0.02, _pose(layout))
    np.testing.assert_array_equal(tick.command, _pose(layout))
    assert (tick.state, tick.source) == ("running", "waiting")
    assert core.wants_inference(0.02)


def _running(layout, core):
    core.tick(0.0, _pose(layout))
    core.inference_started(0.0)
    assert core.submit(_chunk(layout, _pose(layout, 0.05)), 0.0, 0.05).accepted
    for i in range(5, 50):
        tick = core.tick(i * TICK)
    return tick


def test_stale_sensor_holds_the_last_safe_command_and_stops_consuming_chunks(layout):
    core = _core(layout)
    last = _running(layout, core).command
    for i in range(50, 80):
        tick = core.tick(i * TICK, sensor_problems=["joints stale: 0.25 s old"])
        assert tick.state == "holding" and tick.source == "hold"
        np.testing.assert_array_equal(tick.command, last)
    assert tick.reasons == ("joints stale: 0.25 s old",)
    rejected = core.submit(_chunk(layout, _pose(layout, 0.3)), 0.7, 0.75)
    assert not rejected.accepted and rejected.reason.startswith("holding: joints stale")
    assert core.tick(0.8).state == "holding"  # healthy again, but auto_resume is off
    assert core.resume().ok
    measured = _pose(layout, 0.04)
    tick = core.tick(0.81, measured)
    assert tick.source == "waiting"
    assert not core.submit(_chunk(layout, _pose(layout)), 0.79, 0.85).accepted  # observed before resume
    core.inference_started(0.85)
    assert core.submit(_chunk(layout, _pose(layout, 0.06)), 0.85, 0.9).accepted
    tick = core.tick(0.9, measured)
    assert tick.source == "ramp"
    np.testing.assert_allclose(tick.raw, measured)  # ramps from where the robot is
    report = core.report()
    assert report["hold_ticks"] == 31 and report["state"]["trips"] == 1
    assert report["scheduler"]["rejected"] == {"holding": 1, "observation taken before the last reset": 1}


def test_auto_resume_after_recovery(layout):
    core = _core(layout, auto_resume=True)
    _running(layout, core)
    assert core.tick(0.5, _pose(layout), sensor_problems=["claws stale"]).state == "holding"
    assert core.tick(0.55, _pose(layout)).state == "holding"
    assert core.tick(0.64, _pose(layout)).state == "holding"
    assert core.tick(0.66, _pose(layout)).state == "running"


def test_hung_inference_and_crashed_worker_hold(layout):
    core = _core(layout)
    core.tick(0.0, _pose(layout))
    core.inference_started(0.0)
    assert core.tick(0.4).state == "running"
    tick = core.tick(0.6)
    assert tick.state == "holding" and tick.reasons[0].startswith("inference took 0.600 s")
    core2 = _core(layout)
    core2.tick(0.0, _pose(layout))
    assert core2.tick(0.01, worker_alive=False).reasons == ("inference worker crashed (~start restarts it)",)


def test_a_restarted_worker_can_infer_again(layout):
    """A worker that died mid-inference never reports: its pending inference must not block the next worker."""
    core = _core(layout)
    core.tick(0.0, _pose(layout))
    core.inference_started(0.0)
    assert core.tick(0.05, worker_alive=False).state == "holding"
    assert not core.wants_inference(0.06)
    core.abandon_inference(0.06, "the inference worker died")
    assert core.resume(0.07, ()).ok
    assert core.wants_inference(0.08)


def test_invalid_measured_pose_after_start_holds(layout):
    core = _core(layout)
    _running(layout, core)
    bad = _pose(layout)
    bad[3] = np.inf
    tick = core.tick(0.5, bad)
    assert tick.state == "holding" and "measured pose invalid" in tick.reasons[0]
    assert np.isfinite(tick.command).all()


def test_failed_inference_is_counted_and_asked_again(layout):
    core = _core(layout)
    core.tick(0.0, _pose(layout))
    core.inference_started(0.0)
    assert not core.wants_inference(0.05)
    core.inference_failed(0.1, "CUDA out of memory")
    assert core.wants_inference(0.1)
    assert core.report()["scheduler"]["rejected"] == {"inference failed": 1}


def test_failed_inference_holds_with_the_error_until_resumed(layout):
    core = _core(layout)
    _running(layout, core)
    core.inference_started(0.4)
    core.inference_failed(0.45, "RuntimeError: injected")
    tick = core.tick(0.5, _pose(layout))
    assert tick.state == "holding" and tick.reasons == ("inference failed: RuntimeError: injected",)
    assert core.resume(0.6, ()).ok and core.tick(0.61, _pose(layout)).state == "running"
