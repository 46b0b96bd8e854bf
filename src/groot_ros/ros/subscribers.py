"""Subscribers that feed an ObservationStore: one per stream and camera of the layout."""

from __future__ import annotations

from typing import Any, Callable

import rospy

from groot_ros.ros.messages import message_class
from groot_ros.core.store import ObservationStore


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
        def callback(msg: Any, name: str = name) -> None:
            store.update(name, msg, rospy.get_time())
            if on_message is not None:
                on_message(name)

        subs.append(rospy.Subscriber(topic, message_class(type_name), callback, queue_size=1, buff_size=2**24,
                                     tcp_nodelay=True))
    return subs
