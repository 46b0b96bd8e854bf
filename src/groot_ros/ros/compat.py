"""Message versions: what the robot publishes and serves, checked and chosen before anything runs.

Leju's messages change between releases under the same names (ros/kuavo_versions.py lists the known versions).
The master knows who publishes and serves what: we ask each publisher for its connection header (md5sum "*" is
TCPROS's wildcard probe) and each service for its header (rosservice's probe).
- a topic we subscribe to is decoded in the publisher's own version (ros/subscribers.py): its definition must
  have every field we read, else start-up stops naming topic, field and md5sum;
- a service we call is called in the version whose md5sum it declares: a shipped one (`messages.use`), or the
  installed class (a sourced robot workspace); any other md5sum stops start-up, naming both sides. With
  backend:=sdk the SDK calls them with its own classes, so those must match.
The command topics we publish (lejuClawCommand, robotHeadMotionData) have one md5sum in every known version; the
master keeps no subscriber md5sums, so there is nothing to ask there.
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
from groot_ros.ros import kuavo_versions as kv
from groot_ros.ros import messages
from groot_ros.ros.messages import PACKAGES, SOURCES

CALLER_ID = "/groot_ros_version_check"


class MessageVersionError(RuntimeError):
    """Our Kuavo message classes and the robot's disagree; the message names each and both md5sums."""


@dataclass(frozen=True)
class Interface:
    kind: str  # "topic" (we subscribe) or "service" (we call)
    name: str
    type_name: str  # "kuavo_msgs/lejuClawState"
    fields: tuple[str, ...] = ()  # topics: the fields we read
    fixed: bool = False  # services kuavo-humanoid-sdk calls with its own class: that one must match

    @property
    def ours(self) -> str:
        """The installed class's md5sum (robot workspace or SDK wheel)."""
        return messages.installed_class(self.type_name)._md5sum


def kuavo_interfaces(layout: Layout, commanding: bool, sdk: bool = False) -> list[Interface]:
    """The Kuavo topics we subscribe to, and (when commanding) the services we call, for this layout and robot."""
    out = [Interface("topic", layout.streams[n].topic, layout.streams[n].msg_type,
                     tuple(c.field for c in layout.state if c.stream == n)) for n in layout.used_streams()
           if layout.streams[n].msg_type.partition("/")[0] in PACKAGES]
    services = layout.robot.services
    if commanding and services is not None:
        # backend:=sdk: kuavo-humanoid-sdk switches the arm mode itself, with its own (1.5.0) classes
        out += [Interface("service", services.arm_mode, "kuavo_msgs/changeArmCtrlMode", fixed=sdk),
                Interface("service", services.arm_mode_get, "kuavo_msgs/changeArmCtrlMode", fixed=sdk),
                Interface("service", services.quick_mode, services.quick_mode_type, fixed=sdk)]
        if sdk and any(c.channel == "claw" for c in layout.action):
            out.append(Interface("service", "/control_robot_leju_claw", "kuavo_msgs/controlLejuClaw", fixed=True))
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


def _judge(itf: Interface, header: dict) -> tuple[str, str]:
    """(problem, note) for one interface's header; a known service version is `use`d from now on."""
    theirs, their_type = header.get("md5sum", "?"), header.get("type", "?")
    if itf.kind == "topic":
        try:
            _cls, problem = kv.connection_class(itf.name, header, list(itf.fields))
        except kv.MessageDefinitionError as exc:
            return str(exc), ""
        return problem, f"topic {itf.name}: {their_type} md5sum {theirs} ({kv.describe(their_type, theirs)})"
    if their_type not in ("?", "*") and their_type != itf.type_name:
        return f"service {itf.name}: the robot's is {their_type}, groot_ros calls it as {itf.type_name}", ""
    shipped = [] if itf.fixed or itf.type_name not in kv.SERVICES else kv.versions_with(itf.type_name, theirs)
    if shipped:
        messages.use(kv.service_class(shipped[0], itf.type_name))
        return "", f"service {itf.name}: {itf.type_name} md5sum {theirs} ({' = '.join(shipped)})"
    if theirs == itf.ours:
        return "", f"service {itf.name}: {itf.type_name} md5sum {theirs} (the installed class)"
    where = SOURCES.get(itf.type_name.partition("/")[0], itf.type_name.partition("/")[0])
    known = "" if itf.fixed or itf.type_name not in kv.SERVICES else "; groot_ros ships " + ", ".join(
        f"{md5} ({' = '.join(names)})" for md5, names in kv.known_md5s(itf.type_name).items())
    return (f"service {itf.name}: the robot's {their_type} has md5sum {theirs}, ours {itf.type_name} (from {where}) "
            f"has {itf.ours}{known}"), ""


def version_problems(interfaces: list[Interface], wait_s: float = 0.0
                     ) -> tuple[list[str], list[Interface], list[str]]:
    """(problems as sentences, interfaces nobody offers yet, a line per interface checked). Waits up to wait_s for
    them to appear."""
    master = rosgraph.Master(CALLER_ID)
    deadline = time.monotonic() + wait_s
    pending = list(interfaces)
    problems: list[str] = []
    notes: list[str] = []
    while True:
        still = []
        for itf in pending:
            header = (_publisher_header if itf.kind == "topic" else _service_header)(master, itf.name)
            if header is None:
                still.append(itf)
                continue
            problem, note = _judge(itf, header)
            problems += [problem] if problem else []
            notes += [note] if note else []
        pending = still
        if not pending or time.monotonic() >= deadline:
            return problems, pending, notes
        time.sleep(0.2)


def check_message_versions(layout: Layout, commanding: bool, sdk: bool = False, wait_s: float = 5.0) -> list[str]:
    """Raises MessageVersionError on a version groot_ros cannot work with; returns a line per interface (its
    version, or that nobody offers it yet)."""
    problems, missing, notes = version_problems(kuavo_interfaces(layout, commanding, sdk), wait_s)
    if problems:
        raise MessageVersionError(
            "Kuavo message versions groot_ros cannot work with (a topic lacking a field we read, a service whose "
            "md5sum is no version groot_ros ships: source the robot's kuavo_msgs workspace or install the matching "
            "kuavo-humanoid-sdk):\n  - " + "\n  - ".join(problems))
    return notes + [f"not checked (nobody offers it yet): {i.kind} {i.name} ({i.type_name})" for i in missing]
