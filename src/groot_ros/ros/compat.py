"""Message versions: the md5sum of every Kuavo message and service we use against what the robot declares.

A topic whose md5sum differs never connects (rospy logs it once, the stream just stays "missing"), and a
service call fails; kuavo-humanoid-sdk 1.5.0's lejuClawState and changeArmCtrlMode differ from Kuavo's
open-source 2025-08 messages, so a workspace/robot mix-up is real. The master knows who publishes and serves
what: we ask each publisher for its connection header (md5sum "*" is TCPROS's wildcard probe) and each
service for its header (rosservice's probe), and compare with our classes before anything runs.
"""

from __future__ import annotations

import socket
import time
import xmlrpc.client
from dataclasses import dataclass
from io import BytesIO

import rosgraph
import rosgraph.network

from groot_ros.core.layout import Layout
from groot_ros.ros.messages import PACKAGES, SOURCES, message_class

CALLER_ID = "/groot_ros_version_check"


class MessageVersionError(RuntimeError):
    """Our Kuavo message classes and the robot's disagree; the message names each and both md5sums."""


@dataclass(frozen=True)
class Interface:
    kind: str  # "topic" or "service"
    name: str
    type_name: str  # "kuavo_msgs/lejuClawState"

    @property
    def ours(self) -> str:
        return our_class(self.type_name)._md5sum


def our_class(type_name: str) -> type:
    """Our class for a message or service type name (Kuavo's from the workspace or the SDK wheel)."""
    import importlib

    package, _, name = type_name.partition("/")
    try:
        return message_class(type_name)
    except ImportError:
        if package in PACKAGES:
            from groot_ros.ros import messages

            return getattr(messages, name)
        return getattr(importlib.import_module(f"{package}.srv"), name)


def kuavo_interfaces(layout: Layout, commanding: bool, sdk: bool = False) -> list[Interface]:
    """The Kuavo topics we subscribe to, and (when commanding) the services we call, for this layout and robot."""
    out = [Interface("topic", layout.streams[n].topic, layout.streams[n].msg_type) for n in layout.used_streams()
           if layout.streams[n].msg_type.partition("/")[0] in PACKAGES]
    services = layout.robot.services
    if commanding and services is not None:
        out += [Interface("service", services.arm_mode, "kuavo_msgs/changeArmCtrlMode"),
                Interface("service", services.arm_mode_get, "kuavo_msgs/changeArmCtrlMode"),
                Interface("service", services.quick_mode, services.quick_mode_type)]
        if sdk and any(c.channel == "claw" for c in layout.action):
            out.append(Interface("service", "/control_robot_leju_claw", "kuavo_msgs/controlLejuClaw"))
    return out


def _publisher_header(master: rosgraph.Master, topic: str) -> dict | None:
    """The connection header of the topic's first publisher (its type and md5sum), None: no publisher."""
    publishers = next((nodes for name, nodes in master.getSystemState()[0] if name == topic), [])
    for node in publishers:
        try:
            uri = master.lookupNode(node)
            code, _msg, proto = xmlrpc.client.ServerProxy(uri).requestTopic(CALLER_ID, topic, [["TCPROS"]])
            if code != 1 or not proto:
                continue
            with socket.create_connection((proto[1], proto[2]), timeout=2.0) as sock:
                sock.sendall(rosgraph.network.encode_ros_handshake_header(
                    {"callerid": CALLER_ID, "topic": topic, "md5sum": "*", "type": "*"}))
                return rosgraph.network.read_ros_handshake_header(sock, BytesIO(), 65536)
        except (OSError, rosgraph.MasterError, xmlrpc.client.Error, rosgraph.network.ROSHandshakeException):
            continue
    return None


def _service_header(master: rosgraph.Master, service: str) -> dict | None:
    import rosservice

    try:
        uri = master.lookupService(service)
    except rosgraph.MasterError:
        return None
    try:
        return rosservice.get_service_headers(service, uri)
    except rosservice.ROSServiceIOException:
        return None


def version_problems(interfaces: list[Interface], wait_s: float = 0.0) -> tuple[list[str], list[Interface]]:
    """(mismatches as sentences, interfaces nobody offers yet). Waits up to wait_s for them to appear."""
    master = rosgraph.Master(CALLER_ID)
    deadline = time.monotonic() + wait_s
    pending = list(interfaces)
    problems: list[str] = []
    while True:
        still = []
        for itf in pending:
            header = (_publisher_header if itf.kind == "topic" else _service_header)(master, itf.name)
            if header is None:
                still.append(itf)
                continue
            theirs, their_type = header.get("md5sum", "?"), header.get("type", "?")
            if theirs != itf.ours or (their_type not in ("?", "*") and their_type != itf.type_name):
                where = SOURCES.get(itf.type_name.partition("/")[0], itf.type_name.partition("/")[0])
                problems.append(f"{itf.kind} {itf.name}: the robot's {their_type} has md5sum {theirs}, ours "
                                f"{itf.type_name} (from {where}) has {itf.ours}")
        pending = still
        if not pending or time.monotonic() >= deadline:
            return problems, pending
        time.sleep(0.2)


def check_message_versions(layout: Layout, commanding: bool, sdk: bool = False, wait_s: float = 5.0) -> list[str]:
    """Raises MessageVersionError on any mismatch; returns a line per interface it could not check."""
    problems, missing = version_problems(kuavo_interfaces(layout, commanding, sdk), wait_s)
    if problems:
        raise MessageVersionError(
            "Kuavo message versions differ from the robot's (a topic with another md5sum never connects, a service "
            "call fails); build against the robot's kuavo_msgs or install the matching kuavo-humanoid-sdk:\n  - "
            + "\n  - ".join(problems))
    return [f"not checked (nobody offers it yet): {i.kind} {i.name} ({i.type_name})" for i in missing]
