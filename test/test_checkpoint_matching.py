"""The checkpoint decides the layout, the cameras and the default task (ROS-free: config files only)."""

from __future__ import annotations

import json

import pytest

from groot_ros.core.cameras import CameraNameError, map_camera_keys, parse_overrides
from groot_ros.core.layout import load_layout
from groot_ros.core.observation import DEFAULT_TASK
from groot_ros.policy.checkpoint import CheckpointError
from groot_ros.policy.matching import choose_layout, choose_task, describe
from groot_ros.testing.named_checkpoint import THEIR_TASK, their_layout, write_training_data

P = "observation.images."


def fake_checkpoint(path, layout, *, names=True, tasks=(THEIR_TASK,)):
    """config.json as LeRobot writes it (features only) and, with names, the training data beside it."""
    path.mkdir(parents=True)
    inputs = {"observation.state": {"type": "STATE", "shape": [layout.state_dim]}}
    inputs.update({k: {"type": "VISUAL", "shape": [3, 96, 128]} for k in layout.camera_keys})
    (path / "config.json").write_text(json.dumps({
        "type": "groot", "input_features": inputs,
        "output_features": {"action": {"type": "ACTION", "shape": [layout.action_dim]}}}))
    if names:
        write_training_data(path, layout, path.parent / "dataset", tasks)
    return path


def test_both_naming_conventions_map_to_the_same_cameras():
    ours = map_camera_keys([P + "head_cam_h", P + "wrist_cam_l", P + "wrist_cam_r"])
    theirs = map_camera_keys([P + "cam_head", P + "cam_left", P + "cam_right", P + "cam_chest"])
    assert ours == {"head": P + "head_cam_h", "wrist_left": P + "wrist_cam_l", "wrist_right": P + "wrist_cam_r"}
    assert theirs == {"head": P + "cam_head", "wrist_left": P + "cam_left", "wrist_right": P + "cam_right",
                      "chest": P + "cam_chest"}


def test_unknown_camera_name_is_an_error_naming_it_and_the_override_maps_it():
    with pytest.raises(CameraNameError, match=r"'observation.images.top_view'.*cameras:="):
        map_camera_keys([P + "top_view", P + "cam_left"])
    assert map_camera_keys([P + "top_view"], parse_overrides("top_view=head")) == {"head": P + "top_view"}
    with pytest.raises(CameraNameError, match="not key=camera"):
        parse_overrides("top_view")


@pytest.mark.parametrize("layout_name,robot,cameras", [
    ("arms_claws", "5_wheel", ("cam_head", "cam_left", "cam_right")),
    ("depalletize", "4_pro", ("cam_head", "cam_left", "cam_right")),
    ("arms_claws", "5_wheel", ("cam_head", "cam_chest", "cam_left", "cam_right")),
    ("arms_claws_imu", "5_wheel", ("cam_head", "cam_left", "cam_right")),
    ("arms_imu", "4_pro", ("cam_head", "cam_left", "cam_right")),
])
def test_their_checkpoint_chooses_its_layout_by_names(tmp_path, layout_name, robot, cameras):
    lay = their_layout(layout_name, robot, cameras=cameras)
    ckpt = fake_checkpoint(tmp_path / "pretrained_model", lay)
    choice = choose_layout(ckpt, robot, "sim")
    assert choice.layout.name == layout_name and "feature names" in choice.how
    assert sorted(choice.layout.camera_keys) == sorted(P + c for c in cameras)
    assert choice.layout.state_feature_names == lay.state_feature_names
    task, source = choose_task("", choice.inputs.data)
    assert task == THEIR_TASK and "training data" in source
    assert "layout   " + layout_name in describe(choice, task, source)


def test_without_the_dataset_dims_decide_and_the_task_falls_back(tmp_path):
    ckpt = fake_checkpoint(tmp_path / "pretrained_model", their_layout("arms_claws", "5_wheel"), names=False)
    choice = choose_layout(ckpt, "5_wheel", "real_orbbec")
    assert choice.layout.name == "arms_claws" and "dims" in choice.how
    assert choose_task("", choice.inputs.data)[0] == DEFAULT_TASK
    assert choose_task("Stack the boxes", choice.inputs.data) == ("Stack the boxes", "task:=")


def test_a_camera_the_topic_set_lacks_is_named(tmp_path):
    lay = their_layout("arms_claws", "5_wheel", cameras=("cam_head", "cam_chest", "cam_left", "cam_right"))
    ckpt = fake_checkpoint(tmp_path / "pretrained_model", lay)
    with pytest.raises(CheckpointError, match="camera 'chest' has no topic in topics config 'real'"):
        choose_layout(ckpt, "5_wheel", "real")


def test_a_checkpoint_matching_no_layout_says_what_it_would_need(tmp_path):
    base = their_layout("arms_claws", "5_wheel")
    ckpt = fake_checkpoint(tmp_path / "pretrained_model", base)
    info = tmp_path / "dataset" / "meta" / "info.json"
    data = json.loads(info.read_text())
    data["features"]["observation.state"]["names"] += ["base_vel_x", "base_vel_y"]
    info.write_text(json.dumps(data))
    config = json.loads((ckpt / "config.json").read_text())
    config["input_features"]["observation.state"]["shape"] = [18]
    (ckpt / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError) as err:
        choose_layout(ckpt, "5_wheel", "sim")
    text = str(err.value)
    assert "matches no shipped layout" in text
    assert "state = J_q (14) + Claw_pos (2) + unknown [base_vel_x, base_vel_y]" in text
    assert "action = Left_arm (7) + Right_arm (7) + Left_claw (1) + Right_claw (1)" in text


def test_same_dims_other_names_is_not_a_match(tmp_path):
    lay = their_layout("depalletize", "4_pro")
    ckpt = fake_checkpoint(tmp_path / "pretrained_model", lay)
    info = tmp_path / "dataset" / "meta" / "info.json"
    data = json.loads(info.read_text())
    data["features"]["observation.state"]["names"][-2:] = ["lin_acc_x", "lin_acc_y"]
    info.write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match=r"unknown \[lin_acc_x, lin_acc_y\]"):
        choose_layout(ckpt, "4_pro", "sim")


def test_given_layout_wins(tmp_path):
    ckpt = fake_checkpoint(tmp_path / "pretrained_model", their_layout("arms_claws", "5_wheel"), names=False)
    assert choose_layout(ckpt, "5_wheel", "sim", layout="arms_claws").how == "given (layout:=)"


def test_shipped_layouts_carry_their_feature_names():
    lay = load_layout("arms_claws_imu", "5_wheel", "real_orbbec")
    assert lay.state_feature_names[14:] == ["lin_acc_x", "lin_acc_y", "lin_acc_z", "ang_vel_x", "ang_vel_y",
                                            "ang_vel_z", "left_claw_state", "right_claw_state"]
    assert load_layout("depalletize").action_feature_names[-4:] == ["left_claw_position", "right_claw_position",
                                                                     "cmd_pose_z", "cmd_pose_pitch"]
