"""Start a private roscore, the stand-in sim and roslaunch as child processes, and wait on them without hanging.

Every wait here watches the processes it depends on: if one exits (a node that died at start-up takes its
required roslaunch down with it), the wait stops at once with the last lines of that process's log, instead of
running into a long timeout that says nothing.

A private master on a free port keeps a tool away from anyone else's ROS graph on the same machine (never
11311 by accident). Sim config overrides (image size, camera rate, ...) go through a written copy of
config/sim.yaml, the sim's ~config param, so the sim itself has one way to be configured.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import yaml

from groot_ros.core.paths import config_dir

SIM_NODE = "kuavo_loopback_sim"


class ProcessDied(RuntimeError):
    """A process a wait depended on exited; the message holds its exit code and the end of its log."""


@dataclass(frozen=True)
class Watched:
    name: str
    proc: subprocess.Popen
    log: Path | None = None


def log_tail(path: Path | None, lines: int = 30) -> str:
    if path is None or not Path(path).exists():
        return "(no log)"
    return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, watch: Sequence[Watched] = (),
               poll: float = 0.2) -> Any:
    """predicate()'s first truthy value; ProcessDied as soon as a watched process exits, TimeoutError after
    `timeout` s (with every watched log's tail either way)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        for w in watch:
            if w.proc.poll() is not None:
                raise ProcessDied(f"{w.name} exited with code {w.proc.returncode} while waiting for {what}; last "
                                  f"lines of {w.log}:\n{log_tail(w.log)}")
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {w.name} ({w.log}):\n{log_tail(w.log)}" for w in watch)
            raise TimeoutError(f"no {what} after {timeout:.0f} s\n{tails}")
        time.sleep(poll)


def check_alive(watch: Sequence[Watched], doing: str) -> None:
    """ProcessDied if a watched process has exited (for long phases that are not waits: recording, measuring)."""
    for w in watch:
        if w.proc.poll() is not None:
            raise ProcessDied(f"{w.name} exited with code {w.proc.returncode} during {doing}; last lines of "
                              f"{w.log}:\n{log_tail(w.log)}")


def service_up(name: str) -> bool:
    """Whether the master knows a provider of service `name` (for wait_until)."""
    import rosgraph

    try:
        rosgraph.Master("/groot_ros_wait").lookupService(name)
        return True
    except (rosgraph.MasterError, OSError):
        return False


def roslaunch(args: Sequence[str], env: Mapping[str, str] | None, log: Path, wait_for_master: bool = True,
              cwd: Path | None = None) -> Watched:
    """`roslaunch [--wait] ARGS` in a process group of its own, output to `log`; stop it with stop(w.proc).

    cwd: run it from there, as a user's shell would (PWD set too: policy.launch resolves relative paths by it).
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    command = ["roslaunch", *(["--wait"] if wait_for_master else []), *args]
    environment = dict(os.environ if env is None else env)
    if cwd is not None:
        environment["PWD"] = str(cwd)
    with open(log, "w") as out:
        proc = subprocess.Popen(command, env=environment, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    return Watched("roslaunch " + " ".join(args[:2]), proc, log)


@dataclass(frozen=True)
class SimProcesses:
    master_uri: str
    env: Mapping[str, str]  # the environment children of this run need (ROS_MASTER_URI, ROS_LOG_DIR)
    sim: subprocess.Popen
    sim_log: Path

    @property
    def watched(self) -> Watched:
        return Watched("the stand-in sim", self.sim, self.sim_log)


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
            sim = subprocess.Popen([sys.executable, "-m", "groot_ros.sim.node", f"__name:={SIM_NODE}",
                                    f"_topics:={topics}", f"_layout:={layout}", f"_config:={config}", *extra],
                                   env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            yield SimProcesses(master_uri=env["ROS_MASTER_URI"], env=env, sim=sim, sim_log=work / "sim.log")
        finally:
            stop(sim)
