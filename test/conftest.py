"""Shared fixtures: a real ROS master for the tests that need one, the policy node on the Kuavo stand-in (one
set-up for every node test), and a guard against network access."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
try:  # inside scripts/in-env the catkin devel space provides groot_ros (with its generated groot_ros.msg)
    import groot_ros  # noqa: F401
except ImportError:
    sys.path.insert(0, str(REPO / "src"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def roscore(tmp_path_factory):
    """Starts a real roscore on a free port for this test session and points ROS_MASTER_URI at it."""
    port = _free_port()
    uri = f"http://127.0.0.1:{port}"
    env = dict(os.environ, ROS_MASTER_URI=uri, ROS_IP="127.0.0.1",
               ROS_LOG_DIR=str(tmp_path_factory.mktemp("roslog")))
    env.pop("ROS_HOSTNAME", None)
    proc = subprocess.Popen(["roscore", "-p", str(port)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    os.environ.update(ROS_MASTER_URI=uri, ROS_IP="127.0.0.1", ROS_LOG_DIR=env["ROS_LOG_DIR"])
    os.environ.pop("ROS_HOSTNAME", None)
    import rosgraph

    deadline = time.time() + 30
    while not rosgraph.is_master_online(uri):
        if time.time() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.fail("roscore did not come up within 30 s")
        time.sleep(0.2)
    yield uri
    os.killpg(proc.pid, 15)
    proc.wait(timeout=20)


@pytest.fixture(scope="session")
def ros_node(roscore):
    """This test process as one rospy node (rospy allows one init_node per process)."""
    import rospy

    rospy.init_node("groot_ros_pytest", anonymous=True, disable_signals=True)
    return rospy


class Recorder:
    """Keeps what the node publishes and what reaches the robot: arm commands with their receive time and the
    publisher's sequence number (a gap there is a message lost on the way, not a tick the node skipped)."""

    def __init__(self, rospy):
        from sensor_msgs.msg import JointState

        from groot_ros.msg import PolicyStatus

        self.rospy = rospy
        self.lock = threading.Lock()
        self.arm: list[tuple[float, np.ndarray, int]] = []
        self.statuses: list = []
        self.unasked: list[str] = []  # reasons of holds running() resumed
        self.subs = [rospy.Subscriber("/kuavo_arm_traj", JointState, self._arm, queue_size=200),
                     rospy.Subscriber("/groot_policy/status", PolicyStatus, self._status, queue_size=20)]

    def _arm(self, msg):
        with self.lock:
            self.arm.append((time.monotonic(), np.asarray(msg.position), msg.header.seq))

    def _status(self, msg):
        with self.lock:
            self.statuses.append(msg)

    def latest_status(self):
        with self.lock:
            return self.statuses[-1] if self.statuses else None

    def wait_for(self, predicate, timeout: float, what: str, watch=()):
        """The first status that satisfies predicate; fails at once if a watched process (roslaunch) exits."""
        from groot_ros.sim.launcher import wait_until

        def matching():
            status = self.latest_status()
            return status if status is not None and predicate(status) else None

        try:
            return wait_until(matching, timeout, what, watch, poll=0.1)
        except TimeoutError as exc:  # the status at the end of the wait, not at its start
            raise TimeoutError(f"{exc}\nlast status: {self.latest_status()}") from None

    def running(self, timeout: float, watch=(), chunks: int = 1):
        """Running with `chunks` chunks. A hold nobody asked for on the way (every stream about 0.3 s late right
        after the first inference on a busy 2-core machine; with auto_resume off, the default, it would last) is
        resumed, as an operator would, and kept in `self.unasked`."""
        deadline = time.monotonic() + timeout
        while True:
            last = self.latest_status()
            seen = last.header.seq if last is not None else -1  # a status from before a ~resume is no answer
            status = self.wait_for(lambda s: s.header.seq > seen and (
                (s.state == "running" and s.chunks >= chunks) or s.state == "holding"),
                max(deadline - time.monotonic(), 0.1), "running", watch)
            if status.state == "running":
                return status
            if status.reason not in self.unasked:
                self.unasked.append(status.reason)
                print("a hold no test step asked for (resumed):", status.reason)
            call(self.rospy, "/groot_policy/resume")  # refused while the input is still late: tried again
            time.sleep(0.2)

    def close(self):
        for sub in self.subs:
            sub.unregister()


COMMAND_TOPICS = ("/kuavo_arm_traj", "/leju_claw_command", "/cmd_pose")


def release_command_topics() -> None:
    """This test process stops publishing on the robot's command topics: a backend or the Kuavo SDK an earlier test
    used here keeps them registered on the session's master, and the node refuses to start while another node
    publishes there (one commander per robot). Every reference rospy holds is released, as unregister() would."""
    from rospy.impl.registration import Registration
    from rospy.topics import get_topic_manager

    manager = get_topic_manager()
    for topic in COMMAND_TOPICS:
        while manager.get_publisher_impl(topic) is not None:
            manager.release_impl(Registration.PUB, topic)


def launch(*args: str, log: Path, cwd: Path | None = None):
    from groot_ros.sim.launcher import roslaunch

    return roslaunch(args, None, log, cwd=cwd)


def start_sim(log: Path, *params: str):
    """The stand-in run directly (as rosrun would), with only `params` as its ~params: an earlier test's are
    cleared first (the master keeps a node's private params after it exits; roslaunch's clear_params does this)."""
    import rospy

    from groot_ros.sim.launcher import Watched

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


class NodeOnStandIn:
    """One node test's processes: the stand-in (own process, unless the launch file brings its own) and roslaunch,
    plus a Recorder; `watched` makes a wait fail at once when one of them dies. All stopped by the fixture."""

    def __init__(self, rospy, folder: Path):
        self.rospy, self.folder = rospy, folder
        self.sim = self.proc = self.rec = None

    def start(self, launch_file: str, *args: str, sim: tuple[str, ...] | None = (), cwd: Path | None = None,
              checkpoint: Path | str | None = None) -> "NodeOnStandIn":
        """sim: the stand-in's ~params, None for a launch file that starts it (sim_depalletize.launch)."""
        release_command_topics()
        if sim is not None:
            self.sim = start_sim(self.folder / "sim.log", *sim)
        extra = (f"checkpoint:={checkpoint}",) if checkpoint is not None else ()
        self.proc = launch("groot_ros", launch_file, *extra, *args, log=self.folder / "launch.log", cwd=cwd)
        self.rec = Recorder(self.rospy)
        return self

    @property
    def watched(self) -> list:
        return [w for w in (self.proc, self.sim) if w is not None]

    def wait_for(self, predicate, timeout: float, what: str):
        return self.rec.wait_for(predicate, timeout, what, self.watched)

    def call(self, service: str):
        return call(self.rospy, "/groot_policy/" + service)

    def stop_node(self) -> int:
        from groot_ros.sim.launcher import stop

        return stop(self.proc.proc)

    def close(self) -> None:
        """Stops everything; the stand-in's ~params go too (the master keeps them): the next one starts fresh."""
        from groot_ros.sim.launcher import stop

        if self.rec is not None:
            self.rec.close()
        for watched in (self.proc, self.sim):
            if watched is not None:
                stop(watched.proc)
        if self.rospy.has_param("/kuavo_loopback_sim"):
            self.rospy.delete_param("/kuavo_loopback_sim")


@pytest.fixture
def node_on_standin(ros_node, tmp_path):
    """The policy node on the Kuavo stand-in: `node_on_standin.start("policy.launch", *args, sim=(...))`."""
    session = NodeOnStandIn(ros_node, tmp_path)
    yield session
    session.close()


class NetworkAttempt(AssertionError):
    pass


@pytest.fixture
def no_network(monkeypatch):
    """Fails the test if anything tries to open a connection to a non-local address."""
    real_connect = socket.socket.connect
    real_create = socket.create_connection
    attempts: list = []

    def _local(address) -> bool:
        host = address[0] if isinstance(address, tuple) else address
        return isinstance(host, str) and (host.startswith("127.") or host in ("localhost", "::1")
                                          or host.startswith("/"))

    def guarded_connect(self, address):
        if self.family == socket.AF_UNIX or _local(address):
            return real_connect(self, address)
        attempts.append(address)
        raise NetworkAttempt(f"network connection attempted to {address}")

    def guarded_create(address, *args, **kwargs):
        if _local(address):
            return real_create(address, *args, **kwargs)
        attempts.append(address)
        raise NetworkAttempt(f"network connection attempted to {address}")

    def guarded_getaddrinfo(host, *args, **kwargs):
        if host is None or _local((host,)):
            return real_getaddrinfo(host, *args, **kwargs)
        attempts.append(host)
        raise NetworkAttempt(f"name lookup attempted for {host}")

    real_getaddrinfo = socket.getaddrinfo
    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket, "create_connection", guarded_create)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
    yield attempts
    assert not attempts, f"network access attempted: {attempts}"


@pytest.fixture(scope="session")
def depalletize_layout():
    from groot_ros.core.layout import load_layout

    return load_layout("depalletize", "4_pro", "sim")


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, depalletize_layout):
    """One tiny GR00T checkpoint per test session (tests that modify it copy it first)."""
    from groot_ros.policy.tiny import make_tiny_checkpoint

    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "ckpt", depalletize_layout, seed=0)


@pytest.fixture(scope="session")
def tiny_runtime(tiny_checkpoint, depalletize_layout):
    from groot_ros.policy.runtime import GrootRuntime

    return GrootRuntime.load(tiny_checkpoint.pretrained_model, depalletize_layout)
