"""The policy node closed loop on the Kuavo stand-in sim, with a real master and real roslaunch processes."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from groot_ros.core.paths import config_dir
from groot_ros.sim.launcher import ProcessDied, Watched, roslaunch, stop, wait_until

pytestmark = [pytest.mark.ros, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[1]


class Recorder:
    """Keeps what the node publishes and what reaches the robot, with receive times."""

    def __init__(self, rospy):
        from sensor_msgs.msg import JointState

        from groot_ros.msg import PolicyStatus

        self.rospy = rospy
        self.lock = threading.Lock()
        self.arm: list[tuple[float, np.ndarray]] = []
        self.statuses: list = []
        self.subs = [rospy.Subscriber("/kuavo_arm_traj", JointState, self._arm, queue_size=200),
                     rospy.Subscriber("/groot_policy/status", PolicyStatus, self._status, queue_size=20)]

    def _arm(self, msg):
        with self.lock:
            self.arm.append((time.monotonic(), np.asarray(msg.position)))

    def _status(self, msg):
        with self.lock:
            self.statuses.append(msg)

    def latest_status(self):
        with self.lock:
            return self.statuses[-1] if self.statuses else None

    def wait_for(self, predicate, timeout: float, what: str, watch=()):
        """The first status that satisfies predicate; fails at once if a watched process (roslaunch) exits."""
        def matching():
            status = self.latest_status()
            return status if status is not None and predicate(status) else None

        return wait_until(matching, timeout, f"{what} (last status: {self.latest_status()})", watch, poll=0.1)

    def close(self):
        for sub in self.subs:
            sub.unregister()


def launch(*args: str, log: Path, cwd: Path | None = None) -> Watched:
    return roslaunch(args, None, log, cwd=cwd)


def start_sim(log: Path, *params: str) -> Watched:
    """The stand-in run directly (as rosrun would), with only `params` as its ~params: an earlier test's are
    cleared first (the master keeps a node's private params after it exits; roslaunch's clear_params does this)."""
    import rospy

    if rospy.has_param("/kuavo_loopback_sim"):
        rospy.delete_param("/kuavo_loopback_sim")
    with open(log, "w") as out:
        proc = subprocess.Popen(["python", str(REPO / "nodes" / "kuavo_loopback_sim"), "__name:=kuavo_loopback_sim",
                                 *params], stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return Watched("the stand-in sim", proc, log)


def call(rospy, name: str):
    from std_srvs.srv import Trigger

    rospy.wait_for_service(name, timeout=10)
    return rospy.ServiceProxy(name, Trigger)()


def test_closed_loop_rate_envelope_and_mode_restore(ros_node, tiny_checkpoint, depalletize_layout, tmp_path):
    rospy = ros_node
    rec = Recorder(rospy)
    proc = launch("groot_ros", "sim_depalletize.launch", f"checkpoint:={tiny_checkpoint.pretrained_model}",
                  "seed:=0", log=tmp_path / "launch.log")
    try:
        rec.wait_for(lambda s: s.state == "running" and s.chunks >= 2, 90, "the first chunks", [proc])
        assert rospy.get_param("/kuavo_loopback_sim/arm_ctrl_mode") == 2
        t0 = time.monotonic()
        with rec.lock:
            n0 = len(rec.arm)
        time.sleep(8.0)
        with rec.lock:
            window = [(t, q) for t, q in rec.arm[n0:] if t >= t0]
        status = rec.latest_status()
        rate = len(window) / (window[-1][0] - window[0][0])
        gaps = np.diff([t for t, _ in window])
        assert rate > 90, f"arm command rate {rate:.1f} Hz"
        assert gaps.max() < 0.1, f"a command gap of {gaps.max() * 1e3:.0f} ms"
        assert status.stalls == 0 and status.state == "running", status
        # Every arm command that reached the robot is inside the URDF limits and the forearm clip (degrees).
        q = np.array([q for _, q in window])
        limits = np.degrees(depalletize_layout.robot.arm_limits)
        assert np.all(q >= limits[:, 0] - 1e-6) and np.all(q <= limits[:, 1] + 1e-6)
        assert np.all(q[:, [3, 10]] >= -130 - 1e-6)
        step = np.abs(np.diff(np.radians(q), axis=0)).max()
        assert step <= 1.0 * 0.01 + 1e-6 + 0.01, f"largest arm step {step:.4f} rad between commands"

        stopped = call(rospy, "/groot_policy/stop")
        assert stopped.success and "arm mode restored to 1 (read back)" in stopped.message, stopped.message
        assert rospy.get_param("/kuavo_loopback_sim/arm_ctrl_mode") == 1, "arm mode not restored by ~stop"
        rec.wait_for(lambda s: s.state == "stopped" and "read back" in s.reason, 5, "stopped state with the restore")
        started = call(rospy, "/groot_policy/start")
        assert started.success, started.message
        assert rospy.get_param("/kuavo_loopback_sim/arm_ctrl_mode") == 2
    finally:
        rec.close()
        code = stop(proc.proc)
    assert code == 0, (tmp_path / "launch.log").read_text()[-3000:]


def test_camera_dropout_holds_then_recovers(ros_node, tiny_checkpoint, tmp_path):
    """The head camera comes from this test: it stops for 2 s, the node holds, then resumes by itself."""
    from sensor_msgs.msg import Image

    rospy = ros_node
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
    sim = start_sim(tmp_path / "sim.log")
    proc = launch("groot_ros", "policy.launch", f"checkpoint:={tiny_checkpoint.pretrained_model}",
                  f"topics:={tmp_path / 'topics.yaml'}", f"execution_overrides:={tmp_path / 'exec.yaml'}",
                  log=tmp_path / "launch.log")
    rec = Recorder(rospy)
    try:
        rec.wait_for(lambda s: s.state == "running" and s.chunks >= 1, 90, "running with chunks", [proc, sim])
        publishing.clear()
        held = rec.wait_for(lambda s: s.state == "holding", 5, "a hold after the camera stopped")
        assert any("head" in r and "stale" in r for r in held.stale_streams), held
        with rec.lock:
            n_hold = len(rec.arm)
        time.sleep(0.5)
        with rec.lock:
            held_cmds = np.array([q for _, q in rec.arm[n_hold:]])
        assert len(held_cmds) > 20, "the node must keep commanding the held pose"
        assert np.ptp(held_cmds, axis=0).max() < 1e-6, "holding must not move the arms"
        publishing.set()
        rec.wait_for(lambda s: s.state == "running", 10, "automatic recovery")
        chunks_before = rec.latest_status().chunks
        rec.wait_for(lambda s: s.chunks > chunks_before, 10, "new chunks after recovery")
    finally:
        done.set()
        rec.close()
        stop(proc.proc)
        stop(sim.proc)


def test_real_robot_launch_starts_paused_and_drives_the_sdk(ros_node, tiny_checkpoint, tmp_path):
    """real_robot.launch against the stand-in serving the real topic names: nothing moves before ~start."""
    rospy = ros_node
    sim = start_sim(tmp_path / "sim.log", "_topics:=real")
    proc = launch("groot_ros", "real_robot.launch", f"checkpoint:={tiny_checkpoint.pretrained_model}",
                  "device:=cpu", "dtype:=float32", log=tmp_path / "launch.log")
    rec = Recorder(rospy)
    try:
        rec.wait_for(lambda s: s.state == "idle", 90, "the paused start", [proc, sim])
        time.sleep(1.0)
        assert rospy.get_param("/kuavo_loopback_sim/arm_ctrl_mode") == 1, "arm mode switched before ~start"
        with rec.lock:
            assert rec.arm == [], "arm commands before ~start"
        response = call(rospy, "/groot_policy/start")
        assert response.success, response.message
        assert rospy.get_param("/kuavo_loopback_sim/arm_ctrl_mode") == 2
        rec.wait_for(lambda s: s.state == "running" and s.chunks >= 2, 60, "chunks through the SDK backend")
        with rec.lock:
            assert len(rec.arm) > 10, "the SDK backend sends /kuavo_arm_traj"
        assert call(rospy, "/groot_policy/stop").success
        assert rospy.get_param("/kuavo_loopback_sim/arm_ctrl_mode") == 1
    finally:
        rec.close()
        stop(proc.proc)
        stop(sim.proc)


def test_relative_checkpoint_path_from_the_users_directory(ros_node, tiny_checkpoint, tmp_path):
    """`roslaunch groot_ros sim_depalletize.launch checkpoint:=<relative>` typed in the folder above it."""
    rospy = ros_node
    relative = Path("ckpt_copy") / "pretrained_model"
    (tmp_path / "ckpt_copy").symlink_to(tiny_checkpoint.pretrained_model.parent)
    proc = launch("groot_ros", "sim_depalletize.launch", f"checkpoint:={relative}", "seed:=0",
                  log=tmp_path / "launch.log", cwd=tmp_path)
    rec = Recorder(rospy)
    try:
        rec.wait_for(lambda s: s.state == "running" and s.chunks >= 1, 90, "running with chunks", [proc])
    finally:
        rec.close()
        stop(proc.proc)


def test_a_launch_whose_node_dies_fails_fast_with_the_reason(ros_node, tmp_path):
    rospy = ros_node
    rec = Recorder(rospy)
    proc = launch("groot_ros", "policy.launch", "checkpoint:=no/such/pretrained_model", log=tmp_path / "launch.log",
                  cwd=tmp_path)
    t0 = time.monotonic()
    try:
        with pytest.raises(ProcessDied) as err:
            rec.wait_for(lambda s: s.state == "running", 120, "a running node", [proc])
    finally:
        rec.close()
        stop(proc.proc)
    assert time.monotonic() - t0 < 30, "waited on a dead launch"
    text = str(err.value)
    assert "'no/such/pretrained_model' does not exist" in text and str(tmp_path / "no/such/pretrained_model") in text
