"""Checkpoints named the users' way load and drive the stand-in with nothing but checkpoint:= and robot:=."""

from __future__ import annotations

import pytest

from groot_ros.testing.named_checkpoint import THEIR_TASK, make_their_checkpoint

pytestmark = [pytest.mark.ros, pytest.mark.slow]


@pytest.mark.parametrize("layout,robot,cameras", [
    ("arms_claws", "5_wheel", ("cam_head", "cam_left", "cam_right")),
    ("depalletize", "4_pro", ("cam_head", "cam_chest", "cam_left", "cam_right")),
    ("arms_claws_imu", "5_wheel", ("cam_head", "cam_left", "cam_right")),
])
def test_their_checkpoint_drives_the_stand_in(node_on_standin, tmp_path, layout, robot, cameras):
    rospy, node = node_on_standin.rospy, node_on_standin
    ckpt = make_their_checkpoint(tmp_path / "ckpt", layout, robot, cameras)
    node.start("sim_depalletize.launch", f"robot:={robot}", "seed:=0", sim=None, checkpoint=ckpt.pretrained_model)
    node.wait_for(lambda s: s.state == "running" and s.chunks >= 2, 120, "the first chunks")
    assert rospy.get_param("/kuavo_loopback_sim/arm_ctrl_mode") == 2
    called = set(rospy.get_param("/kuavo_loopback_sim/services_called"))
    assert ("/wheel_arm_change_arm_ctrl_mode" in called) == (robot == "5_wheel")
    assert ("/arm_traj_change_mode" in called) == (robot == "4_pro")
    resolved = rospy.get_param("/groot_policy/resolved")
    assert resolved["layout"] == layout and resolved["task"] == THEIR_TASK, resolved
    assert sorted(key for key, _camera in resolved["cameras"]) == sorted(f"observation.images.{c}" for c in cameras)
    node.stop_node()
    text = (tmp_path / "launch.log").read_text()  # why the layout was chosen is said only in the start-up block
    assert f"layout   {layout}: state" in text and "feature names of dataset" in text, text[-3000:]


@pytest.mark.parametrize("variant", ["main_multi", "dev_shared_xattn"])
def test_fork_head_checkpoint_drives_the_stand_in(node_on_standin, tmp_path, variant):
    """A checkpoint saved by the fork's own code (test/fixtures/fork_heads) runs the wheel-arm stand-in."""
    import shutil

    from test_fork_heads import FIXTURES

    for name in (variant, "base_model", "eagle_assets"):
        shutil.copytree(FIXTURES / name, tmp_path / name)
    node = node_on_standin
    node.start("sim_depalletize.launch", "robot:=5_wheel", "seed:=0", sim=None,
               checkpoint=tmp_path / variant / "pretrained_model")
    node.wait_for(lambda s: s.state == "running" and s.chunks >= 2, 120, "the first chunks")
    node.stop_node()
    assert "  head     fork " in (tmp_path / "launch.log").read_text()
