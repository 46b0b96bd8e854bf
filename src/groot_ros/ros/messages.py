"""Kuavo message and service classes, found on first use: the robot's own `kuavo_msgs`/`ocs2_msgs` when importable, else the
copies bundled in the kuavo-humanoid-sdk wheel (same type names and md5sums, so they talk to the robot).

The wheel keeps them as plain genpy packages under `kuavo_humanoid_sdk/msg/`, whose generated modules
import each other as top-level `kuavo_msgs.msg` / `ocs2_msgs.msg`. We therefore put that directory on
sys.path (as the SDK itself does) when a class is first asked for, and import the top-level packages, without importing `kuavo_humanoid_sdk`
at all: any `kuavo_humanoid_sdk.*` import runs the SDK's __init__, which installs a DEBUG logger with a
file under /var/log (or ./log) and prints to stdout. A robot workspace that provides one package but not
the other gets the missing one from the wheel.

A robot on another message version gets its own: start-up (ros/compat.py) picks the shipped class of the version
the robot's services declare (ros/kuavo_versions.py) and `use()`s it; everything that asks here gets that one.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from functools import lru_cache
from types import ModuleType

PACKAGES = ("kuavo_msgs", "ocs2_msgs")

# Which directory each package was loaded from (for logs: "robot workspace" vs the SDK wheel).
SOURCES: dict[str, str] = {}


def _sdk_msg_dir() -> Path | None:
    spec = importlib.util.find_spec("kuavo_humanoid_sdk")  # locates the package without running it
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "msg"
    return path if path.is_dir() else None


def _import(package: str) -> tuple[ModuleType, ModuleType]:
    try:
        msg, srv = importlib.import_module(f"{package}.msg"), importlib.import_module(f"{package}.srv")
    except ImportError:
        sdk_dir = _sdk_msg_dir()
        if sdk_dir is None:
            raise ImportError(
                f"{package} is not importable: source the robot's catkin workspace or install "
                f"kuavo-humanoid-sdk (pip install kuavo-humanoid-sdk==1.5.0), which bundles it"
            ) from None
        if str(sdk_dir) not in sys.path:
            sys.path.append(str(sdk_dir))
        for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
            del sys.modules[name]  # a half-imported robot package must not shadow the wheel's copy
        msg, srv = importlib.import_module(f"{package}.msg"), importlib.import_module(f"{package}.srv")
    SOURCES[package] = str(Path(msg.__file__).parents[1])
    return msg, srv


# Class name -> (package, "msg" | "srv"): what the node, backends and the stand-in use, loaded on first access.
_CLASSES = {
    **{name: ("kuavo_msgs", "msg") for name in ("sensorsData", "jointData", "imuData", "endEffectorData",
                                                 "lejuClawState", "lejuClawCommand")},
    **{name: ("ocs2_msgs", "msg") for name in ("mpc_observation", "mpc_state", "mpc_input")},
    **{name: ("kuavo_msgs", "srv") for name in (
        "changeArmCtrlMode", "changeArmCtrlModeRequest", "changeArmCtrlModeResponse", "controlLejuClaw",
        "controlLejuClawRequest", "controlLejuClawResponse", "getCurrentGaitName", "getCurrentGaitNameResponse")},
}


# type name -> the class the robot's version needs, set at start-up; wins over the workspace/SDK class.
_CHOSEN: dict[str, type] = {}


def use(cls: type) -> None:
    """From now on this process uses `cls` (a message or service class) for its type."""
    _CHOSEN[cls._type] = cls


@lru_cache(maxsize=None)
def _modules(package: str) -> tuple[ModuleType, ModuleType]:
    return _import(package)


def __getattr__(name: str) -> type:
    """`messages.sensorsData` etc.: the packages are found (and sys.path extended) on first use, not at import."""
    if name not in _CLASSES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    package, kind = _CLASSES[name]
    base = name.removesuffix("Request").removesuffix("Response")
    chosen = _CHOSEN.get(f"{package}/{base}")
    if chosen is not None:  # a service's request and response come with it
        return chosen if base == name else getattr(chosen, f"_{name[len(base):].lower()}_class")
    msg, srv = _modules(package)
    return getattr(msg if kind == "msg" else srv, name)


def message_class(type_name: str) -> type:
    """The class for a ROS type name ("kuavo_msgs/sensorsData", "sensor_msgs/Image"): the robot's version's when
    start-up chose one, else the installed one."""
    if type_name in _CHOSEN:
        return _CHOSEN[type_name]
    package, _, name = type_name.partition("/")
    if package in PACKAGES:
        module = _modules(package)[0]
    else:
        module = importlib.import_module(f"{package}.msg")
    try:
        return getattr(module, name)
    except AttributeError:
        raise ImportError(f"message type {type_name} not found in {module.__name__}") from None


def installed_class(type_name: str) -> type:
    """The installed class (robot workspace or SDK wheel; std_srvs...) of a message or service type, whatever
    start-up chose."""
    package, _, name = type_name.partition("/")
    modules = _modules(package) if package in PACKAGES else ()
    for module in modules or (f"{package}.msg", f"{package}.srv"):
        try:
            cls = getattr(importlib.import_module(module) if isinstance(module, str) else module, name, None)
        except ImportError:
            continue
        if cls is not None:
            return cls
    raise ImportError(f"type {type_name} is neither a message nor a service of the installed {package}")
