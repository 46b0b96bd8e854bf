"""The stand-in's depalletize task without ROS: grasp, carry and place rules, and the demonstrator succeeding."""

from __future__ import annotations

import numpy as np
import pytest

from groot_ros.demo.demonstrator import make_episode
from groot_ros.sim.standin_model import StandInModel, load_sim_config
from groot_ros.sim.render import render
from groot_ros.sim.task import (DROPPED, GRASPED, ON_PALLET, PLACED, DepalletizeTask, TaskConfig, both_arms,
                                grasp_arms, grasp_pose_deg, hand_lateral)

NAMES = [f"arm_joint_{i}" for i in range(14)]
OPEN, CLOSED = np.zeros(2), np.full(2, 90.0)


def carried_to(lateral: float, box=(0.0, 0.0)) -> np.ndarray:
    deg = grasp_pose_deg(box)
    deg[2] = 250.0 * lateral
    return both_arms(deg)


def test_grasp_counts_only_at_the_boxs_grasp_pose_on_a_closing_edge():
    box = (0.05, -0.02)
    task = DepalletizeTask(TaskConfig(grasp_tolerance_deg=8.0), box)
    assert task.step(grasp_arms(box), CLOSED).phase == ON_PALLET  # closed at reset: no edge, no grasp
    task.step(grasp_arms(box), OPEN)
    off = grasp_arms(box) + np.radians(np.r_[0, 0, 9.0, np.zeros(11)])  # shoulder yaw 9 deg off: 3.6 cm
    s = task.step(off, CLOSED)
    assert s.phase == ON_PALLET and s.missed == 1 and s.last_error_deg == pytest.approx(9.0)
    task.step(off, OPEN)
    near = grasp_arms(box) + np.radians(np.r_[0, 0, 7.0, np.zeros(11)])
    s = task.step(near, CLOSED)
    assert s.phase == GRASPED and s.held and s.grasps == 1 and not s.success
    assert grasp_arms((0.0, 0.0)) == pytest.approx(both_arms(grasp_pose_deg((0.0, 0.0))))
    assert hand_lateral(grasp_arms(box)) == pytest.approx(0.05)


def test_held_box_moves_with_the_hands_and_is_placed_only_over_the_target():
    box = (-0.04, 0.01)
    task = DepalletizeTask(TaskConfig(), box)
    task.step(grasp_arms(box), OPEN)
    task.step(grasp_arms(box), CLOSED)
    s = task.step(carried_to(0.10, box), CLOSED)  # moved 0.14 m to the left, still held
    assert s.phase == GRASPED and s.box == pytest.approx((0.10, 0.01))
    s = task.step(carried_to(0.10, box), np.array([90.0, 10.0]))  # one claw open: still held
    assert s.held
    s = task.step(carried_to(0.10, box), OPEN)  # short of the conveyor (0.13 .. 0.30): dropped there
    assert s.phase == DROPPED and not s.held and not s.success and s.box == pytest.approx((0.10, 0.01))
    task.step(grasp_arms(s.box), CLOSED)  # picked up again from where it lies
    s = task.step(carried_to(0.2, s.box), OPEN)
    assert s.phase == PLACED and s.success and s.grasps == 2
    assert task.step(grasp_arms(box), CLOSED).phase == PLACED  # done: nothing changes it but a reset
    assert task.reset((0.0, 0.0)).phase == ON_PALLET and not task.state.success


def drive(core: StandInModel, layout, action_at, seconds: float, rate: float = 100.0, substeps: int = 2):
    """What record-demos does over the topics, without ROS: commands at `rate`, the sim stepped in between."""
    for k in range(int(seconds * rate) + 1):
        ch = layout.channel_values(action_at(k / rate))
        core.command_arm(NAMES, ch["arm"])
        core.command_claw(ch["claw"])
        core.command_torso(*ch["torso"])
        for _ in range(substeps):
            snap = core.step(1.0 / (rate * substeps))
    return snap


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_demonstrator_places_its_box_and_a_wrong_box_is_not_grasped(depalletize_layout, seed):
    episode = make_episode(depalletize_layout, seed, 10.0, (seed, 3))
    core = StandInModel(load_sim_config())
    core.set_arm_mode(2)
    drive(core, depalletize_layout, lambda t: episode.action_at(0.0), 1.0)
    core.reset_task(episode.variation.box_offset)
    phases = []
    for t0 in np.arange(0, episode.seconds, 0.5):
        snap = drive(core, depalletize_layout, lambda t: episode.action_at(t0 + t), 0.49)
        phases.append(snap.task.phase)
    assert snap.task.phase == PLACED and snap.task.success and snap.task.grasps == 1 and snap.task.missed == 0
    assert phases.index(GRASPED) > 0 and ON_PALLET in phases
    # the same motion with the box 6 cm further to the side does not grasp it
    lateral, forward = episode.variation.box_offset
    core.reset_task((lateral + (0.06 if lateral < 0 else -0.06), forward))
    snap = drive(core, depalletize_layout, episode.action_at, episode.seconds)
    assert snap.task.phase == ON_PALLET and snap.task.missed == 1 and not snap.task.success


def test_cameras_show_the_box_where_the_task_has_it():
    arm, claw, torso = grasp_arms((0.0, 0.0)), CLOSED, np.zeros(2)
    for camera in ("head", "wrist_left"):
        on_pallet = render(camera, arm, claw, torso, (48, 64), (0.0, 0.0))
        held = render(camera, arm, claw, torso, (48, 64), (0.0, 0.0), held=True)
        placed = render(camera, arm, claw, torso, (48, 64), (0.2, 0.0))
        assert not np.array_equal(on_pallet, held) and not np.array_equal(on_pallet, placed)
    home = render("head", np.zeros(14), OPEN, torso, (48, 64), (0.0, 0.0))
    done = render("head", np.zeros(14), OPEN, torso, (48, 64), (0.2, 0.0))
    assert not np.array_equal(home, done)  # the same pose at the start and the end no longer looks the same


def test_the_box_position_moves_the_box_across_the_models_image_patches():
    """The tiny model sees 56x56 images in 14 px patches: the demonstrated +-10 cm of box offset must move the box
    by more than a patch there, and the box must stay clearly visible (docs/tiny_training.md, lever a)."""
    import cv2

    from groot_ros.demo.demonstrator import DEMO_LATERAL_M
    from groot_ros.sim.render import BOX

    arm, torso = grasp_arms((0.0, 0.0)), np.zeros(2)
    centres = []
    for lateral in (-DEMO_LATERAL_M, DEMO_LATERAL_M):
        img = cv2.resize(render("head", arm, OPEN, torso, (96, 128), (lateral, 0.0)), (56, 56),
                         interpolation=cv2.INTER_AREA)
        box = np.all(np.abs(img.astype(int) - BOX) < 30, axis=-1)
        assert box.sum() >= 60  # at least ~8x8 px of box at the model's resolution
        centres.append(np.argwhere(box)[:, 1].mean())
    assert abs(centres[0] - centres[1]) > 14
