"""The stand-in's rules without ROS: modes gate arm commands, tracking is first order within the limits."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import numpy as np

from groot_ros.sim.standin_model import StandInModel, load_sim_config, mpc_state_vector, urdf_description
from groot_ros.sim.render import render

NAMES = [f"arm_joint_{i}" for i in range(14)]


def run(core: StandInModel, seconds: float, dt: float = 0.005):
    snap = None
    for _ in range(int(round(seconds / dt))):
        snap = core.step(dt)
    return snap


def test_arm_commands_act_only_in_external_mode_and_within_limits():
    core = StandInModel(load_sim_config())
    target = np.full(14, -0.2)
    target[3] = -4.0  # forearm pitch beyond the URDF's -150 deg
    assert core.command_arm(NAMES, target).startswith("ignored: arm mode 1")
    assert core.set_arm_mode(2)[0]
    run(core, core.config.arm_mode_switch_s + 0.01)  # the switch takes effect later (Kuavo: up to 2 s)
    assert core.command_arm(NAMES[:13], target).startswith("rejected: 13 joint names")
    assert core.command_arm(NAMES, target) is None
    tau = core.config.arm_tau
    snap = run(core, tau)  # one time constant: 1 - 1/e of the way
    assert math.isclose(snap.arm[0], -0.2 * (1 - math.exp(-1)), rel_tol=1e-6)
    snap = run(core, 20 * tau)
    assert math.isclose(snap.arm[3], math.radians(-150), rel_tol=1e-6) and np.allclose(snap.arm[4:], -0.2)
    assert snap.q[12] == snap.arm[0] and np.all(snap.q[:12] == 0)  # 4_pro: arms at 12:26

    core.set_arm_mode(0)  # keep pose: frozen even while commanded
    core.command_arm(NAMES, np.zeros(14))
    assert np.allclose(run(core, 0.5).arm, snap.arm)
    core.set_arm_mode(1)  # auto swing: back to rest
    assert np.allclose(run(core, 1.0).arm, 0.0, atol=1e-6)
    assert core.set_arm_mode(5)[0] is False


def test_claws_torso_and_observation_vector():
    core = StandInModel(load_sim_config())
    assert core.command_claw([150.0, 40.0]) is None
    assert core.command_claw([float("nan"), 1.0]).startswith("rejected")
    assert core.command_torso(-1.0, 0.2) is None  # clamped to the robot's torso_z_limits
    snap = run(core, 3.0)
    np.testing.assert_allclose(snap.claw, [100.0, 40.0], atol=1e-3)
    np.testing.assert_allclose(snap.torso, [-0.3, 0.2], atol=1e-3)
    value = mpc_state_vector(snap)
    assert math.isclose(value[8], 0.8328 - 0.3, abs_tol=1e-3) and math.isclose(value[10], 0.2, abs_tol=1e-3)


def test_urdf_has_what_the_sdk_parses():
    config = load_sim_config()
    root = ET.fromstring(urdf_description(config.robot))
    joint = root.find(".//joint[@name='zarm_r2_joint']")
    assert joint.find("child").get("link") == "zarm_r2_link"
    assert math.isclose(float(joint.find("limit").get("lower")), math.radians(-120), abs_tol=1e-6)
    assert len(root.findall("joint")) == 12 + 14 + 2


def test_images_follow_arms_and_claws():
    arm, claw, torso = np.zeros(14), np.zeros(2), np.zeros(2)
    moved = arm.copy()
    moved[[0, 3]] = -1.0
    for camera in ("head", "wrist_left"):
        base = render(camera, arm, claw, torso, (48, 64))
        assert base.shape == (48, 64, 3) and base.dtype == np.uint8
        assert not np.array_equal(base, render(camera, arm, np.array([100.0, 0.0]), torso, (48, 64)))
    assert not np.array_equal(render("head", arm, claw, torso, (48, 64)), render("head", moved, claw, torso, (48, 64)))
    assert np.array_equal(render("wrist_right", arm, claw, torso, (48, 64)),
                          render("wrist_right", arm, np.array([100.0, 0.0]), torso, (48, 64)))  # left claw only


# -- the controller's hazards, as the stand-in reproduces them (each test fails if the hazard disappears) -----

def test_switch_to_external_control_takes_effect_later():
    core = StandInModel(load_sim_config())
    delay = core.config.arm_mode_switch_s
    assert 0 < delay <= 2.0
    ok, message = core.set_arm_mode(2)
    assert ok and core.arm_mode == 1, "the switch must not be instantaneous"
    assert core.command_arm(NAMES, np.full(14, -0.3)).startswith("ignored: arm mode 1")
    run(core, delay * 0.9)
    assert core.arm_mode == 1
    run(core, delay * 0.2)
    assert core.arm_mode == 2 and core.command_arm(NAMES, np.full(14, -0.3)) is None


def _external(core):
    core.set_arm_mode(2)
    run(core, core.config.arm_mode_switch_s + 0.01)
    core.command_arm(NAMES, np.full(14, -0.4))
    return run(core, 1.0)


def test_direct_to_wbc_before_an_arm_target_drives_the_arms_to_zero():
    core = StandInModel(load_sim_config())
    core.set_arm_mode(2)
    run(core, core.config.arm_mode_switch_s + 0.01)
    core._q[core._arm] = -0.4  # arms somewhere else than zero (auto swing has them at rest = 0 otherwise)
    core._arm_target = np.full(14, -0.4)
    core.set_direct_to_wbc(True)  # no /kuavo_arm_traj yet: the WBC target is still zero
    assert np.allclose(run(core, 1.0).arm, 0.0, atol=1e-3), "the zero-initialised WBC target must pull the arms"


def test_direct_to_wbc_after_the_measured_pose_was_sent_holds_still():
    core = StandInModel(load_sim_config())
    before = _external(core).arm
    core.command_arm(NAMES, before)  # the measured pose as the arm target, then the switch
    core.set_direct_to_wbc(True)
    np.testing.assert_allclose(run(core, 1.0).arm, before, atol=1e-6)
    core.command_arm(NAMES, np.full(14, -0.1))
    core.set_direct_to_wbc(False)  # switching off hands the last target to the MPC path
    np.testing.assert_allclose(run(core, 1.0).arm, -0.1, atol=1e-3)


def test_claw_commands_are_dropped_while_moving_unless_streamed():
    core = StandInModel(load_sim_config())
    assert core.command_claw([100.0, 100.0]) is None
    run(core, 0.25)  # moving, and 0.25 s since the last command
    assert core.command_claw([0.0, 0.0]).startswith("dropped: the claw is moving")
    assert core.claw_commands_dropped == 1
    snap = run(core, 0.1)
    assert snap.claw_moving == (True, True)
    assert core.command_claw([0.0, 0.0]) is None  # 0.1 s after the last one: a stream, taken
    np.testing.assert_allclose(run(core, 3.0).claw, 0.0, atol=1e-2)


def test_head_preset_is_kept_within_its_limits():
    core = StandInModel(load_sim_config())
    assert core.command_head(0.0, 40.0) is None
    assert core.head_deg == (0.0, 25.0)
