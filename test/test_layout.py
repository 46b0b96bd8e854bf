"""The one layout definition: hand-built Kuavo messages map to the expected state vector, bad layouts fail at load."""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml

from groot_ros.ros import messages as km
from groot_ros.core.layout import LayoutError, load_layout, stats_problems

ROBOTS = {"4_pro": (28, 12), "5_wheel": (20, 4)}  # joints in /sensors_data_raw, arm slice start


def hand_built_messages(num_joints: int) -> dict:
    """Real Kuavo message classes filled by hand: joint i has position i / 100 rad."""
    joints = km.sensorsData()
    joints.joint_data.joint_q = [i / 100.0 for i in range(num_joints)]
    claws = km.lejuClawState()
    claws.data.position = [12.5, 87.5]
    torso = km.mpc_observation()
    value = np.zeros(40, np.float32)
    value[8], value[10] = 0.75, 0.125  # base z (m), pitch (rad): exact in float32
    torso.state.value = value.tolist()
    return {"joints": joints, "claws": claws, "torso": torso}


@pytest.mark.parametrize("robot", sorted(ROBOTS))
@pytest.mark.parametrize("layout_name", ["depalletize", "arms_claws"])
def test_messages_map_to_state(robot, layout_name):
    num_joints, arm_start = ROBOTS[robot]
    layout = load_layout(layout_name, robot, "sim")
    state = layout.state_from_messages(hand_built_messages(num_joints))

    expected = [(arm_start + i) / 100.0 for i in range(14)] + [12.5, 87.5]
    if layout_name == "depalletize":
        expected += [0.75, 0.125]
    assert layout.state_dim == len(expected) == (18 if layout_name == "depalletize" else 16)
    np.testing.assert_allclose(state, expected)
    assert layout.state_names[:2] == ["J_q_0", "J_q_1"] and layout.state_names[14:16] == ["Claw_pos_0", "Claw_pos_1"]


@pytest.mark.parametrize("layout_name,channels", [("depalletize", {"arm", "claw", "torso"}), ("arms_claws", {"arm", "claw"})])
def test_action_splits_into_channels_and_back(layout_name, channels):
    layout = load_layout(layout_name, "4_pro", "real")
    action = np.arange(layout.action_dim, dtype=np.float64)
    out = layout.channel_values(action)
    assert set(out) == channels
    np.testing.assert_array_equal(out["arm"], np.arange(14))
    np.testing.assert_array_equal(out["claw"], [14, 15])
    if "torso" in out:
        np.testing.assert_array_equal(out["torso"], [16, 17])
    np.testing.assert_array_equal(layout.action_from_channels(out), action)
    assert math.isclose(layout.commands["arm"].scale, 180 / math.pi)  # /kuavo_arm_traj is in degrees


def test_joint_vector_flag_marks_the_arm_slice():
    layout = load_layout("depalletize", "4_pro", "sim")
    flags = {c.name: c.joint_vector for c in layout.state}
    assert flags == {"J_q": True, "Claw_pos": False, "Com_z_pitch": False}


def _write_layout(tmp_path, drop_state: str | None = None, **changes) -> str:
    with open(load_layout.__globals__["config_dir"]() / "layouts" / "depalletize.yaml") as f:
        data = yaml.safe_load(f)
    if drop_state:
        data["state"] = [s for s in data["state"] if s["name"] != drop_state]
    data.update(changes)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_torso_actions_without_torso_state_are_rejected(tmp_path):
    with pytest.raises(LayoutError, match=r"Cmd_pose_\* .*Com_z_pitch"):
        load_layout(_write_layout(tmp_path, drop_state="Com_z_pitch"), "4_pro", "sim")


def test_every_problem_is_reported_at_once(tmp_path):
    data = yaml.safe_load(open(_write_layout(tmp_path, drop_state="Claw_pos")))
    data["action"][0]["index"] = [0, 1, 2]  # Left_arm: dim 7 with 3 indices, arm channel left half-empty
    data["cameras"]["rear"] = "observation.images.rear"  # no rear camera in the sim topics
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(LayoutError) as err:
        load_layout(str(tmp_path / "bad.yaml"), "4_pro", "sim")
    text = str(err.value)
    for needle in ("claw actions need a claw state", "'Left_arm': dim 7 but 3 indices",
                   "channel 'arm' must be filled exactly once", "camera 'rear' has no topic"):
        assert needle in text


def test_checkpoint_dims_must_match_the_layout():
    layout = load_layout("arms_claws", "4_pro", "sim")
    problems = stats_problems(layout, state_dim=18, action_dim=18, camera_keys=None, embodiment_tag=None)
    assert len(problems) == 2 and "state dim: checkpoint 18, layout 'arms_claws' 16" in problems[0]
    assert stats_problems(load_layout("depalletize"), 18, 18, ["observation.images.cam_head",
                          "observation.images.cam_left", "observation.images.cam_right"], "new_embodiment") == []


def test_unknown_robot_names_the_known_ones():
    with pytest.raises(LayoutError, match=r"unknown robot '6_x'.*4_pro.*5_wheel"):
        load_layout("depalletize", "6_x", "sim")
