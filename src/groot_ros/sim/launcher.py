"""Start a private roscore and the stand-in sim as child processes, for tools that need a robot to talk to.

A private master on a free port keeps a tool away from anyone else's ROS graph on the same machine (never
11311 by accident). Sim config overrides (image size, camera rate, ...) go through a written copy of
config/sim.yaml, the sim's ~config param, so the sim itself has one way to be configured.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import yaml

from groot_ros.paths import config_dir, package_root

SIM_NODE = "kuavo_loopback_sim"


@dataclass(frozen=True)
class SimProcesses:
    master_uri: str
    env: Mapping[str, str]  # the environment children of this run need (ROS_MASTER_URI, ROS_LOG_DIR)
    sim: subprocess.Popen


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen, timeout: float = 20.0) -> int:
    """SIGINT to the process group (what Ctrl-C sends), SIGKILL if it does not exit in time."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            return proc.wait()
    return proc.returncode


def write_sim_config(path: Path, overrides: Mapping[str, Any]) -> Path:
    data = yaml.safe_load((config_dir() / "sim.yaml").read_text())
    data.update(overrides)
    path.write_text(yaml.safe_dump(data))
    return path


@contextmanager
def private_master(work: Path, master_uri: str | None = None, timeout: float = 30.0) -> Iterator[dict[str, str]]:
    """A roscore on a free port (or the given master), stopped on exit; yields the environment for children.

    This process's os.environ is pointed at the master too, so rospy.init_node here joins the same graph.
    """
    import rosgraph

    work.mkdir(parents=True, exist_ok=True)
    log_dir = work / "roslog"
    env = dict(os.environ, ROS_LOG_DIR=str(log_dir))
    core = None
    if master_uri is None:
        port = free_port()
        master_uri = f"http://127.0.0.1:{port}"
        env.update(ROS_MASTER_URI=master_uri, ROS_IP="127.0.0.1")
        env.pop("ROS_HOSTNAME", None)
        core = subprocess.Popen(["roscore", "-p", str(port)], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
    else:
        env["ROS_MASTER_URI"] = master_uri
    os.environ.update(ROS_MASTER_URI=master_uri, ROS_LOG_DIR=str(log_dir))
    if "ROS_IP" in env:
        os.environ["ROS_IP"] = env["ROS_IP"]
        os.environ.pop("ROS_HOSTNAME", None)
    try:
        deadline = time.monotonic() + timeout
        while not rosgraph.is_master_online(master_uri):
            if time.monotonic() > deadline or (core is not None and core.poll() is not None):
                raise RuntimeError(f"no ROS master at {master_uri} after {timeout:.0f} s")
            time.sleep(0.2)
        yield env
    finally:
        if core is not None:
            stop(core)


@contextmanager
def running_sim(work: Path, topics: str = "sim", layout: str = "depalletize", overrides: Mapping[str, Any] = {},
                master_uri: str | None = None, timeout: float = 30.0,
                params: Mapping[str, Any] = {}) -> Iterator[SimProcesses]:
    """A master (started on a free port unless `master_uri` is given) and the stand-in sim; both stopped on exit.

    overrides: config/sim.yaml keys (image size, camera rate, ...); params: the sim's other ~params
    (e.g. compressed=False).
    """
    with private_master(work, master_uri, timeout) as env:
        config = write_sim_config(work / "sim.yaml", overrides)
        extra = [f"_{k}:={str(v).lower() if isinstance(v, bool) else v}" for k, v in params.items()]
        with open(work / "sim.log", "w") as log:
            sim = subprocess.Popen(["python", str(package_root() / "nodes" / SIM_NODE), f"__name:={SIM_NODE}",
                                    f"_topics:={topics}", f"_layout:={layout}", f"_config:={config}", *extra],
                                   env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            yield SimProcesses(master_uri=env["ROS_MASTER_URI"], env=env, sim=sim)
        finally:
            stop(sim)
