"""SafetyEnvelope: every limit clamps and is counted; nothing non-finite or too fast ever leaves."""

import math

import numpy as np
import pytest

from groot_ros.execution.config import SafetyConfig
from groot_ros.execution.safety import SafetyEnvelope
from groot_ros.core.layout import load_layout

RATE = 100.0


@pytest.fixture(scope="module")
def layout():
    return load_layout("depalletize", "4_pro", "sim")


def _envelope(layout, **kw):
    return SafetyEnvelope(layout, SafetyConfig(**kw), RATE)


def _fast(layout):
    """Rates so high only position limits act."""
    return _envelope(layout, max_joint_velocity=1e6, torso_max_z_rate=1e6, torso_max_pitch_rate=1e6)


def _index(layout, name):
    return layout.action_names.index(name)


def _home(layout):
    pose = np.zeros(layout.action_dim)
    for name in ("Left_arm_3", "Right_arm_3"):
        pose[_index(layout, name)] = -0.5
    pose[_index(layout, "Cmd_pose_pitch")] = 0.1
    return pose


def test_limits_come_from_the_robot_config(layout):
    env = _fast(layout)
    fa = _index(layout, "Left_arm_3")
    assert np.degrees([env.lower[fa], env.upper[fa]]) == pytest.approx([-130, 0])
    assert np.degrees(env.lower[_index(layout, "Right_arm_3")]) == pytest.approx(-130)
    assert np.degrees(env.upper[_index(layout, "Left_arm_1")]) == pytest.approx(120)
    assert np.degrees(env.lower[_index(layout, "Right_arm_1")]) == pytest.approx(-120)
    no_clip = _envelope(layout, use_forearm_limit=False)
    assert np.degrees(no_clip.lower[fa]) == pytest.approx(-150)
    assert (env.lower[_index(layout, "Cmd_pose_z")], env.upper[_index(layout, "Cmd_pose_z")]) == (-0.3, 0.05)
    assert (env.lower[_index(layout, "Cmd_pose_pitch")], env.upper[_index(layout, "Cmd_pose_pitch")]) == (0.0, 0.4)
    assert (env.lower[_index(layout, "Left_claw")], env.upper[_index(layout, "Right_claw")]) == (0.0, 100.0)


@pytest.mark.parametrize("name, value, expected", [
    ("Left_arm_3", math.radians(-140), math.radians(-130)),
    ("Right_arm_3", 0.3, 0.0),
    ("Left_arm_1", math.radians(130), math.radians(120)),
    ("Cmd_pose_z", 0.2, 0.05),
    ("Cmd_pose_z", -0.5, -0.3),
    ("Cmd_pose_pitch", -0.1, 0.0),
    ("Right_claw", 120.0, 100.0),
])
def test_each_position_limit_clamps_and_is_counted(layout, name, value, expected):
    env = _fast(layout)
    env.reset(_home(layout))
    cmd = _home(layout)
    i = _index(layout, name)
    cmd[i] = value
    out = env.apply(cmd)
    assert out[i] == pytest.approx(expected)
    assert env.clamp_counts()["position"] == {name: 1}
    others = np.arange(layout.action_dim) != i
    np.testing.assert_array_equal(out[others], cmd[others])


def test_summary_names_the_joint_and_the_limit(layout):
    env = _fast(layout)
    env.reset(_home(layout))
    cmd = _home(layout)
    cmd[_index(layout, "Left_arm_3")] = -2.5
    for _ in range(12):
        env.apply(cmd)
    assert "clamped Left_arm_3 12 times (forearm limit [-130, 0] deg)" in env.summary()
    fresh = _fast(layout)
    fresh.reset(_home(layout))
    fresh.apply(_home(layout))
    assert fresh.summary() == "no clamps in 1 commands"


def test_velocity_and_torso_rate_are_limited_per_tick(layout):
    env = _envelope(layout, max_joint_velocity=1.0, torso_max_z_rate=0.1, torso_max_pitch_rate=0.2)
    home = _home(layout)
    env.reset(home)
    target = home.copy()
    arm, z, pitch, claw = (_index(layout, n) for n in ("Left_arm_0", "Cmd_pose_z", "Cmd_pose_pitch", "Left_claw"))
    target[[arm, z, pitch, claw]] = [-0.505, -0.2, 0.3, 100.0]
    out = env.apply(target)
    assert out[arm] == pytest.approx(-0.01)
    assert out[z] == pytest.approx(-0.001)
    assert out[pitch] == pytest.approx(0.1 + 0.002)
    assert out[claw] == 100.0  # claws: no rate limit by default
    assert env.clamp_counts()["rate"] == {"Left_arm_0": 1, "Cmd_pose_z": 1, "Cmd_pose_pitch": 1}
    for _ in range(60):
        out = env.apply(target)
    assert out[arm] == pytest.approx(-0.505)  # arrives: 50 limited ticks at 1 rad/s, then the rest
    assert "rate-limited Left_arm_0 50 times (max 1 rad/s)" in env.summary()


def test_claw_rate_limit_when_configured(layout):
    env = _envelope(layout, claw_max_rate=200.0)
    env.reset(_home(layout))
    cmd = _home(layout)
    cmd[_index(layout, "Left_claw")] = 100.0
    assert env.apply(cmd)[_index(layout, "Left_claw")] == pytest.approx(2.0)


def test_non_finite_values_never_leave(layout):
    env = _envelope(layout)
    home = _home(layout)
    env.reset(home)
    cmd = home + 0.005
    cmd[[0, 5, 16]] = [np.nan, np.inf, -np.inf]
    out = env.apply(cmd)
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out[[0, 5, 16]], home[[0, 5, 16]])  # last safe value held
    assert env.clamp_counts()["nonfinite"] == {layout.action_names[i]: 1 for i in (0, 5, 16)}
    assert "replaced non-finite Left_arm_0 1 times" in env.summary()


def test_random_garbage_stays_inside_the_envelope(layout):
    rng = np.random.default_rng(1)
    env = _envelope(layout)
    env.reset(_home(layout))
    prev = _home(layout)
    for _ in range(500):
        cmd = rng.normal(0, 50, layout.action_dim)
        cmd[rng.random(layout.action_dim) < 0.2] = rng.choice([np.nan, np.inf, -np.inf])
        out = env.apply(cmd)
        assert np.isfinite(out).all()
        assert (out >= env.lower).all() and (out <= env.upper).all()
        assert (np.abs(out - prev) <= env.max_step + 1e-12).all()
        prev = out


def test_start_outside_a_limit_walks_back_in_without_a_jump(layout):
    env = _envelope(layout)
    start = _home(layout)
    fa = _index(layout, "Left_arm_3")
    start[fa] = math.radians(-140)  # inside the URDF range, outside the forearm clip
    env.reset(start)
    out = [env.apply(start)[fa] for _ in range(30)]
    assert out[0] - start[fa] == pytest.approx(0.01) and np.diff(out)[:16] == pytest.approx(0.01)  # 10 deg at 1 rad/s
    assert (np.diff(out) <= 0.01 + 1e-12).all()
    assert out[-1] == pytest.approx(math.radians(-130))


def test_misuse_is_a_clear_error(layout):
    env = _envelope(layout)
    with pytest.raises(RuntimeError, match="reset"):
        env.apply(_home(layout))
    with pytest.raises(ValueError, match="finite pose"):
        env.reset(np.full(layout.action_dim, np.nan))
    env.reset(_home(layout))
    with pytest.raises(ValueError, match="shape"):
        env.apply(np.zeros(3))


def test_arms_claws_layout_has_no_torso(layout):
    small = load_layout("arms_claws", "5_wheel", "sim")
    env = SafetyEnvelope(small, SafetyConfig(), RATE)
    assert env.lower.shape == (16,)
