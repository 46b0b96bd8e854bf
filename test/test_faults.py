"""Fault injection against a real master, the stand-in and the node (policy.launch): each fault must hold with a
reason, no command may leave the envelope, and every exit restores the arm mode as read back from the stand-in.
The figures (commands outside the envelope, largest arm step, time to hold, mode restored) are written to
fault_table.json in the test's tmp dir and printed (pytest -s)."""

from __future__ import annotations

import json
import random
import threading
import time

import numpy as np
import pytest
import yaml

from groot_ros.core.paths import config_dir
from groot_ros.sim.launcher import stop, wait_until
from test_policy_node import Recorder, call, launch, start_sim

pytestmark = [pytest.mark.ros, pytest.mark.slow]
MODE = "/kuavo_loopback_sim/arm_ctrl_mode"


class Camera:
    """The head camera, from the test: normal, frozen (same bytes, fresh stamps) or with a stamp offset."""

    def __init__(self, rospy):
        from sensor_msgs.msg import Image

        self.rospy, self.offset, self.frozen, self.done = rospy, 0.0, False, threading.Event()
        self.pub = rospy.Publisher("/test/head_cam", Image, queue_size=1)
        self.img = Image(height=48, width=64, encoding="rgb8", step=64 * 3)
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        k = 0
        while not self.done.is_set():
            k += 1
            if not self.frozen:
                self.img.data = bytes([k % 256]) * (48 * 64 * 3)
            self.img.header.stamp = self.rospy.Time.from_sec(self.rospy.get_time() + self.offset)
            self.pub.publish(self.img)
            time.sleep(0.05)


def _envelope_violations(samples, layout, max_step_rad: float) -> tuple[int, float]:
    """Commands outside the URDF limits or steps above the rate limit between consecutive commands of one
    stream (a gap > 0.1 s is a stop/start: the robot moved by itself in between, e.g. auto swing)."""
    t = np.array([s[0] for s in samples])
    q_deg = np.array([s[1] for s in samples])
    limits = np.degrees(layout.robot.arm_limits)
    outside = int(np.sum(np.any((q_deg < limits[:, 0] - 1e-6) | (q_deg > limits[:, 1] + 1e-6), axis=1)))
    if len(q_deg) < 2:
        return outside, 0.0
    steps = np.abs(np.diff(np.radians(q_deg), axis=0)).max(axis=1)[np.diff(t) < 0.1]
    steps = steps if len(steps) else np.zeros(1)
    return outside + int(np.sum(steps > max_step_rad)), float(steps.max())


def test_faults_hold_with_reasons_and_exits_restore(ros_node, tiny_checkpoint, depalletize_layout, tmp_path):
    from groot_ros.ros import messages as km

    rospy = ros_node
    topics = yaml.safe_load((config_dir() / "topics" / "sim.yaml").read_text())
    topics["cameras"]["head"]["topic"] = "/test/head_cam"
    (tmp_path / "topics.yaml").write_text(yaml.safe_dump(topics))
    (tmp_path / "exec.yaml").write_text(yaml.safe_dump({
        "watchdog": {"auto_resume": False, "frozen_camera_s": 1.0},
        "startup": {"arm_pose_deg": [-20, 0, 0, -40, 0, 0, 0, -20, 0, 0, -40, 0, 0, 0], "move_time_s": 2.0}}))
    cam = Camera(rospy)
    sim = start_sim(tmp_path / "sim.log")
    proc = launch("groot_ros", "policy.launch", f"checkpoint:={tiny_checkpoint.pretrained_model}", "seed:=0",
                  f"topics:={tmp_path / 'topics.yaml'}", f"execution_overrides:={tmp_path / 'exec.yaml'}",
                  "direct_to_wbc:=true", log=tmp_path / "launch.log")
    rec = Recorder(rospy)
    joints = rospy.Publisher("/sensors_data_raw", km.sensorsData, queue_size=50)
    table = []
    # the envelope: 1 rad/s at 100 Hz, with 1 tick of timer slack
    max_step = 1.0 * 0.01 * 2 + 1e-6

    def hold_case(name, inject, clear, reason_part):
        with rec.lock:
            n0 = len(rec.arm)
        t0 = time.monotonic()
        inject()
        held = rec.wait_for(lambda s: s.state == "holding" and reason_part in s.reason, 10, f"a hold on {name}",
                            [proc, sim])
        t_hold = time.monotonic() - t0
        clear()
        ok = wait_until(lambda: call(rospy, "/groot_policy/resume").success, 10, f"~resume after {name}", [proc, sim])
        with rec.lock:
            q = list(rec.arm[n0:])
        bad, step = _envelope_violations(q, depalletize_layout, max_step)
        table.append({"case": name, "outside_envelope": bad, "largest_arm_step_rad": round(step, 4),
                      "time_to_hold_s": round(t_hold, 2), "reason": held.reason[:90], "resumed": bool(ok)})
        assert bad == 0, table[-1]

    try:
        rec.wait_for(lambda s: s.state == "running" and s.chunks >= 1, 120, "running after the start-up", [proc, sim])
        assert rospy.get_param("/kuavo_loopback_sim/wbc_arm_trajectory_control") == 1
        with rec.lock:
            q = list(rec.arm)
        bad, step = _envelope_violations(q, depalletize_layout, max_step)
        start = np.array([-20, 0, 0, -40, 0, 0, 0, -20, 0, 0, -40, 0, 0, 0], dtype=float)
        assert np.any(np.abs(np.array([p for _, p in q]) - start).max(axis=1) < 3.0), "the start-up never reached the start pose"
        table.append({"case": "start-up (head, claws, mode read back, move, direct-to-WBC)", "outside_envelope": bad,
                      "largest_arm_step_rad": round(step, 4), "time_to_hold_s": None, "reason": "", "resumed": None})
        assert bad == 0

        hold_case("camera frozen (same image, fresh stamps)", lambda: setattr(cam, "frozen", True),
                  lambda: setattr(cam, "frozen", False), "frozen")
        hold_case("camera stamps 5 s in the future", lambda: setattr(cam, "offset", 5.0),
                  lambda: setattr(cam, "offset", 0.0), "future")
        hold_case("camera stamps 5 s in the past", lambda: setattr(cam, "offset", -5.0),
                  lambda: setattr(cam, "offset", 0.0), "past")

        def burst(n_joints, value):
            def run():
                msg = km.sensorsData()
                msg.joint_data.joint_q = [value] * n_joints
                for _ in range(300):
                    msg.header.stamp = rospy.Time.now()
                    joints.publish(msg)
                    time.sleep(0.002)
            return run

        hold_case("NaN burst on /sensors_data_raw", burst(28, float("nan")), lambda: None, "measured pose invalid")
        hold_case("27-joint message on /sensors_data_raw", burst(27, 0.0), lambda: None, "malformed")

        rng = random.Random(0)
        with rec.lock:
            n0 = len(rec.arm)
        for _ in range(1000):
            call(rospy, "/groot_policy/" + rng.choice(["pause", "resume", "pause", "resume", "stop", "start"])
                 ) if rng.random() < 0.02 else call(rospy, "/groot_policy/" + rng.choice(["pause", "resume"]))
        status = rec.wait_for(lambda s: s.state in ("running", "paused", "holding", "stopped", "idle"), 30,
                              "a settled state after 1000 calls", [proc, sim])
        with rec.lock:
            q = list(rec.arm[n0:])
        bad, step = _envelope_violations(q, depalletize_layout, max_step)
        table.append({"case": "1000 random ~stop/~start/~pause/~resume", "outside_envelope": bad,
                      "largest_arm_step_rad": round(step, 4), "time_to_hold_s": None, "reason": status.state,
                      "resumed": None})
        assert bad == 0
        if status.state == "stopped":
            assert call(rospy, "/groot_policy/start").success
        rec.wait_for(lambda s: s.state in ("running", "paused", "holding"), 30, "commanding again", [proc, sim])
        assert rospy.get_param(MODE) == 2
    finally:
        cam.done.set()
        rec.close()
        code = stop(proc.proc)  # SIGINT: the node restores while the stand-in (own process) lives
        restored = rospy.get_param(MODE) == 1 and rospy.get_param("/kuavo_loopback_sim/wbc_arm_trajectory_control") == 0
        table.append({"case": "SIGINT (roslaunch stop)", "outside_envelope": 0, "largest_arm_step_rad": None,
                      "time_to_hold_s": None, "reason": f"exit code {code}", "resumed": None, "mode_restored": restored})
        stop(sim.proc)
        (tmp_path / "fault_table.json").write_text(json.dumps(table, indent=1))
        print(json.dumps(table, indent=1))
    assert restored, (tmp_path / "launch.log").read_text()[-3000:]
