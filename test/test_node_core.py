"""ROS-free pieces of the policy node: measured pose from state, latency statistics."""

from __future__ import annotations

import numpy as np
import pytest

from groot_ros.core.latency import LatencyStats
from groot_ros.core.layout import LayoutError, load_layout
from groot_ros.core.paths import config_dir


@pytest.mark.parametrize("robot", ["4_pro", "5_wheel"])
def test_measured_action_reads_arms_claws_and_torso_offset(robot):
    layout = load_layout("depalletize", robot, "sim")
    state = np.arange(18, dtype=float) / 10
    state[16] = 0.80  # absolute base height
    pose = layout.measured_action(state, nominal_height=0.83)
    np.testing.assert_allclose(pose[:14], state[:14])
    np.testing.assert_allclose(pose[14:16], state[14:16])
    assert pose[16] == pytest.approx(-0.03)  # Cmd_pose_z is an offset from the nominal height
    assert pose[17] == pytest.approx(state[17])
    small = load_layout("arms_claws", robot, "sim")
    np.testing.assert_allclose(small.measured_action(state[:16]), state[:16])


def test_action_without_measured_source_is_rejected(tmp_path):
    text = (config_dir() / "layouts" / "depalletize.yaml").read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("measured: {state: Claw_pos, index: [1]}", "measured: {state: Claws, index: [1]}"))
    with pytest.raises(LayoutError, match="Right_claw.*measured.state"):
        load_layout(bad)


def test_latency_stats_summary():
    stats = LatencyStats(window=100)
    for v in np.linspace(0.01, 0.02, 101):
        stats.record("inference", float(v))
    summary = stats.summary()
    assert summary["inference_n"] == "100"
    assert float(summary["inference_p50_ms"]) == pytest.approx(15.05, abs=0.1)
    assert float(summary["inference_max_ms"]) == pytest.approx(20.0)


def test_exit_target_opens_claws_and_moves_arms_home_only():
    from groot_ros.execution.motion import exit_target

    layout = load_layout("depalletize", "4_pro", "sim")
    last = np.linspace(-0.5, 0.5, 18)
    last[14:16] = 80.0
    np.testing.assert_array_equal(exit_target(layout, last, False, []), last)
    opened = exit_target(layout, last, True, [])
    assert list(opened[14:16]) == [0.0, 0.0]
    np.testing.assert_array_equal(np.delete(opened, [14, 15]), np.delete(last, [14, 15]))
    home = exit_target(layout, last, False, [10.0] * 7 + [-10.0] * 7)
    np.testing.assert_allclose(home[:14], np.radians([10.0] * 7 + [-10.0] * 7))
    np.testing.assert_array_equal(home[14:], last[14:])
