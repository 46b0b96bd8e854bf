"""Shared fixtures: a real ROS master for the tests that need one, and a guard against network access."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

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
    from groot_ros.testing.tiny_checkpoint import make_tiny_checkpoint

    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "ckpt", depalletize_layout, seed=0)


@pytest.fixture(scope="session")
def tiny_runtime(tiny_checkpoint, depalletize_layout):
    from groot_ros.policy.runtime import GrootRuntime

    return GrootRuntime.load(tiny_checkpoint.pretrained_model, depalletize_layout)
