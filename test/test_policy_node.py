"""The policy node closed loop on the Kuavo stand-in sim, with a real master and real roslaunch processes."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from groot_ros.core.paths import config_dir
from groot_ros.sim.launcher import ProcessDied

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def test_closed_loop_rate_envelope_and_mode_restore(node_on_standin, tiny_checkpoint, depalletize_layout):
    rospy, node = node_on_standin.rospy, node_on_standin
    node.start("sim_depalletize.launch", "seed:=0", sim=None, checkpoint=tiny_checkpoint.pretrained_model)
    first = node.wait_for(lambda s: s.state == "running" and s.chunks >= 2, 90, "the first chunks")
    assert rospy.get_param("/kuavo_loopback_sim/arm_ctrl_mode") == 2
    with node.rec.lock:
        n0 = len(node.rec.arm)
    time.sleep(8.0)
    with node.rec.lock:
        window = node.rec.arm[n0:]
    status = node.rec.latest_status()
    assert status.state == "running", status
    # The rate as the node counts it (not as this process receives it): every 10 ms tick of the pacer's grid
    # either ran or is reported as missed (the machine was late), and every tick that ran sent a command. A tick
    # due but not yet run when a status was taken is neither: at most the node's longest control period late.
    elapsed = (status.header.stamp - first.header.stamp).to_sec()
    ticks = status.control_ticks - first.control_ticks
    missed = status.missed_ticks - first.missed_ticks
    longest = float({kv.key: kv.value for kv in status.timings}["control_period_max_ms"]) / 10
    assert abs(ticks + missed - elapsed * 100) <= 2 + 2 * longest, (ticks, missed, elapsed, longest)
    seqs = [seq for _, _, seq in window]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "an arm command lost between node and robot"
    # Every arm command that reached the robot is inside the URDF limits and the forearm clip (degrees).
    q = np.array([q for _, q, _ in window])
    limits = np.degrees(depalletize_layout.robot.arm_limits)
    assert np.all(q >= limits[:, 0] - 1e-6) and np.all(q <= limits[:, 1] + 1e-6)
    assert np.all(q[:, [3, 10]] >= -130 - 1e-6)
    step = np.abs(np.diff(np.radians(q), axis=0)).max()
    assert step <= 1.0 * 0.01 + 1e-6, f"largest arm step {step:.4f} rad between commands (1 rad/s at 100 Hz)"

    stopped = node.call("stop")
    assert stopped.success and "arm mode restored to 1 (read back)" in stopped.message, stopped.message
    assert rospy.get_param("/kuavo_loopback_sim/arm_ctrl_mode") == 1, "arm mode not restored by ~stop"
    node.wait_for(lambda s: s.state == "stopped" and s.restore == "restored", 5, "stopped state with the restore")
    started = node.call("start")
    assert started.success, started.message
    assert rospy.get_param("/kuavo_loopback_sim/arm_ctrl_mode") == 2
    assert node.stop_node() == 0, (node.folder / "launch.log").read_text()[-3000:]


def test_camera_dropout_holds_then_recovers(node_on_standin, tiny_checkpoint, tmp_path):
    """The head camera comes from this test: it stops for 2 s, the node holds, then resumes by itself."""
    from sensor_msgs.msg import Image

    rospy, node = node_on_standin.rospy, node_on_standin
    topics = yaml.safe_load((config_dir() / "topics" / "sim.yaml").read_text())
    topics["cameras"]["head"]["topic"] = "/test/head_cam"
    (tmp_path / "topics.yaml").write_text(yaml.safe_dump(topics))
    (tmp_path / "exec.yaml").write_text(yaml.safe_dump({"watchdog": {"auto_resume": True, "resume_after_s": 0.3}}))
    pub = rospy.Publisher("/test/head_cam", Image, queue_size=1)
    publishing = threading.Event()
    publishing.set()
    done = threading.Event()

    def camera():
        img = Image(height=48, width=64, encoding="rgb8", step=64 * 3, data=bytes(48 * 64 * 3))
        while not done.is_set():
            if publishing.is_set():
                img.header.stamp = rospy.Time.now()
                pub.publish(img)
            time.sleep(0.05)

    threading.Thread(target=camera, daemon=True).start()
    try:
        node.start("policy.launch", f"topics:={tmp_path / 'topics.yaml'}",
                   f"execution_overrides:={tmp_path / 'exec.yaml'}", checkpoint=tiny_checkpoint.pretrained_model)
        node.wait_for(lambda s: s.state == "running" and s.chunks >= 1, 90, "running with chunks")
        publishing.clear()
        held = node.wait_for(lambda s: s.state == "holding", 5, "a hold after the camera stopped")
        assert any("head" in r and "stale" in r for r in held.stale_streams), held
        with node.rec.lock:
            n_hold = len(node.rec.arm)
        time.sleep(0.5)
        with node.rec.lock:
            held_cmds = np.array([q for _, q, _ in node.rec.arm[n_hold:]])
        assert len(held_cmds) > 20, "the node must keep commanding the held pose"
        assert np.ptp(held_cmds, axis=0).max() < 1e-6, "holding must not move the arms"
        publishing.set()
        node.wait_for(lambda s: s.state == "running", 10, "automatic recovery")
        chunks_before = node.rec.latest_status().chunks
        node.wait_for(lambda s: s.chunks > chunks_before, 10, "new chunks after recovery")
    finally:
        done.set()


def test_real_robot_launch_starts_paused_and_drives_the_sdk(node_on_standin, tiny_checkpoint):
    """real_robot.launch against the stand-in serving the real topic names: nothing moves before ~start."""
    rospy, node = node_on_standin.rospy, node_on_standin
    node.start("real_robot.launch", "device:=cpu", "dtype:=float32", sim=("_topics:=real",),
               checkpoint=tiny_checkpoint.pretrained_model)
    node.wait_for(lambda s: s.state == "idle", 90, "the paused start")
    time.sleep(1.0)
    assert rospy.get_param("/kuavo_loopback_sim/arm_ctrl_mode") == 1, "arm mode switched before ~start"
    with node.rec.lock:
        assert node.rec.arm == [], "arm commands before ~start"
    response = node.call("start")
    assert response.success, response.message
    assert rospy.get_param("/kuavo_loopback_sim/arm_ctrl_mode") == 2
    node.wait_for(lambda s: s.state == "running" and s.chunks >= 2, 60, "chunks through the SDK backend")
    with node.rec.lock:
        assert len(node.rec.arm) > 10, "the SDK backend sends /kuavo_arm_traj"
    assert node.call("stop").success
    assert rospy.get_param("/kuavo_loopback_sim/arm_ctrl_mode") == 1


def test_relative_checkpoint_path_from_the_users_directory(node_on_standin, tiny_checkpoint, tmp_path):
    """`roslaunch groot_ros sim_depalletize.launch checkpoint:=<relative>` typed in the folder above it."""
    relative = Path("ckpt_copy") / "pretrained_model"
    (tmp_path / "ckpt_copy").symlink_to(tiny_checkpoint.pretrained_model.parent)
    node_on_standin.start("sim_depalletize.launch", "seed:=0", sim=None, cwd=tmp_path, checkpoint=relative)
    node_on_standin.wait_for(lambda s: s.state == "running" and s.chunks >= 1, 90, "running with chunks")


def test_a_launch_whose_node_dies_fails_fast_with_the_reason(node_on_standin, tmp_path):
    node = node_on_standin
    node.start("policy.launch", sim=None, cwd=tmp_path, checkpoint="no/such/pretrained_model")
    t0 = time.monotonic()
    with pytest.raises(ProcessDied) as err:
        node.wait_for(lambda s: s.state == "running", 120, "a running node")
    assert time.monotonic() - t0 < 30, "waited on a dead launch"
    text = str(err.value)
    assert "'no/such/pretrained_model' does not exist" in text and str(tmp_path / "no/such/pretrained_model") in text
