"""No master: the start-up move (plan_move, start_target), start_pose_from parsing, and the SDK's ClawStream."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from groot_ros.execution.config import StartupConfig
from groot_ros.execution.motion import MotionError, plan_move, start_target
from groot_ros.ros.backends.sdk import ClawStream
from groot_ros.tools.episodes import split_source


def _measured(layout):
    pose = np.zeros(layout.action_dim)
    pose[layout.action_names.index("Left_claw")] = 80.0
    return pose


def test_plan_move_is_slow_enough_for_every_joint_and_smooth_at_both_ends(depalletize_layout):
    layout = depalletize_layout
    start, target = _measured(layout), _measured(layout)
    target[0] = 1.2  # 1.2 rad on one arm joint
    move = plan_move(layout, start, target, min_duration_s=1.0, max_joint_velocity=0.3)
    assert move.duration == pytest.approx(1.5 * 1.2 / 0.3)  # smoothstep peak speed is 1.5x the mean
    points = np.array(move.waypoints(0.01))
    assert np.allclose(points[-1], target)
    speed = np.abs(np.diff(np.vstack([start, points]), axis=0)).max(axis=0) / 0.01
    assert speed[0] <= 0.3 + 1e-6 and speed[0] > 0.29
    assert np.abs(points[0] - start).max() < 1e-3  # no velocity jump at the start
    assert plan_move(layout, start, start + 0.01, 2.0, 0.3).duration == 2.0  # at least the configured time


def test_start_target_from_config_opens_claws_and_keeps_the_rest(depalletize_layout):
    layout = depalletize_layout
    arm = list(np.linspace(-20, 20, 14))
    target = start_target(layout, _measured(layout), StartupConfig(arm_pose_deg=arm))
    channels = layout.channel_values(target)
    assert np.allclose(channels["arm"], np.radians(arm))
    assert np.all(channels["claw"] == layout.robot.claw_limits[0])
    assert np.allclose(channels["torso"], 0.0)
    assert start_target(layout, _measured(layout), StartupConfig()) is None  # nothing configured: no move


def test_start_target_from_a_recording_keeps_uncommanded_channels_as_measured(depalletize_layout):
    layout = depalletize_layout
    pose = np.full(layout.action_dim, np.nan)
    channels = layout.channel_values(pose)
    channels["arm"] = np.full(14, 0.1)
    target = start_target(layout, _measured(layout), StartupConfig(open_claws=False, arm_pose_deg=[0] * 14),
                          layout.action_from_channels(channels))
    out = layout.channel_values(target)
    assert np.allclose(out["arm"], 0.1)  # the recording wins over arm_pose_deg
    assert out["claw"][0] == 80.0 and np.allclose(out["torso"], 0.0)  # never commanded in the bag: as measured
    with pytest.raises(MotionError, match="values"):
        start_target(layout, _measured(layout), StartupConfig(), np.zeros(3))
    bad = layout.action_from_channels({**channels, "arm": np.full(14, np.inf)})
    with pytest.raises(MotionError, match="not finite"):
        start_target(layout, _measured(layout), StartupConfig(), bad)


@pytest.mark.parametrize("text, expected", [("data/kuavo", (Path("data/kuavo"), 0)),
                                            ("data/kuavo:3", (Path("data/kuavo"), 3)),
                                            ("/abs/ds:12", (Path("/abs/ds"), 12)),
                                            ("weird:name", (Path("weird:name"), 0))])
def test_start_pose_from_parsing(text, expected):
    assert split_source(text) == expected


def test_claw_stream_refused_command_is_not_recorded_as_sent():
    stream = ClawStream(deadband=0.5, resend_s=0.15)
    target = np.array([100.0, 0.0])
    assert stream.due(target, 0.0)
    stream.result(target, 0.0, accepted=False)
    assert stream.sent is None and stream.due(target, 0.01)  # refused: sent again on the next tick
    stream.result(target, 0.01, accepted=True)
    assert not stream.due(target, 0.02)


def test_claw_stream_resends_the_held_target_within_the_streaming_window():
    stream = ClawStream(deadband=0.5, resend_s=0.15)
    target = np.array([100.0, 0.0])
    stream.result(target, 0.0, accepted=True)
    assert not stream.due(target + 0.1, 0.1)  # below the deadband, inside the window
    assert stream.due(target, 0.15)  # the held target again, before Kuavo's 200 ms streaming window closes
    assert stream.due(target + 1.0, 0.05)  # a real change goes out at once
