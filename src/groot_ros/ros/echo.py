"""`rostopic echo` for Kuavo types: python -m groot_ros.ros.echo TOPIC [-n COUNT].

rostopic finds message classes only through a catkin package, and the SDK wheel's kuavo_msgs/ocs2_msgs are
plain Python packages; the message is decoded in the publisher's own version (its connection header's definition),
so any Kuavo software's topics print.
"""

from __future__ import annotations

import argparse

import rospy

from groot_ros.ros.subscribers import VersionedMsg


def echo(topic: str, count: int = 1) -> None:
    """Prints `count` messages of `topic`, whatever its type and version."""
    rospy.init_node("groot_ros_echo", anonymous=True)
    for _ in range(count):
        print(rospy.wait_for_message(topic, VersionedMsg).message(), "\n---", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=echo.__doc__)
    parser.add_argument("topic")
    parser.add_argument("-n", "--count", type=int, default=1)
    args = parser.parse_args(rospy.myargv()[1:])
    echo(args.topic, args.count)
