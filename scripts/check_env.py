"""The last step of `make setup`: import every runtime dependency inside the environment, and name the package
that provides each one that fails, so a missing system package is a set-up error, not a test failure later.

Run by scripts/setup.sh through scripts/in-env; exit 1 lists every failure. ROS_DISTRO (Ubuntu's /opt/ros) picks
the Ubuntu package names, otherwise Debian's.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import sys

DISTRO = os.environ.get("ROS_DISTRO", "")


def ros(debian: str, ubuntu: str) -> str:
    return f"ros-{DISTRO}-{ubuntu}" if DISTRO else debian


# module -> what provides it (apt package, or the lock for the venv)
CHECKS = {
    "rospy": ros("python3-rospy", "rospy"),
    "rosbag": ros("python3-rosbag", "rosbag"),
    "roslaunch": ros("python3-roslaunch", "roslaunch"),
    "rostest": ros("python3-rostest", "rostest"),
    "rostopic": ros("python3-rostopic", "rostopic"),
    "rosservice": ros("python3-rosservice", "rosservice"),
    "rosnode": ros("python3-rosnode", "rosnode"),
    "std_msgs.msg": ros("python3-std-msgs", "std-msgs"),
    "sensor_msgs.msg": ros("python3-sensor-msgs", "sensor-msgs"),
    "geometry_msgs.msg": ros("python3-geometry-msgs", "geometry-msgs"),
    "std_srvs.srv": ros("python3-std-srvs", "std-srvs"),
    "diagnostic_msgs.msg": ros("python3-diagnostic-msgs", "diagnostic-msgs"),
    "diagnostic_updater": ros("python3-diagnostic-updater", "diagnostic-updater"),
    "cv_bridge": ros("python3-cv-bridge", "cv-bridge"),
    "tf": ros("python3-tf", "tf"),
    "groot_ros.msg": "the catkin workspace .ws (make setup builds it)",
    "torch": "requirements.lock (venv)",
    "torchvision": "requirements.lock (venv)",
    "lerobot.policies.groot.modeling_groot": "requirements.lock (venv): lerobot 0.4.2",
    "transformers": "requirements.lock (venv)",
    "diffusers": "requirements.lock (venv)",
    "peft": "requirements.lock (venv)",
    "timm": "requirements.lock (venv)",
    "tree": "requirements.lock (venv): dm-tree",
    "av": "requirements.lock (venv): PyAV",
    "cv2": "requirements.lock (venv): opencv",
    "matplotlib": "requirements.lock (venv)",
    "pyaudio": "portaudio19-dev (system) + requirements.lock (venv)",
    "kuavo_humanoid_sdk.kuavo.core.ros.camera": "requirements.lock (venv): kuavo-humanoid-sdk 1.5.0; needs cv_bridge",
}


def main() -> int:
    failures = []
    for module, provider in CHECKS.items():
        chatter = io.StringIO()  # the SDK prints its log file; system cv_bridge prints a non-fatal numpy notice
        try:
            with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
                importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001 - any failure to import is the same set-up error
            failures.append(f"  {module}: {type(exc).__name__}: {exc}\n      provided by: {provider}")
    if failures:
        print("[setup] these runtime dependencies do not import:\n" + "\n".join(failures), file=sys.stderr)
        return 1
    print(f"[setup] import check: {len(CHECKS)} runtime dependencies import")
    return 0


if __name__ == "__main__":
    sys.exit(main())
