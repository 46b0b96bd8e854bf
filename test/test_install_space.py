"""Robot PCs deploy from a catkin install space: build one into a temp dir and run from it alone."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import textwrap
from pathlib import Path

import pytest

from groot_ros.sim.launcher import free_port

pytestmark = [pytest.mark.ros, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[1]
# What the test process has from the source workspace; the install space alone must provide it.
WORKSPACE_VARS = ("PYTHONPATH", "ROS_PACKAGE_PATH", "CMAKE_PREFIX_PATH", "LD_LIBRARY_PATH", "PKG_CONFIG_PATH",
                  "ROSLISP_PACKAGE_DIRECTORIES", "ROS_MASTER_URI", "GROOT_ROS_ROOT")


@pytest.fixture(scope="module")
def install_space(tmp_path_factory):
    ws = tmp_path_factory.mktemp("install_ws")
    (ws / "src").mkdir()
    (ws / "src" / "groot_ros").symlink_to(REPO)
    env = {k: v for k, v in os.environ.items() if k not in WORKSPACE_VARS}
    # Built as setup.sh builds: the system's cmake and catkin, not the venv's (its cmake 4 refuses catkin's files).
    venv = os.environ.get("VIRTUAL_ENV", "\0")
    system_path = ":".join(p for p in env["PATH"].split(":") if not p.startswith(venv))
    build = subprocess.run(
        ["bash", "-c", "for s in /opt/ros/*/setup.bash; do [ -f $s ] && source $s; done; "
         f"catkin_make install -DPYTHON_EXECUTABLE=/usr/bin/python3 -DCATKIN_ENABLE_TESTING=OFF "
         f"-DCMAKE_INSTALL_PREFIX={ws / 'install'} -C {ws}"],
        env=dict(env, PATH=system_path), capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    return ws / "install", env


def in_install(install: Path, env: dict, script: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """The script in a process group of its own: on a timeout the whole group goes, roscore and nodes included."""
    command = ["bash", "-c", f"source {install}/setup.bash\ncd /\n{script}"]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:  # background jobs (roscore, roslaunch) may outlive the shell
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


def test_every_subpackage_is_installed(install_space):
    install, env = install_space
    result = in_install(install, env, "python -c 'import groot_ros, groot_ros.cli, groot_ros.msg; "
                                      "print(groot_ros.__file__)'\npython -m groot_ros --help")
    assert result.returncode == 0, result.stderr[-3000:]
    assert str(install) in result.stdout.splitlines()[0], "groot_ros came from somewhere else than the install space"
    assert "bag2lerobot" in result.stdout and "bench-node" in result.stdout
    installed = {p.relative_to(install).parts[-2] for p in install.rglob("groot_ros/*/__init__.py")}
    on_disk = {p.parent.name for p in (REPO / "src" / "groot_ros").glob("*/__init__.py")}
    assert on_disk <= installed


def test_both_nodes_start_from_the_install_space(install_space, tiny_checkpoint, tmp_path):
    install, env = install_space
    port = free_port()
    # Background jobs of a non-interactive shell ignore SIGINT: roslaunch is stopped with SIGTERM (which it handles).
    script = textwrap.dedent(f"""
        export ROS_MASTER_URI=http://127.0.0.1:{port} ROS_IP=127.0.0.1 ROS_LOG_DIR={tmp_path}/log
        roscore -p {port} >{tmp_path}/core.log 2>&1 &
        core=$!
        # roscore stops its rosmaster and rosout (sessions of their own) on SIGTERM: wait for it, or the group's
        # SIGKILL after the script (in_install) would leave them running.
        stop() {{ kill -TERM $launch 2>/dev/null; for i in $(seq 60); do kill -0 $launch 2>/dev/null || break; sleep 0.5; done
                 kill -9 $launch 2>/dev/null; kill $core
                 for i in $(seq 40); do kill -0 $core 2>/dev/null || break; sleep 0.5; done; }}
        for i in $(seq 120); do rostopic list >/dev/null 2>&1 && break; sleep 0.5; done
        roslaunch groot_ros sim_depalletize.launch checkpoint:={tiny_checkpoint.pretrained_model} \\
            >{tmp_path}/launch.log 2>&1 &
        launch=$!
        trap stop EXIT
        for i in $(seq 150); do  # past its start-up sequence ("starting"): running, or holding on late inputs
            timeout 10 rostopic echo -n 1 /groot_policy/status >{tmp_path}/status.txt 2>&1
            grep -qE 'state: "(running|holding)"' {tmp_path}/status.txt && break; sleep 1
        done
        timeout 60 python -m groot_ros.ros.echo /leju_claw_state >{tmp_path}/claws.txt 2>&1 || exit 12
        rospack find groot_ros
    """)
    result = in_install(install, env, script)
    log = (tmp_path / "launch.log").read_text() if (tmp_path / "launch.log").exists() else ""
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stderr[-2000:]}\n{log[-3000:]}"
    assert result.stdout.strip().endswith(str(install / "share" / "groot_ros"))
    # The node is up and past its start (holding is a started node too: a loaded CI machine can make streams late).
    assert re.search(r'state: "(running|holding)"', (tmp_path / "status.txt").read_text())
    assert "left_claw" in (tmp_path / "claws.txt").read_text()  # the stand-in publishes, read by our echo tool


def test_the_kuavo_message_definitions_are_installed(install_space):
    """ros/kuavo_definitions is package data: an install space builds the 2025-04 robot's class from it."""
    install, env = install_space
    result = in_install(install, env, "python -c 'from groot_ros.ros import kuavo_versions as kv; "
                                      "print(kv.DEFINITIONS, kv.md5sum(\"robot-2025-04\", \"kuavo_msgs/sensorsData\"))'")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith(str(install)) and "54439d3ac2ef33d46fd7cf6d324860c3" in result.stdout
