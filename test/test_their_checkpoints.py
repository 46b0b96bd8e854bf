"""Checkpoints named the users' way load and drive the stand-in with nothing but checkpoint:= and robot:=."""

from __future__ import annotations

from pathlib import Path

import pytest

from groot_ros.sim.launcher import roslaunch, stop
from groot_ros.testing.named_checkpoint import THEIR_TASK, make_their_checkpoint

pytestmark = [pytest.mark.ros, pytest.mark.slow]


@pytest.mark.parametrize("layout,robot,cameras", [
    ("arms_claws", "5_wheel", ("cam_head", "cam_left", "cam_right")),
    ("depalletize", "4_pro", ("cam_head", "cam_chest", "cam_left", "cam_right")),
    ("arms_claws_imu", "5_wheel", ("cam_head", "cam_left", "cam_right")),
])
def test_their_checkpoint_drives_the_stand_in(ros_node, tmp_path, layout, robot, cameras):
    from test_policy_node import Recorder

    ckpt = make_their_checkpoint(tmp_path / "ckpt", layout, robot, cameras)
    rec = Recorder(ros_node)
    log = tmp_path / "launch.log"
    proc = roslaunch(["groot_ros", "sim_depalletize.launch", f"checkpoint:={ckpt.pretrained_model}",
                      f"robot:={robot}", "seed:=0"], None, log)
    try:
        rec.wait_for(lambda s: s.state == "running" and s.chunks >= 2, 120, "the first chunks", [proc])
        assert ros_node.get_param("/kuavo_loopback_sim/arm_ctrl_mode") == 2
        called = set(ros_node.get_param("/kuavo_loopback_sim/services_called"))
        assert ("/wheel_arm_change_arm_ctrl_mode" in called) == (robot == "5_wheel")
        assert ("/arm_traj_change_mode" in called) == (robot == "4_pro")
    finally:
        rec.close()
        stop(proc.proc)
        for key in ("robot", "services_called"):  # the next stand-in in this master starts fresh
            if ros_node.has_param("/kuavo_loopback_sim/" + key):
                ros_node.delete_param("/kuavo_loopback_sim/" + key)
    text = Path(log).read_text()
    assert f"layout   {layout}: state" in text and "feature names of dataset" in text, text[-3000:]
    assert f"task     '{THEIR_TASK}' <- training data" in text
    for cam in cameras:
        assert f"camera   observation.images.{cam} <-" in text


@pytest.mark.parametrize("variant", ["main_multi", "dev_shared_xattn"])
def test_fork_head_checkpoint_drives_the_stand_in(ros_node, tmp_path, variant):
    """A checkpoint saved by the fork's own code (test/fixtures/fork_heads) runs the wheel-arm stand-in."""
    import shutil

    from test_fork_heads import FIXTURES
    from test_policy_node import Recorder

    for name in (variant, "base_model", "eagle_assets"):
        shutil.copytree(FIXTURES / name, tmp_path / name)
    rec = Recorder(ros_node)
    log = tmp_path / "launch.log"
    proc = roslaunch(["groot_ros", "sim_depalletize.launch", f"checkpoint:={tmp_path / variant / 'pretrained_model'}",
                      "robot:=5_wheel", "seed:=0"], None, log)
    try:
        rec.wait_for(lambda s: s.state == "running" and s.chunks >= 2, 120, "the first chunks", [proc])
    finally:
        rec.close()
        stop(proc.proc)
        for key in ("robot", "services_called"):
            if ros_node.has_param("/kuavo_loopback_sim/" + key):
                ros_node.delete_param("/kuavo_loopback_sim/" + key)
    assert "  head     fork " in Path(log).read_text()
