"""Kuavo message versions: the definitions we ship for each known robot software, classes built from them or from
a publisher's own definition, and the table of which md5sum is which version.

Leju changed its messages between releases without renaming them (kuavo-humanoid-sdk 1.5.0 adds fields and
a constant, the 2025-04 robot calls a joint array joint_current), and ROS connects a topic or a service only when
both sides have the same md5sum. So:
- topics we subscribe to are decoded in the publisher's own version: the TCPROS connection header carries its
  full definition, and genpy builds a class from it (what rosbag does for a bag) once per version seen;
- for what we send (service requests, command topics) the definitions below are shipped as .msg/.srv texts,
  written from Leju's public ones (kuavo_definitions/<version>/<package>/{msg,srv}/), and the version whose
  md5sum the robot declares is used.
A version directory holds only the types that differ from its `base`; std_msgs/geometry_msgs come from the
installed ROS packages.
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DEFINITIONS = Path(__file__).with_name("kuavo_definitions")
SEPARATOR = "\n" + "=" * 80 + "\n"


@dataclass(frozen=True)
class KuavoVersion:
    name: str
    title: str  # where its definitions come from
    base: str | None  # a version whose definitions it shares where it has none of its own


VERSIONS: dict[str, KuavoVersion] = {v.name: v for v in (
    KuavoVersion("open-2025-08", "LejuRobotics/kuavo-ros-opensource, 2025-08", None),
    KuavoVersion("sdk-1.5.0", "kuavo-humanoid-sdk 1.5.0 (PyPI), the classes of a plain `make setup`", "open-2025-08"),
    KuavoVersion("robot-2025-04", "a Kuavo 4 pro on 2025-04 software (Leju's recorded VR session); only its "
                 "sensorsData is known, the rest as open-2025-08", "open-2025-08"),
)}
DEFAULT_VERSION = "sdk-1.5.0"  # what groot_ros used before it knew versions: the SDK wheel's classes
# The Kuavo types groot_ros and its stand-in send or receive (the stand-in speaks every one in each version).
TYPES = ("kuavo_msgs/sensorsData", "kuavo_msgs/lejuClawState", "ocs2_msgs/mpc_observation",
         "kuavo_msgs/lejuClawCommand", "kuavo_msgs/robotHeadMotionData")
SERVICES = ("kuavo_msgs/changeArmCtrlMode", "kuavo_msgs/controlLejuClaw")


class UnknownVersion(ValueError):
    """A version name groot_ros does not ship."""


def version(name: str) -> KuavoVersion:
    try:
        return VERSIONS[name]
    except KeyError:
        raise UnknownVersion(f"unknown Kuavo message version '{name}'; known: {', '.join(VERSIONS)}") from None


def _chain(name: str) -> list[Path]:
    dirs, v = [], version(name)
    while v is not None:
        dirs.append(DEFINITIONS / v.name)
        v = VERSIONS[v.base] if v.base else None
    return dirs


def _shipped_text(version_name: str, type_name: str, kind: str) -> str | None:
    package, _, name = type_name.partition("/")
    for d in _chain(version_name):
        path = d / package / kind / f"{name}.{kind}"
        if path.is_file():
            return path.read_text()
    return None


def _installed_text(type_name: str) -> str:
    """A standard type's own definition (the first section of its class's full text)."""
    package, _, name = type_name.partition("/")
    cls = getattr(importlib.import_module(f"{package}.msg"), name)
    return cls._full_text.split(SEPARATOR)[0]


def _register(ctx, version_name: str, type_name: str):
    """genmsg spec of a message type and, recursively, of everything it uses."""
    from genmsg.msg_loader import load_msg_from_string

    if ctx.is_registered(type_name):
        return ctx.get_registered(type_name)
    text = _shipped_text(version_name, type_name, "msg")
    if text is None:
        if type_name.partition("/")[0] in ("kuavo_msgs", "ocs2_msgs"):
            raise FileNotFoundError(f"no definition of {type_name} in {DEFINITIONS / version_name} or its bases")
        text = _installed_text(type_name)
    spec = load_msg_from_string(ctx, text, type_name)
    ctx.register(type_name, spec)
    _register_depends(ctx, version_name, spec)
    return spec


def _register_depends(ctx, version_name: str, spec) -> None:
    import genmsg.msgs

    depends = [genmsg.msgs.resolve_type(genmsg.msgs.bare_msg_type(t), spec.package) for t in spec.types
               if not genmsg.msgs.is_builtin(genmsg.msgs.bare_msg_type(t))]  # "Header" -> std_msgs/Header
    for dependency in depends:
        _register(ctx, version_name, dependency)
    ctx.set_depends(spec.full_name, depends)


@lru_cache(maxsize=None)
def message_definition(version_name: str, type_name: str) -> tuple[str, str]:
    """(full text as a connection header carries it, md5sum) of a message type in a shipped version."""
    import genmsg

    ctx = genmsg.MsgContext.create_default()
    spec = _register(ctx, version_name, type_name)
    return genmsg.compute_full_text(ctx, spec), genmsg.compute_md5(ctx, spec)


_GENERATE = threading.Lock()


def class_from_definition(type_name: str, full_text: str) -> type:
    """A genpy class built from a full definition (a connection header's or a bag's), as rosbag does.

    One at a time: genpy's generator collects the struct patterns of the code it writes in module globals, so two
    subscriber threads building classes at once (a bag's topics all start together) produce code missing its
    `_get_struct_*` helpers (NameError on the first message)."""
    with _GENERATE:
        return _generated_class(type_name, full_text)


@lru_cache(maxsize=None)
def _generated_class(type_name: str, full_text: str) -> type:
    import genpy.dynamic

    return genpy.dynamic.generate_dynamic(type_name, full_text)[type_name]


def message_class(version_name: str, type_name: str) -> type:
    return class_from_definition(type_name, message_definition(version_name, type_name)[0])


@lru_cache(maxsize=None)
def service_class(version_name: str, type_name: str) -> type:
    """A service class (request, response, md5sum) for rospy.Service / ServiceProxy, from the shipped .srv."""
    import genmsg
    from genmsg.msg_loader import load_srv_from_string

    text = _shipped_text(version_name, type_name, "srv")
    if text is None:
        raise FileNotFoundError(f"no definition of service {type_name} in {DEFINITIONS / version_name} or its bases")
    ctx = genmsg.MsgContext.create_default()
    spec = load_srv_from_string(ctx, text, type_name)
    parts = {}
    for part in (spec.request, spec.response):
        ctx.register(part.full_name, part)
        _register_depends(ctx, version_name, part)
        parts[part.full_name] = class_from_definition(part.full_name, genmsg.compute_full_text(ctx, part))
    request, response = parts[f"{type_name}Request"], parts[f"{type_name}Response"]
    return type(type_name.partition("/")[2], (), {"_type": type_name, "_md5sum": genmsg.compute_md5(ctx, spec),
                                                   "_request_class": request, "_response_class": response})


def md5sum(version_name: str, type_name: str) -> str:
    if type_name in SERVICES:
        return service_class(version_name, type_name)._md5sum
    return message_definition(version_name, type_name)[1]


def versions_with(type_name: str, md5: str) -> list[str]:
    """The known versions whose `type_name` has this md5sum (empty: an unknown version)."""
    return [name for name in VERSIONS if md5sum(name, type_name) == md5]


def known_md5s(type_name: str) -> dict[str, list[str]]:
    """md5sum -> the versions that have it, for a shipped type."""
    out: dict[str, list[str]] = {}
    for name in VERSIONS:
        out.setdefault(md5sum(name, type_name), []).append(name)
    return out


def missing_fields(cls: type, fields: list[str]) -> list[str]:
    """The dotted field paths ("joint_data.joint_q") a message class does not have."""
    from groot_ros.core.layout import read_field

    sample = cls()
    missing = []
    for path in fields:
        try:
            read_field(sample, path)
        except AttributeError:
            missing.append(path)
    return missing


def connection_class(topic: str, header: dict, fields: list[str]) -> tuple[type, str]:
    """The class for one publisher's connection header (its own definition; a known md5sum's shipped one when it
    sent none) and, if it lacks a field groot_ros reads, a sentence naming topic, field and md5sum."""
    type_name, md5 = header.get("type", "?"), header.get("md5sum", "?")
    definition = header.get("message_definition", "")
    if definition:
        cls = class_from_definition(type_name, definition)
    else:
        known = versions_with(type_name, md5) if type_name in TYPES else []
        if not known:
            raise MessageDefinitionError(f"topic {topic}: the publisher sent no message definition and its "
                                         f"{type_name} md5sum {md5} is no known version ({', '.join(VERSIONS)})")
        cls = message_class(known[0], type_name)
    missing = missing_fields(cls, fields)
    problem = (f"topic {topic}: the robot's {type_name} (md5sum {md5}) has no field {', '.join(missing)}, which "
               f"groot_ros reads" if missing else "")
    return cls, problem


def describe(type_name: str, md5: str) -> str:
    """'sdk-1.5.0' / 'robot-2025-04' or 'an unknown version' for a log line."""
    known = versions_with(type_name, md5) if type_name in TYPES + SERVICES else []
    return " = ".join(known) if known else "unknown version, decoded from its own definition"


class MessageDefinitionError(RuntimeError):
    """A publisher's message cannot be decoded (no definition, unknown version) or lacks a field we read."""
