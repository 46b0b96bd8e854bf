"""`python -m groot_ros bench-messages`: the subscriber's cost per /sensors_data_raw message (500 Hz on the robot),
as Kuavo topics were received before message versions (a typed rospy subscriber: rospy deserializes into the
installed class, the callback stores it) and as they are now (a rospy.AnyMsg keeps the bytes and deserializes them
in the class of the publisher's version, the same callback stores it). Both paths run the same
rospy receive step (`rospy.msg.deserialize_messages`, then the connection header set on each message, as
rospy's TCPROS transport does) and ros/subscribers.py's own callback and decoder, interleaved in rounds in one
process, so a busy machine slows both alike. No master, no sockets: the transport is the same for both.
"""

from __future__ import annotations

import statistics
import struct
import time
from io import BytesIO
from typing import Any, Callable

GOAL_RATIO = 1.5  # the versioned path may cost at most this many times the typed one
ROBOT_RATE_HZ = 500.0


def _sensors_data(version: str, joints: int) -> Any:
    from groot_ros.ros.kuavo_versions import message_class

    msg = message_class(version, "kuavo_msgs/sensorsData")()
    for field in msg.joint_data.__slots__:
        setattr(msg.joint_data, field, [0.1 * i for i in range(joints)])
    msg.header.stamp.secs, msg.header.frame_id = 1_745_051_172, "world"
    return msg


def _per_message_us(step: Callable[[], None], count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        step()
    return (time.perf_counter() - start) / count * 1e6


def run_message_bench(version: str = "robot-2025-04", count: int = 5000, rounds: int = 7,
                      robot: str = "4_pro") -> dict[str, Any]:
    import rospy
    import rospy.msg

    from groot_ros.core.layout import load_layout
    from groot_ros.core.store import ObservationStore
    from groot_ros.ros.subscribers import VersionedDecoder, VersionedMsg, read_fields, store_callback

    layout = load_layout("depalletize", robot, "sim")
    store = ObservationStore(layout)
    msg = _sensors_data(version, layout.robot.num_joints)
    cls = type(msg)
    out = BytesIO()
    msg.serialize(out)
    payload = out.getvalue()
    frame = struct.pack("<I", len(payload)) + payload
    header = {"callerid": "/robot", "topic": "/sensors_data_raw", "type": cls._type, "md5sum": cls._md5sum,
              "message_definition": cls._full_text, "latching": "0"}
    clock = time.monotonic

    def receive(data_class: type) -> Any:
        """rospy's receive step for one message of `data_class` (tcpros_base.TCPROSTransport.receive_once)."""
        buffer, queue = BytesIO(frame), []
        buffer.seek(len(frame))
        rospy.msg.deserialize_messages(buffer, queue, data_class, queue_size=1)
        queue[0]._connection_header = header
        return queue[0]

    typed = store_callback(store, "joints", None, clock=clock)
    versioned = store_callback(store, "joints", VersionedDecoder("/sensors_data_raw", read_fields(store, "joints")),
                               clock=clock)
    paths = {
        "store_update": lambda: store.update("joints", msg, clock()),
        "typed": lambda: typed(receive(cls)),
        "versioned": lambda: versioned(receive(VersionedMsg)),
    }
    for step in paths.values():  # warm-up (the decoder builds its class here, once)
        _per_message_us(step, 200)
    samples: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(rounds):
        for name, step in paths.items():
            samples[name].append(_per_message_us(step, count))
    result = {name: statistics.median(values) for name, values in samples.items()}
    ratio = result["versioned"] / result["typed"]
    return {"version": version, "md5sum": cls._md5sum, "bytes": len(payload), "count": count, "rounds": rounds,
            "us_per_message": result, "ratio": ratio, "goal_ratio": GOAL_RATIO, "passed": ratio <= GOAL_RATIO,
            "core_share_at_500hz": result["versioned"] * 1e-6 * ROBOT_RATE_HZ}


def format_message_bench(r: dict[str, Any]) -> str:
    us = r["us_per_message"]
    return "\n".join([
        f"/sensors_data_raw as kuavo_msgs/sensorsData {r['version']} (md5sum {r['md5sum']}, {r['bytes']} bytes), "
        f"median of {r['rounds']} rounds x {r['count']} messages:",
        f"  store.update alone                                      {us['store_update']:7.2f} us/message",
        f"  before: typed subscriber (rospy deserialize, store)     {us['typed']:7.2f} us/message",
        f"  now: AnyMsg, decoded in the publisher's version, store  {us['versioned']:7.2f} us/message",
        f"  added by versions {us['versioned'] - us['typed']:+.2f} us/message; ratio now/before {r['ratio']:.2f} "
        f"(goal <= {r['goal_ratio']}): {'PASS' if r['passed'] else 'FAIL'}; at {ROBOT_RATE_HZ:.0f} Hz "
        f"{100 * r['core_share_at_500hz']:.2f} % of one core",
    ])
