"""Fault injection against a real master, the stand-in and the node (policy.launch): each fault must hold with a
reason, no command may leave the envelope, and every exit restores the arm mode as read back from the stand-in.
The figures (commands outside the envelope, largest arm step, time to hold, mode restored) are written to
fault_table.json in the test's tmp dir and printed (pytest -s)."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import random
import signal
import subprocess
import threading
import time
from pathlib import Path
from xmlrpc.client import ServerProxy

import numpy as np
import pytest
import yaml

from groot_ros.core.paths import config_dir
from conftest import _free_port
from groot_ros.sim.launcher import roslaunch, stop, wait_until
from conftest import REPO, call, start_sim

pytestmark = [pytest.mark.ros, pytest.mark.slow]
MODE = "/kuavo_loopback_sim/arm_ctrl_mode"
START_DEG = [-20, 0, 0, -40, 0, 0, 0, -20, 0, 0, -40, 0, 0, 0]
MAX_STEP = 1.0 * 0.01 + 1e-6  # the envelope: 1 rad/s at 100 Hz, per command


class Camera:
    """The head camera, from the test: normal, frozen (same bytes, fresh stamps), with a stamp offset, or in an
    encoding nobody can decode (`depth`: 16UC1)."""

    def __init__(self, rospy):
        from sensor_msgs.msg import Image

        self.rospy, self.offset, self.frozen, self.depth = rospy, 0.0, False, False
        self.done = threading.Event()
        self.pub = rospy.Publisher("/test/head_cam", Image, queue_size=1)
        self.img = Image(height=48, width=64, encoding="rgb8", step=64 * 3)
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        k = 0
        while not self.done.is_set():
            k += 1
            if not self.frozen:
                self.img.data = bytes([k % 256]) * (48 * 64 * 3)
            self.img.encoding, self.img.step = ("16UC1", 64 * 2) if self.depth else ("rgb8", 64 * 3)
            if self.depth:
                self.img.data = self.img.data[: 48 * 64 * 2]
            self.img.header.stamp = self.rospy.Time.from_sec(self.rospy.get_time() + self.offset)
            self.pub.publish(self.img)
            time.sleep(0.05)


def _envelope_violations(samples, layout, max_step_rad: float = MAX_STEP) -> tuple[int, float]:
    """Commands outside the URDF limits or steps above the rate limit per command: samples are (receive time,
    degrees, publisher sequence number); a sequence gap of k allows k steps (messages lost on the way), a receive
    gap > 0.1 s is a stop/start (the robot moved by itself in between, e.g. auto swing). Returns the violations
    and the largest step per command."""
    t = np.array([s[0] for s in samples])
    q_deg = np.array([s[1] for s in samples])
    limits = np.degrees(layout.robot.arm_limits)
    outside = int(np.sum(np.any((q_deg < limits[:, 0] - 1e-6) | (q_deg > limits[:, 1] + 1e-6), axis=1)))
    if len(q_deg) < 2:
        return outside, 0.0
    commands = np.maximum(np.diff([s[2] for s in samples]), 1)
    steps = (np.abs(np.diff(np.radians(q_deg), axis=0)).max(axis=1) / commands)[np.diff(t) < 0.1]
    steps = steps if len(steps) else np.zeros(1)
    return outside + int(np.sum(steps > max_step_rad)), float(steps.max())


class FaultRun:
    """One node under fault injection: runs each case and keeps its row of the fault table."""

    def __init__(self, rospy, rec, layout, watched):
        self.rospy, self.rec, self.layout, self.watched = rospy, rec, layout, watched
        self.table: list[dict] = []

    def mark(self) -> int:
        with self.rec.lock:
            return len(self.rec.arm)

    def row(self, case: str, since: int, **figures) -> dict:
        with self.rec.lock:
            q = list(self.rec.arm[since:])
        bad, step = _envelope_violations(q, self.layout)
        row = {"case": case, "outside_envelope": bad, "largest_arm_step_rad": round(step, 4), **figures}
        self.table.append(row)
        assert bad == 0, row
        return row

    def running(self, timeout: float = 120.0):
        """Running with a chunk; these tests turn auto-resume off: a hold no case injected is resumed (conftest)."""
        return self.rec.running(timeout, self.watched)

    def hold_case(self, name, inject, clear, reason_part, resume=True):
        self.running(30.0)
        n0 = self.mark()
        t0 = time.monotonic()
        inject()
        held = self.rec.wait_for(lambda s: s.state == "holding" and reason_part in s.reason, 10,
                                 f"a hold on {name}", self.watched)
        t_hold = time.monotonic() - t0
        clear()
        ok = resume and wait_until(lambda: call(self.rospy, "/groot_policy/resume").success, 10,
                                   f"~resume after {name}", self.watched)
        return self.row(name, n0, time_to_hold_s=round(t_hold, 2), reason=held.reason[:90], resumed=bool(ok))

    def signal_case(self, name, send, proc) -> dict:
        """SIGINT/SIGTERM: how long until the process exited, and the arm mode read back from the stand-in."""
        n0 = self.mark()
        t0 = time.monotonic()
        send()
        code = wait_until(lambda: proc.poll() is not None and f"{proc.returncode}", 30, f"the node to exit on {name}")
        restored = (self.rospy.get_param(MODE) == 1
                    and self.rospy.get_param("/kuavo_loopback_sim/wbc_arm_trajectory_control") == 0)
        return self.row(name, n0, time_to_restore_s=round(time.monotonic() - t0, 2), reason=f"exit code {code}",
                        mode_restored=restored)

    def save(self, path):
        path.write_text(json.dumps(self.table, indent=1))
        print(json.dumps(self.table, indent=1))
        if self.rec.unasked:
            print("holds no case injected (resumed):", self.rec.unasked)


def _policy_setup(rospy, tmp_path, **topic_overrides):
    """Topics with the head camera (and any stream named in topic_overrides) from the test, the execution
    overrides of every fault test, and the test's own camera publisher."""
    topics = yaml.safe_load((config_dir() / "topics" / "sim.yaml").read_text())
    topics["cameras"]["head"]["topic"] = "/test/head_cam"
    for stream, topic in topic_overrides.items():
        topics["streams"][stream]["topic"] = topic
    (tmp_path / "topics.yaml").write_text(yaml.safe_dump(topics))
    (tmp_path / "exec.yaml").write_text(yaml.safe_dump({
        "watchdog": {"auto_resume": False, "frozen_camera_s": 1.0},
        "startup": {"arm_pose_deg": START_DEG, "move_time_s": 2.0}}))
    return Camera(rospy)


def _start(node, tiny_checkpoint, tmp_path, *extra):
    return node.start("policy.launch", "seed:=0", f"topics:={tmp_path / 'topics.yaml'}",
                      f"execution_overrides:={tmp_path / 'exec.yaml'}", "direct_to_wbc:=true", *extra,
                      checkpoint=tiny_checkpoint.pretrained_model)


def test_faults_hold_with_reasons_and_exits_restore(node_on_standin, tiny_checkpoint, depalletize_layout, tmp_path):
    from groot_ros.ros import messages as km

    rospy = node_on_standin.rospy
    cam = _policy_setup(rospy, tmp_path)
    node = _start(node_on_standin, tiny_checkpoint, tmp_path)
    rec, proc, sim = node.rec, node.proc, node.sim
    joints = rospy.Publisher("/sensors_data_raw", km.sensorsData, queue_size=50)
    run = FaultRun(rospy, rec, depalletize_layout, [proc, sim])
    try:
        run.running()
        assert rospy.get_param("/kuavo_loopback_sim/wbc_arm_trajectory_control") == 1
        with rec.lock:
            q = list(rec.arm)
        assert np.any(np.abs(np.array([p for _, p, _ in q]) - np.array(START_DEG)).max(axis=1) < 3.0), \
            "the start-up never reached the start pose"
        run.row("start-up (head, claws, mode read back, move, direct-to-WBC)", 0, time_to_hold_s=None, reason="")

        run.hold_case("camera frozen (same image, fresh stamps)", lambda: setattr(cam, "frozen", True),
                      lambda: setattr(cam, "frozen", False), "frozen")
        run.hold_case("camera stamps 5 s in the future", lambda: setattr(cam, "offset", 5.0),
                      lambda: setattr(cam, "offset", 0.0), "future")
        run.hold_case("camera stamps 5 s in the past", lambda: setattr(cam, "offset", -5.0),
                      lambda: setattr(cam, "offset", 0.0), "past")

        def burst(n_joints, value):
            def run_burst():
                msg = km.sensorsData()
                msg.joint_data.joint_q = [value] * n_joints
                for _ in range(300):
                    msg.header.stamp = rospy.Time.now()
                    joints.publish(msg)
                    time.sleep(0.002)
            return run_burst

        run.hold_case("NaN burst on /sensors_data_raw", burst(28, float("nan")), lambda: None, "measured pose invalid")
        run.hold_case("27-joint message on /sensors_data_raw", burst(27, 0.0), lambda: None, "malformed")

        rng = random.Random(0)
        n0 = run.mark()
        for _ in range(1000):
            call(rospy, "/groot_policy/" + rng.choice(["pause", "resume", "pause", "resume", "stop", "start"])
                 ) if rng.random() < 0.02 else call(rospy, "/groot_policy/" + rng.choice(["pause", "resume"]))
        status = rec.wait_for(lambda s: s.state in ("running", "paused", "holding", "stopped", "idle"), 30,
                              "a settled state after 1000 calls", [proc, sim])
        run.row("1000 random ~stop/~start/~pause/~resume", n0, time_to_hold_s=None, reason=status.state)
        if status.state == "stopped":
            assert call(rospy, "/groot_policy/start").success
        rec.wait_for(lambda s: s.state in ("running", "paused", "holding"), 30, "commanding again", [proc, sim])
        assert rospy.get_param(MODE) == 2
        # SIGINT (roslaunch stop): the node restores while the stand-in (own process) lives
        row = run.signal_case("SIGINT (roslaunch stop)", lambda: stop(proc.proc), proc.proc)
    finally:
        cam.done.set()
        joints.unregister()  # the master is the session's: a publisher left here is a second /sensors_data_raw
        run.save(tmp_path / "fault_table.json")
    assert row["mode_restored"], (tmp_path / "launch.log").read_text()[-3000:]


class ClawRelay:
    """The stand-in's /leju_claw_state, passed on to the node's claw topic while `on` (claw state missing), with
    the left claw's position replaced by `left` when set (out of range)."""

    def __init__(self, rospy, topic: str):
        from groot_ros.ros import messages as km

        self.on, self.left = True, None
        self.pub = rospy.Publisher(topic, km.lejuClawState, queue_size=5)
        self.sub = rospy.Subscriber("/leju_claw_state", km.lejuClawState, self._cb, queue_size=5)

    def _cb(self, msg):
        if self.left is not None:
            msg.data.position = [self.left, *msg.data.position[1:]]
        if self.on:
            self.pub.publish(msg)

    def close(self):
        self.sub.unregister()
        self.pub.unregister()


def test_lost_inputs_model_failures_and_signals(node_on_standin, tiny_checkpoint, depalletize_layout, tmp_path):
    """Claw state missing, the model call raising, the stand-in killed mid-motion (and restarted: ~stop, ~start),
    SIGINT during an inference: every hold with its reason, no command outside the envelope, the mode restored."""
    rospy = node_on_standin.rospy
    rospy.set_param("/test/model_fault", "")
    cam = _policy_setup(rospy, tmp_path, claws="/test/claw_state")
    relay = ClawRelay(rospy, "/test/claw_state")
    node = _start(node_on_standin, tiny_checkpoint, tmp_path, "node_type:=faulty_policy_node")
    rec, proc, sims = node.rec, node.proc, [node.sim]
    run = FaultRun(rospy, rec, depalletize_layout, [proc, sims[0]])
    row = {}
    try:
        run.running()
        run.hold_case("claw state missing (/leju_claw_state stops)", lambda: setattr(relay, "on", False),
                      lambda: setattr(relay, "on", True), "claws")
        run.hold_case("model call raising", lambda: rospy.set_param("/test/model_fault", "raise"),
                      lambda: rospy.set_param("/test/model_fault", ""), "inference failed: RuntimeError: injected")

        def kill_sim():
            os.killpg(sims[0].proc.pid, signal.SIGKILL)
            sims[0].proc.wait()

        run.watched = [proc]
        held = run.hold_case("stand-in killed mid-motion", kill_sim, lambda: None, "joints", resume=False)
        # the controller is back (a fresh stand-in in its own mode): ~stop reports what it reads, ~start re-engages
        sims.append(start_sim(tmp_path / "sim2.log"))
        run.watched = [proc, sims[1]]
        stopped = call(rospy, "/groot_policy/stop")  # sends the new stand-in's measured pose (zero) before the
        n0 = run.mark()  # restore: not a move, so the envelope is judged again from the ~start on
        held["mode_restored"] = stopped.success and "read back" in stopped.message
        held["reason"] += f" | ~stop: {stopped.message[-80:]}"
        assert held["mode_restored"], stopped.message
        started = call(rospy, "/groot_policy/start")
        assert started.success, started.message
        run.running(60.0)
        assert rospy.get_param(MODE) == 2
        run.row("stand-in killed: ~start on the restarted stand-in", n0)

        rospy.set_param("/test/model_fault", 3.0)  # the next inference takes 3 s: hold, then SIGINT during it
        rec.wait_for(lambda s: s.state == "holding" and "inference took" in s.reason, 10, "a slow inference",
                     run.watched)
        row = run.signal_case("SIGINT during an inference", lambda: stop(proc.proc), proc.proc)
    finally:
        rospy.set_param("/test/model_fault", "")
        cam.done.set()
        relay.close()
        for sim in sims[1:]:  # the restarted stand-in; the fixture stops the rest
            stop(sim.proc)
        run.save(tmp_path / "fault_table.json")
    assert row.get("mode_restored"), (tmp_path / "launch.log").read_text()[-3000:]


def _node_pid(name: str) -> int:
    """The pid of a running node, asked from the node itself (ROS slave API), as rosnode does."""
    import xmlrpc.client

    import rosgraph

    uri = rosgraph.Master("/groot_ros_test").lookupNode(name)
    return int(xmlrpc.client.ServerProxy(uri).getPid("/groot_ros_test")[2])


def test_sigterm_restores_the_arm_mode(node_on_standin, tiny_checkpoint, depalletize_layout, tmp_path):
    rospy = node_on_standin.rospy
    cam = _policy_setup(rospy, tmp_path)
    node = _start(node_on_standin, tiny_checkpoint, tmp_path)
    rec, proc, sim = node.rec, node.proc, node.sim
    run = FaultRun(rospy, rec, depalletize_layout, [proc, sim])
    row = {}
    try:
        run.running()
        assert rospy.get_param(MODE) == 2
        pid = _node_pid("/groot_policy")
        row = run.signal_case("SIGTERM to the node", lambda: os.kill(pid, signal.SIGTERM), proc.proc)
    finally:
        cam.done.set()
        run.save(tmp_path / "fault_table.json")
    assert row.get("mode_restored"), (tmp_path / "launch.log").read_text()[-3000:]


def _echo(topic: str, out: Path, env: dict) -> subprocess.Popen:
    """rostopic echo -p: a recorder that keeps its peer-to-peer connection when the master dies."""
    with open(out, "w") as f, open(out.with_suffix(".log"), "w") as err:
        return subprocess.Popen(["rostopic", "echo", "-p", topic], stdout=f, stderr=err,
                                env=dict(env, PYTHONUNBUFFERED="1"), start_new_session=True)


def test_master_killed_keeps_the_envelope_and_reports_the_restore_truthfully(tiny_checkpoint, depalletize_layout,
                                                                            tmp_path):
    """A master of its own (the session's stays up): kill it while the policy runs. Established topic connections
    go on peer to peer, so the node keeps commanding inside the envelope; on exit no service can be looked up,
    and the node must say the arm mode was NOT restored rather than claim it."""
    port = _free_port()
    env = dict(os.environ, ROS_MASTER_URI=f"http://127.0.0.1:{port}")
    master = subprocess.Popen(["roscore", "-p", str(port)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    (tmp_path / "exec.yaml").write_text(yaml.safe_dump({"startup": {"arm_pose_deg": START_DEG, "move_time_s": 2.0}}))
    procs, rosout = [], None
    try:
        import rosgraph

        wait_until(lambda: rosgraph.is_master_online(env["ROS_MASTER_URI"]), 30, "the test's own master")
        with open(tmp_path / "sim.log", "w") as out:
            procs.append(subprocess.Popen(["python", str(REPO / "nodes" / "kuavo_loopback_sim"),
                                           "__name:=kuavo_loopback_sim"], env=env, stdout=out,
                                          stderr=subprocess.STDOUT, start_new_session=True))
        node = roslaunch(["groot_ros", "policy.launch", f"checkpoint:={tiny_checkpoint.pretrained_model}", "seed:=0",
                          f"execution_overrides:={tmp_path / 'exec.yaml'}", "direct_to_wbc:=true"], env,
                         tmp_path / "launch.log")
        procs.append(node.proc)
        arm = _echo("/kuavo_arm_traj", tmp_path / "arm.csv", env)
        procs += [_echo(f"/groot_policy/status/{field}", tmp_path / f"{field}.csv", env)
                  for field in ("state", "restore")]
        procs.append(arm)

        wait_until(lambda: "running" in last_value(tmp_path / "state.csv") or None, 90, "running on the own master",
                   [node])
        time.sleep(1.0)
        graph = rosgraph.Master("/groot_ros_test", master_uri=env["ROS_MASTER_URI"])
        rosout = ServerProxy(graph.lookupNode("/rosout")).getPid("/groot_ros_test")[2]  # killed after the test
        os.kill(graph.getPid(), signal.SIGKILL)  # roslaunch runs rosmaster in a session of its own
        os.killpg(master.pid, signal.SIGKILL)
        master.wait()
        t_kill = time.monotonic()
        time.sleep(3.0)
        stop(node.proc)
        t_exit = time.monotonic() - t_kill
    finally:
        for proc in reversed(procs):
            stop(proc)
        stop(master)
        if rosout is not None:  # the killed roscore cannot stop its rosout any more
            with contextlib.suppress(ProcessLookupError):
                os.kill(rosout, signal.SIGKILL)
    with open(tmp_path / "arm.csv") as f:
        rows = list(csv.reader(f))
    cols = [i for i, name in enumerate(rows[0]) if name.startswith("field.position")]
    seq = rows[0].index("field.header.seq")
    samples = [(int(r[0]) * 1e-9, np.array([float(r[i]) for i in cols]), int(r[seq])) for r in rows[1:]]
    bad, step = _envelope_violations(samples, depalletize_layout)
    after_kill = [t for t, _, _ in samples if t > samples[-1][0] - t_exit - 3.0]
    restore = last_value(tmp_path / "restore.csv")  # the node's last ~status, sent peer to peer on its way out
    row = {"case": "master killed", "outside_envelope": bad, "largest_arm_step_rad": round(step, 4),
           "commands_after_kill": len(after_kill), "mode_restored": restore == "restored", "reported": restore}
    print(json.dumps(row))
    (tmp_path / "fault_table.json").write_text(json.dumps([row], indent=1))
    assert bad == 0, row
    assert restore == "not restored", (tmp_path / "launch.log").read_text()[-3000:]


def last_value(path: Path) -> str:
    """The last value `rostopic echo -p TOPIC/FIELD` wrote ("" before the first)."""
    rows = list(csv.reader(path.read_text().strip().splitlines()))
    return rows[-1][1] if len(rows) > 1 else ""


CLOCK = """
import os, sys, time
import rospy
from rosgraph_msgs.msg import Clock
rospy.init_node("test_clock", disable_signals=True)
pub = rospy.Publisher("/clock", Clock, queue_size=10)
start, offset, flag = time.monotonic(), 0.0, sys.argv[1]
while True:
    if offset == 0.0 and os.path.exists(flag):
        offset = -5.0
    pub.publish(Clock(clock=rospy.Time.from_sec(1000.0 + time.monotonic() - start + offset)))
    time.sleep(0.005)
"""


def test_status_and_diagnostics_go_on_when_the_clock_jumps_back(tiny_checkpoint, tmp_path):
    """use_sim_time, /clock set back 5 s: a rospy.Timer's thread dies there (ROSTimeMovedBackwardsException) and
    diagnostic_updater would wait for its old time to come back; ~status and /diagnostics must go on at once.
    A master of its own (use_sim_time would reach the session's other nodes); the node alone, a dry run."""
    port = _free_port()
    env = dict(os.environ, ROS_MASTER_URI=f"http://127.0.0.1:{port}")
    procs = [subprocess.Popen(["roscore", "-p", str(port)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)]
    flag = tmp_path / "jump"
    try:
        import rosgraph

        wait_until(lambda: rosgraph.is_master_online(env["ROS_MASTER_URI"]), 30, "the test's own master")
        rosgraph.Master("/groot_ros_test", master_uri=env["ROS_MASTER_URI"]).setParam("/use_sim_time", True)
        with open(tmp_path / "clock.log", "w") as out:
            procs.append(subprocess.Popen(["python", "-c", CLOCK, str(flag)], env=env, stdout=out,
                                          stderr=subprocess.STDOUT, start_new_session=True))
        node = roslaunch(["groot_ros", "policy.launch", f"checkpoint:={tiny_checkpoint.pretrained_model}",
                          "dry_run:=true", "start_paused:=true"], env, tmp_path / "launch.log")
        procs.append(node.proc)
        status, diagnostics = tmp_path / "status.csv", tmp_path / "diagnostics.csv"
        procs += [_echo("/groot_policy/status/state", status, env),
                  _echo("/diagnostics/header/stamp", diagnostics, env)]

        def lines(path: Path) -> int:
            return len(path.read_text().splitlines())

        wait_until(lambda: lines(status) > 3 and lines(diagnostics) > 2, 90, "status and diagnostics", [node])
        flag.touch()
        n_status, n_diag = lines(status), lines(diagnostics)
        time.sleep(4.0)
        after = {"status": lines(status) - n_status, "diagnostics": lines(diagnostics) - n_diag}
        print(json.dumps({"case": "clock jumped back 5 s (use_sim_time)", "messages_in_4_s_after": after}))
        assert after["status"] >= 4 and after["diagnostics"] >= 2, (after, (tmp_path / "launch.log").read_text()[-3000:])
    finally:
        for proc in reversed(procs):
            stop(proc)


def test_faults_a_lab_will_hit(node_on_standin, tiny_checkpoint, depalletize_layout, tmp_path):
    """Issue 23 on the real node: a slow inference's hold ends, an undecodable camera and an impossible claw
    state hold naming them, another commander holds (and blocks ~start), a second node of the same name leaves
    the first running, a full disk under the observation log stops only the logging."""
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
    from sensor_msgs.msg import JointState

    rospy = node_on_standin.rospy
    rospy.set_param("/test/model_fault", "")
    cam = _policy_setup(rospy, tmp_path, claws="/test/claw_state")
    relay = ClawRelay(rospy, "/test/claw_state")
    log_dir = tmp_path / "obs_log"
    node = _start(node_on_standin, tiny_checkpoint, tmp_path, "node_type:=faulty_policy_node",
                  f"observation_log_dir:={log_dir}")
    rec, proc = node.rec, node.proc
    run = FaultRun(rospy, rec, depalletize_layout, [proc, node.sim])
    warnings: list[str] = []
    diag = rospy.Subscriber("/diagnostics", DiagnosticArray, lambda m: warnings.extend(
        s.message for s in m.status if s.name.endswith("warnings") and s.level == DiagnosticStatus.WARN))
    try:
        run.running()
        run.hold_case("one slow inference (1.5 s, limit 1 s), then fast again",
                      lambda: rospy.set_param("/test/model_fault", 1.5),
                      lambda: rospy.set_param("/test/model_fault", ""), "inference took 1.5")
        run.hold_case("camera sending 16UC1 (undecodable)", lambda: setattr(cam, "depth", True),
                      lambda: setattr(cam, "depth", False), "observation not usable: head")
        run.hold_case("claw state 150", lambda: setattr(relay, "left", 150.0), lambda: setattr(relay, "left", None),
                      "Claw_pos_0=150")
        other: list = []
        run.hold_case("another node publishing on /kuavo_arm_traj",
                      lambda: other.append(rospy.Publisher("/kuavo_arm_traj", JointState, queue_size=1)),
                      lambda: other.pop().unregister(), "another node commands the robot")

        # ~start is refused while another node is there, and touches nothing
        assert call(rospy, "/groot_policy/stop").success
        rec.wait_for(lambda s: s.state == "stopped", 20, "stopped", run.watched)
        pub = rospy.Publisher("/kuavo_arm_traj", JointState, queue_size=1)
        wait_until(lambda: rospy.get_name() in str(rosgraph_publishers("/kuavo_arm_traj")), 10, "the registration")
        refused = call(rospy, "/groot_policy/start")
        assert not refused.success and "not starting: another node commands the robot" in refused.message, refused
        time.sleep(1.0)
        assert rec.latest_status().state == "stopped"  # the refusal touched nothing
        pub.unregister()
        wait_until(lambda: rospy.get_name() not in str(rosgraph_publishers("/kuavo_arm_traj")), 10, "unregistering")
        n0 = run.mark()
        assert call(rospy, "/groot_policy/start").success
        run.running(60.0)
        run.row("~start while another node publishes on /kuavo_arm_traj: refused; then started", n0,
                reason=refused.message[:90])

        # the same name again: the second one refuses, the first runs on
        n0 = run.mark()
        second = roslaunch(["groot_ros", "policy.launch", f"checkpoint:={tiny_checkpoint.pretrained_model}",
                            "dry_run:=true"], None, tmp_path / "second.log")
        wait_until(lambda: "already running" in (tmp_path / "second.log").read_text(), 60, "the second node's refusal")
        stop(second.proc)
        seen = len(rec.statuses)
        status = rec.wait_for(lambda s: len(rec.statuses) > seen + 2, 10, "the first node still reporting",
                              run.watched)
        assert status.state == "running", status
        run.row("a second launch with the same node name", n0,
                reason="the second exits: a node named /groot_policy is already running; the first runs on")

        # a full disk under the observation log
        n0 = run.mark()
        os.symlink("/dev/full", log_dir / ".chunk.npz.partial")
        chunks = rec.latest_status().chunks
        wait_until(lambda: warnings, 20, "the observation log warning in /diagnostics", run.watched)
        status = rec.wait_for(lambda s: s.chunks > chunks + 5, 30, "chunks after the disk error", run.watched)
        assert status.state == "running" and "No space left on device" in warnings[-1], (status, warnings)
        for path in log_dir.glob("chunk_*.npz"):
            np.load(path).files  # complete files only
        run.row("observation log on a full disk", n0, reason="/diagnostics warnings: observation log off ... "
                + warnings[-1].rsplit(": ", 1)[-1])
    finally:
        diag.unregister()
        rospy.set_param("/test/model_fault", "")
        cam.done.set()
        relay.close()
        run.save(tmp_path / "fault_table.json")


def rosgraph_publishers(topic: str) -> list[str]:
    import rosgraph

    publishers = rosgraph.Master("/groot_ros_test").getSystemState()[0]
    return next((nodes for t, nodes in publishers if t == topic), [])
