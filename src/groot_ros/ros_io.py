"""Thin rospy edges: subscribers that feed an ObservationStore, and message field helpers."""

from __future__ import annotations

from typing import Any, Callable

import rospy

from groot_ros.kuavo_msgs import message_class
from groot_ros.layout import read_field
from groot_ros.streams import ObservationStore


def subscribe_store(store: ObservationStore, on_message: Callable[[str], None] | None = None) -> list[rospy.Subscriber]:
    """One subscriber per stream and camera of the store's layout, stamping each message with our receive time.

    queue_size=1 and a large buff_size: only the latest sample matters, and a small buffer makes rospy
    deliver an old camera frame after a burst.
    """
    subs = []
    for name, (topic, type_name) in store.sources.items():
        def callback(msg: Any, name: str = name) -> None:
            store.update(name, msg, rospy.get_time())
            if on_message is not None:
                on_message(name)

        subs.append(rospy.Subscriber(topic, message_class(type_name), callback, queue_size=1, buff_size=2**24,
                                     tcp_nodelay=True))
    return subs


def write_field(msg: Any, path: str, value: Any) -> None:
    """Sets a dotted attribute path ("data.position", "linear.z"); the inverse of layout.read_field."""
    head, _, last = path.rpartition(".")
    setattr(read_field(msg, head) if head else msg, last, value)


def echo(topic: str, count: int = 1) -> None:
    """`rostopic echo` for Kuavo types: rostopic finds classes only through a catkin package, and the
    SDK wheel's kuavo_msgs/ocs2_msgs are plain Python packages."""
    import rostopic

    rospy.init_node("groot_ros_echo", anonymous=True)
    type_name, _, _ = rostopic.get_topic_type(topic, blocking=True)
    for _ in range(count):
        print(rospy.wait_for_message(topic, message_class(type_name)), "\n---", flush=True)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=echo.__doc__)
    parser.add_argument("topic")
    parser.add_argument("-n", "--count", type=int, default=1)
    args = parser.parse_args(rospy.myargv()[1:])
    echo(args.topic, args.count)
