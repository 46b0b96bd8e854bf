"""The scripted demonstrator: inside the node's envelope, smooth, and different per episode where it matters."""

from __future__ import annotations

import numpy as np
import pytest

from groot_ros.demo.demonstrator import (BOX_LATERAL_M, DEMO_LATERAL_M, MIN_SECONDS, START_YAW_DEG, Variation,
                                         envelope_problems, make_episode, min_jerk, start_pose)
from groot_ros.sim.task import YAW
from groot_ros.sim.render import render


def test_min_jerk_starts_and_ends_at_rest():
    s = np.linspace(0, 1, 1001)
    v = np.gradient(min_jerk(s), s)
    assert min_jerk(0.0) == 0.0 and min_jerk(1.0) == 1.0 and np.all(np.diff(min_jerk(s)) >= 0)
    assert abs(v[0]) < 1e-2 and abs(v[-1]) < 1e-2 and abs(v.max() - 1.875) < 1e-3


def test_every_episode_stays_inside_the_nodes_envelope(depalletize_layout):
    for seed in range(300):
        episode = make_episode(depalletize_layout, seed, MIN_SECONDS)
        assert envelope_problems(episode) == []
    with pytest.raises(ValueError, match="at least"):
        make_episode(depalletize_layout, 0, MIN_SECONDS - 1)


def test_episode_phases_and_smoothness(depalletize_layout):
    episode = make_episode(depalletize_layout, 3, 12.0)
    slices = depalletize_layout.action_slices()
    t, actions = episode.sample(100.0)
    assert episode.seconds == pytest.approx(12.0) and actions.shape == (1201, depalletize_layout.action_dim)
    np.testing.assert_allclose(actions[0], start_pose(depalletize_layout, episode.variation.start_yaw_deg))
    np.testing.assert_allclose(actions[-1], start_pose(depalletize_layout))  # ends at home: the closed loop's start
    assert np.abs(np.diff(actions[:, :14], n=2, axis=0)).max() < 1e-3  # arms: no steps, min-jerk between keyframes
    claws = actions[:, slices["Left_claw"]].ravel()
    close = episode.times[episode.phases.index("close") + 1]
    open_ = episode.times[episode.phases.index("open") + 1]
    assert claws[0] == 0 and claws[int(close * 100) + 1] == pytest.approx(90) and claws[int(open_ * 100) + 1] == 0
    z = actions[:, slices["Cmd_pose_z"]].ravel()
    lift = episode.times[episode.phases.index("lift")]
    assert z[int(lift * 100)] < -0.04 < z[int(episode.times[episode.phases.index("lift") + 1] * 100)]
    assert episode.phase_at(0.1) == "hold" and episode.phase_at(12.0) == "rest"


def test_the_box_offset_moves_the_grasp_and_the_picture(depalletize_layout):
    a, b = make_episode(depalletize_layout, 0), make_episode(depalletize_layout, 1)
    assert a.variation != b.variation and not np.allclose(a.times, b.times)
    grasp = lambda e: e.action_at(e.times[e.phases.index("reach") + 1])  # noqa: E731
    assert np.abs(grasp(a) - grasp(b))[:14].max() > np.radians(5)
    np.testing.assert_allclose(make_episode(depalletize_layout, 0).keyframes, a.keyframes)  # seeded
    arm, claw, torso = np.zeros(14), np.zeros(2), np.zeros(2)
    for camera in ("head", "wrist_left"):
        assert not np.array_equal(render(camera, arm, claw, torso, (48, 64), a.variation.box_offset),
                                  render(camera, arm, claw, torso, (48, 64), b.variation.box_offset))
    np.testing.assert_array_equal(render("head", arm, claw, torso, (48, 64)),
                                  render("head", arm, claw, torso, (48, 64), (0.0, 0.0)))


def test_the_start_pose_does_not_tell_where_the_box_is(depalletize_layout):
    """The shoulders' start yaw is drawn apart from the box, over a range like the boxes' grasp yaws, so the arms'
    state cannot stand in for the cameras; home (yaw 0), where the closed loop starts, is inside it. The
    demonstrations cover a wider lateral range than the closed loop's unseen boxes are drawn from."""
    variations = [Variation.sample(seed) for seed in range(400)]
    yaw = np.array([v.start_yaw_deg for v in variations])
    box = np.array([v.box_offset[0] for v in variations])
    assert yaw.min() < -0.8 * START_YAW_DEG and yaw.max() > 0.8 * START_YAW_DEG
    assert abs(np.corrcoef(yaw, box)[0, 1]) < 0.15
    assert box.max() > BOX_LATERAL_M and box.min() < -BOX_LATERAL_M and np.abs(box).max() <= DEMO_LATERAL_M
    left_yaw = depalletize_layout.action_slices()["Left_arm"].start + YAW
    episode = make_episode(depalletize_layout, int(np.argmax(np.abs(yaw - 25.0 * np.sign(box)))), MIN_SECONDS)
    assert envelope_problems(episode) == []  # the longest reach still within the rate limits
    assert np.degrees(episode.keyframes[0, left_yaw]) == pytest.approx(episode.variation.start_yaw_deg)
