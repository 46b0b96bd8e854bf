"""Where the package's shipped files are, in a source checkout, a catkin devel space or an install space."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=None)
def package_root() -> Path:
    """The groot_ros package directory (the one holding config/ and launch/)."""
    env = os.environ.get("GROOT_ROS_ROOT")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parents[3]  # src/groot_ros/core/paths.py -> repository root
    if (here / "config").is_dir():
        return here
    try:  # installed: share/groot_ros
        import rospkg

        return Path(rospkg.RosPack().get_path("groot_ros"))
    except Exception as exc:  # noqa: BLE001 - any failure means the same thing to the user
        raise FileNotFoundError("cannot find the groot_ros config directory; set GROOT_ROS_ROOT") from exc


def config_dir() -> Path:
    return package_root() / "config"
