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



def _go(model, layout, goal, seconds=2.0, dt=0.01):
    """Minimum-jerk from the measured pose to `goal` (what the failing policy did, in short)."""
    from groot_ros.demo.sim_loop import measured_action, send

    start = measured_action(model.step(0.0), layout)
    for k in range(int(round(seconds / dt)) + 1):
        send(model, layout, start + (goal - start) * min_jerk(k * dt / seconds))
        snap = model.step(dt)
    return snap


@pytest.mark.parametrize("failure", ["missed", "dropped", "held_off_target"])
def test_the_demonstrator_recovers_a_failed_attempt_from_where_it_stopped(depalletize_layout, failure):
    """The DAgger round's takeover: wherever the policy left things (claws closed beside the box, the box put down
    short of the conveyor, the box held up but not carried over), the recovery from the measured pose places it."""
    import dataclasses

    from groot_ros.demo.demonstrator import recovery_episode, task_poses
    from groot_ros.demo.sim_loop import measured_action, send
    from groot_ros.sim.standin_model import ARM_EXTERNAL, StandInModel, load_sim_config
    from groot_ros.sim.task import DROPPED, GRASPED, ON_PALLET, PLACED

    layout = depalletize_layout
    model = StandInModel(dataclasses.replace(load_sim_config(), initial_arm_mode=ARM_EXTERNAL, arm_mode_switch_s=0.0))
    _go(model, layout, start_pose(layout))
    box = (0.05, 0.01)
    model.reset_task(box)
    if failure == "missed":  # reached for a box 7 cm to the right and closed there
        wrong = task_poses(layout, (-0.02, 0.0))
        _go(model, layout, wrong["settle"])
        snap = _go(model, layout, wrong["close"], 0.5)
        assert snap.task.phase == ON_PALLET and snap.task.missed == 1
    else:
        poses = task_poses(layout, box)
        for phase in ("settle", "close", "lift"):
            snap = _go(model, layout, poses[phase])
        assert snap.task.phase == GRASPED
        if failure == "dropped":
            open_claws = poses["lift"].copy()
            open_claws[layout.action_indices("claw")] = 0.0
            snap = _go(model, layout, open_claws, 0.5)
            assert snap.task.phase == DROPPED
    holding = snap.task.phase == GRASPED
    recovery = recovery_episode(layout, measured_action(snap, layout), snap.task.box, holding)
    assert recovery.phases[0] == ("lift" if holding else "reach") and recovery.phases[-1] == "rest"
    np.testing.assert_allclose(recovery.action_at(0.0), measured_action(snap, layout))  # no jump at the takeover
    assert envelope_problems(recovery) == []
    snap = model.step(0.0)
    for k in range(int(round(recovery.seconds / 0.01)) + 1):
        send(model, layout, recovery.action_at(k * 0.01))
        snap = model.step(0.01)
    assert snap.task.phase == PLACED and snap.task.success, snap.task
