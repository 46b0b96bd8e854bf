"""make setup's last step: a runtime dependency that does not import is named with the package providing it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CHECK = Path(__file__).resolve().parents[1] / "scripts" / "check_env.py"


def run_check(tmp_path, blocked: str, **env) -> subprocess.CompletedProcess:
    """check_env.py with `blocked` made unimportable (a sitecustomize on PYTHONPATH), as after apt-get remove."""
    (tmp_path / "sitecustomize.py").write_text(
        "import importlib.abc, sys\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        f"    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] == {blocked!r}:\n"
        f"            raise ModuleNotFoundError(f'No module named {{name!r}}')\n"
        "sys.meta_path.insert(0, Block())\n")
    path = os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, str(CHECK)], env=dict(os.environ, PYTHONPATH=path, **env),
                          capture_output=True, text=True, timeout=300)


def test_a_missing_system_package_is_named(tmp_path):
    result = run_check(tmp_path, "cv_bridge", ROS_DISTRO="")
    assert result.returncode == 1
    assert "cv_bridge: ModuleNotFoundError" in result.stderr and "provided by: python3-cv-bridge" in result.stderr
    # The SDK imports cv_bridge too: its line says so.
    assert "kuavo_humanoid_sdk.kuavo.core.ros.camera" in result.stderr


def test_ubuntu_names_come_from_the_ros_distro(tmp_path):
    result = run_check(tmp_path, "diagnostic_updater", ROS_DISTRO="noetic")
    assert result.returncode == 1 and "provided by: ros-noetic-diagnostic-updater" in result.stderr


def test_the_environment_passes(tmp_path):
    result = run_check(tmp_path, "no_such_module_anywhere")
    assert result.returncode == 0, result.stderr
    assert "runtime dependencies import" in result.stdout
