"""`python -m groot_ros dagger-keys`: a DAgger session from the terminal, one key per action.

Our users drove their DAgger recording from the keyboard; this does the same by calling the policy node's
services and nothing else, so whatever the keys do is also one `rosservice call` away and the node's own checks
(state machine, safety, recorder) decide what happens. Each key prints the node's answer.

On a terminal, keys act at once (cbreak mode, restored on exit); from a pipe or file, each line's first character
is a key (scripts and tests).
"""

from __future__ import annotations

import contextlib
import select
import sys
from dataclasses import dataclass
from typing import Callable, Iterator, TextIO

import rospy
from std_srvs.srv import SetBool, Trigger


@dataclass(frozen=True)
class Key:
    service: str  # relative to the node's name
    help: str
    takeover: bool = False  # std_srvs/SetBool toggled on each press; the others are std_srvs/Trigger


KEYS = {
    "t": Key("takeover", "take over / hand back to the policy", takeover=True),
    "e": Key("episode", "save the episode and start a new one"),
    "x": Key("discard", "discard the episode in progress"),
    "r": Key("reset", "reset for the next trial (start pose, claws, latch)"),
    "g": Key("start", "start the policy (start-up sequence first)"),
    "p": Key("pause", "pause (hold where it is)"),
    "c": Key("resume", "continue after a pause or hold"),
    "s": Key("stop", "stop the policy and restore the robot"),
}
QUIT = "q"


def usage(node: str) -> str:
    lines = [f"dagger-keys -> {node}"] + [f"  {k}  {key.help}" for k, key in KEYS.items()] + [f"  {QUIT}  quit"]
    return "\n".join(lines)


class Session:
    """Turns keys into service calls; `call(service, type, request)` is injected so the mapping is tested alone."""

    def __init__(self, node: str, call: Callable[[str, type, object], tuple[bool, str]]):
        self.node = node.rstrip("/")
        self.call = call
        self.taken_over = False

    def press(self, key: str) -> str:
        """One key -> one call; the line to print."""
        spec = KEYS.get(key)
        if spec is None:
            return f"'{key}': not a key ({', '.join(KEYS)} or {QUIT})"
        name = f"{self.node}/{spec.service}"
        if spec.takeover:
            ok, message = self.call(name, SetBool, not self.taken_over)
            if ok:
                self.taken_over = not self.taken_over
        else:
            ok, message = self.call(name, Trigger, None)
        return f"{spec.service}: {'ok' if ok else 'REFUSED'}: {message}"


def ros_call(name: str, srv_type: type, data: object, timeout_s: float = 3.0) -> tuple[bool, str]:
    """A service call that reports a missing node or a failed call as a refusal, never a traceback."""
    try:
        rospy.wait_for_service(name, timeout_s)
        proxy = rospy.ServiceProxy(name, srv_type)
        reply = proxy(data) if srv_type is SetBool else proxy()
    except (rospy.ROSException, rospy.ServiceException) as exc:
        return False, f"{name} not reachable: {exc}"
    return bool(reply.success), reply.message


@contextlib.contextmanager
def _cbreak(stream: TextIO) -> Iterator[None]:
    import termios
    import tty

    fd = stream.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def keys(stream: TextIO) -> Iterator[str]:
    """Keys as typed (terminal) or first characters of lines (pipe); ends at end of input or on shutdown."""
    if not stream.isatty():
        for line in stream:
            if line.strip():
                yield line.strip()[0]
        return
    with _cbreak(stream):
        while not rospy.is_shutdown():
            ready, _, _ = select.select([stream], [], [], 0.2)
            if ready:
                yield stream.read(1)


def run(node: str, stream: TextIO = sys.stdin, out: TextIO = sys.stdout) -> int:
    rospy.init_node("groot_dagger_keys", anonymous=True, disable_signals=False)
    session = Session(node, ros_call)
    print(usage(session.node), file=out, flush=True)
    for key in keys(stream):
        if key == QUIT:
            break
        print(session.press(key), file=out, flush=True)
    return 0
