"""Subscribers that feed an ObservationStore: one per stream and camera of the layout.

Kuavo topics are subscribed as rospy.AnyMsg and decoded in the publisher's own message version (its connection
header carries the definition; ros/kuavo_versions.py builds the class once per version seen), so a robot on any
Kuavo software feeds the store; the store reads the fields it uses by name.
"""

from __future__ import annotations

from typing import Any, Callable

import rospy

from groot_ros.core.store import ObservationStore
from groot_ros.ros.kuavo_versions import connection_class
from groot_ros.ros.messages import PACKAGES, message_class


class VersionedDecoder:
    """One topic's raw messages (rospy.AnyMsg) -> messages of the publisher's version; a version lacking a field
    we read is logged once (the store then reports that field and the node holds)."""

    def __init__(self, topic: str, fields: list[str]):
        self.topic, self.fields = topic, fields
        self._classes: dict[str, type] = {}  # md5sum -> class

    def __call__(self, raw: rospy.AnyMsg) -> Any:
        header = raw._connection_header
        cls = self._classes.get(header["md5sum"])
        if cls is None:
            cls = self._learn(header)
        return cls().deserialize(raw._buff)

    def _learn(self, header: dict) -> type:
        cls, problem = connection_class(self.topic, header, self.fields)
        if problem:
            rospy.logerr("groot_ros: %s", problem)
        else:
            rospy.loginfo("groot_ros: %s: %s md5sum %s, decoded in the publisher's version", self.topic,
                          header.get("type"), header.get("md5sum"))
        self._classes[header["md5sum"]] = cls
        return cls


def read_fields(store: ObservationStore, stream: str) -> list[str]:
    """The fields of a stream's messages the layout's state reads."""
    return [c.field for c in store.layout.state if c.stream == stream]


def store_callback(store: ObservationStore, name: str, decode: Callable[[Any], Any] | None = None,
                   on_message: Callable[[str], None] | None = None,
                   clock: Callable[[], float] = rospy.get_time) -> Callable[[Any], None]:
    """The subscriber callback of one source: decode (Kuavo topics), stamp with our receive time, store."""
    def callback(msg: Any) -> None:
        store.update(name, decode(msg) if decode is not None else msg, clock())
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
            data_class, decode = rospy.AnyMsg, VersionedDecoder(topic, read_fields(store, name))
        else:
            data_class, decode = message_class(type_name), None
        subs.append(rospy.Subscriber(topic, data_class, store_callback(store, name, decode, on_message),
                                     queue_size=1, buff_size=2**24, tcp_nodelay=True))
    return subs
