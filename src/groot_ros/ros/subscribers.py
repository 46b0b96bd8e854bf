"""Subscribers that feed an ObservationStore: one per stream and camera of the layout.

Kuavo topics are subscribed as VersionedMsg (a rospy.AnyMsg) and decoded in the publisher's own message version
(its connection header carries the definition; the class is built once per version seen), so a robot on any
Kuavo software feeds the store; the store reads the fields it uses by name.
"""

from __future__ import annotations

from typing import Any, Callable

import rospy

from groot_ros.core.store import ObservationStore
from groot_ros.ros.kuavo_versions import MessageDefinitionError, connection_class
from groot_ros.ros.messages import PACKAGES, message_class

_CLASSES: dict[str, type] = {}  # md5sum -> the class built from a publisher's definition


class VersionedMsg(rospy.AnyMsg):
    """A raw message that decodes itself in its publisher's version on first use.

    rospy gives a topic one message class per process: whichever subscriber came first. kuavo-humanoid-sdk (the
    sdk backend) subscribes to the same topics with its own classes in the node's process; its callbacks read
    fields of this object (`msg.joint_data`), which are the decoded message's.
    """

    __slots__ = ("_decoded",)

    def deserialize(self, data: bytes) -> "VersionedMsg":
        self._buff, self._decoded = data, None
        return self

    def message(self) -> Any:
        if self._decoded is None:
            header = self._connection_header
            cls = _CLASSES.get(header["md5sum"])
            if cls is None:
                cls = _CLASSES[header["md5sum"]] = connection_class(header.get("topic", "?"), header, [])[0]
            self._decoded = cls().deserialize(self._buff)
        return self._decoded

    def __getattr__(self, name: str) -> Any:  # only for what a raw message lacks: the decoded message's fields
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.message(), name)


class VersionedDecoder:
    """One topic's messages as the store wants them: a VersionedMsg decoded (a publisher version lacking a field
    we read is logged once; the store then reports that field and the node holds), a typed message as it is (a
    typed subscriber of the topic came first in this process: rospy gave us its class), None for a publisher
    whose message cannot be decoded (logged once)."""

    def __init__(self, topic: str, fields: list[str]):
        self.topic, self.fields = topic, fields
        self._seen: set[str] = set()  # md5sums judged
        self._undecodable: set[str] = set()  # md5sums without a definition groot_ros could find

    def __call__(self, raw: Any) -> Any:
        if type(raw) is not VersionedMsg:
            return raw
        md5 = raw._connection_header["md5sum"]
        if md5 not in self._seen:
            self._judge(raw._connection_header)
        return None if md5 in self._undecodable else raw.message()

    def _judge(self, header: dict) -> None:
        try:
            _cls, problem = connection_class(self.topic, header, self.fields)
        except MessageDefinitionError as exc:  # its messages are dropped: the store reports the stream missing
            _cls, problem = None, str(exc)
            self._undecodable.add(header["md5sum"])
        if problem:
            rospy.logerr("groot_ros: %s", problem)
        else:
            rospy.loginfo("groot_ros: %s: %s md5sum %s, decoded in the publisher's version", self.topic,
                          header.get("type"), header.get("md5sum"))
        self._seen.add(header["md5sum"])


def read_fields(store: ObservationStore, stream: str) -> list[str]:
    """The fields of a stream's messages the layout's state reads."""
    return [c.field for c in store.layout.state if c.stream == stream]


def store_callback(store: ObservationStore, name: str, decode: Callable[[Any], Any] | None = None,
                   on_message: Callable[[str], None] | None = None,
                   clock: Callable[[], float] = rospy.get_time) -> Callable[[Any], None]:
    """The subscriber callback of one source: decode (Kuavo topics), stamp with our receive time, store."""
    def callback(msg: Any) -> None:
        if decode is not None:
            msg = decode(msg)
            if msg is None:
                return
        store.update(name, msg, clock())
        if on_message is not None:
            on_message(name)
    return callback


def subscribe_store(store: ObservationStore, on_message: Callable[[str], None] | None = None,
                    streams_only: bool = False) -> list[rospy.Subscriber]:
    """One subscriber per stream and camera of the store's layout (streams_only: no cameras, for tools that need
    only the measured pose), stamping each message with our receive time.

    queue_size=1 and a large buff_size: only the latest sample matters, and a small buffer makes rospy
    deliver an old camera frame after a burst.
    """
    subs = []
    cameras = {c.name for c in store.layout.cameras}
    for name, (topic, type_name) in store.sources.items():
        if streams_only and name in cameras:
            continue
        if type_name.partition("/")[0] in PACKAGES:
            data_class, decode = VersionedMsg, VersionedDecoder(topic, read_fields(store, name))
        else:
            data_class, decode = message_class(type_name), None
        subs.append(rospy.Subscriber(topic, data_class, store_callback(store, name, decode, on_message),
                                     queue_size=1, buff_size=2**24, tcp_nodelay=True))
    return subs
