"""The operator's commands, read from the robot's own command topics while the operator has taken over.

Whatever teleoperates the robot (Leju's VR teleoperation, a joystick, a script) publishes on the topics the policy
node commands on; these subscribers keep the latest values per channel, in robot units and by joint name where the
message names its joints, and ignore the node's own messages. A taken-over frame records them as the action (over
the measured pose for a channel the operator has not sent yet: what the robot is holding there).
"""

from __future__ import annotations

import threading

import numpy as np
import rospy

from groot_ros.core.layout import Layout, NameMapError
from groot_ros.ros.messages import message_class


class OperatorCommands:
    def __init__(self, layout: Layout, own_name: str):
        self.layout = layout
        self.own_name = own_name
        self._latest: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        self._subs = [rospy.Subscriber(layout.commands[ch].topic, message_class(layout.commands[ch].msg_type),
                                       self._on_message, callback_args=ch, queue_size=10) for ch in layout.action_channels]

    def _on_message(self, msg, channel: str) -> None:
        if getattr(msg, "_connection_header", {}).get("callerid") == self.own_name:
            return
        try:
            values, _ = self.layout.command_values(channel, msg)
        except (NameMapError, AttributeError, IndexError, TypeError, ValueError) as exc:
            rospy.logwarn_throttle(5.0, f"groot_policy: operator's {channel} command not readable: {exc}")
            return
        with self._lock:
            self._latest[channel] = values

    def over(self, pose: np.ndarray) -> np.ndarray:
        """The action the operator commands now, the measured pose where a channel has no command of theirs."""
        channels = self.layout.channel_values(pose)
        with self._lock:
            channels.update({ch: v for ch, v in self._latest.items() if v.shape == channels[ch].shape})
        return self.layout.action_from_channels(channels)

    def forget(self) -> None:
        """After a hand-back: the next takeover starts from what the robot holds, not from this one's commands
        (commands streamed before a takeover, while the policy ran, are kept: the operator's teleoperation is live)."""
        with self._lock:
            self._latest.clear()
