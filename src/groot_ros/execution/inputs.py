"""Input faults that freshness (time since the last message) cannot see, judged without ROS.

- a frozen camera: fresh messages, same image bytes, for longer than `frozen_after_s` (None: not judged; a
  renderer without noise, like the stand-in's, repeats frames while the robot stands still);
- a clock jump: the header stamp is off from our receive time by more than `max_stamp_offset_s` (into the
  future or the past), so the data cannot be placed in time;
- a stamp going backwards (a publisher's clock reset, a replay restarted): an older stamp than the stream's last,
  reported for `STAMP_JUMP_HOLD_S` after it arrived, so the hold names it even when the offset stays small
  (under `STAMP_JUMP_MIN_S` it is two publishers interleaving, which the stamps cannot tell from a jump).
The node feeds every message's stamp and (for cameras) a digest of its bytes; `problems(now)` lists what is
wrong, one line per stream, for the state machine's hold reasons.
"""

from __future__ import annotations

import threading
import zlib
from dataclasses import dataclass


def digest(data: bytes) -> int:
    """Cheap content fingerprint (crc32: ~0.3 ms for a 640x480 rgb8 frame)."""
    return zlib.crc32(data)


# How long a stamp that went backwards stays a problem (receive time): long enough for a control tick to hold on it.
STAMP_JUMP_HOLD_S = 1.0
# A stamp this much older than the stream's last is a jump; less is two publishers' messages interleaving.
STAMP_JUMP_MIN_S = 0.1


@dataclass
class _Seen:
    digest: int | None = None
    unchanged_since: float | None = None
    stamp_offset: float | None = None
    last_stamp: float | None = None
    jumped: tuple[float, float] | None = None  # (seconds back, receive time) of the last backwards stamp


class InputMonitor:
    def __init__(self, frozen_after_s: float | None = None, max_stamp_offset_s: float = 0.5):
        self.frozen_after_s = frozen_after_s
        self.max_stamp_offset_s = max_stamp_offset_s
        self._seen: dict[str, _Seen] = {}
        self._lock = threading.Lock()

    def update(self, name: str, received: float, stamp: float | None, content: int | None = None) -> None:
        with self._lock:
            seen = self._seen.setdefault(name, _Seen())
            seen.stamp_offset = None if stamp is None else stamp - received
            if stamp is not None:
                if seen.last_stamp is not None and stamp < seen.last_stamp - STAMP_JUMP_MIN_S:
                    seen.jumped = (seen.last_stamp - stamp, received)
                seen.last_stamp = stamp
            if content is not None:
                if content != seen.digest:
                    seen.digest, seen.unchanged_since = content, received
                elif seen.unchanged_since is None:
                    seen.unchanged_since = received

    def problems(self, now: float) -> list[str]:
        out = []
        with self._lock:
            for name, seen in self._seen.items():
                if seen.stamp_offset is not None and abs(seen.stamp_offset) > self.max_stamp_offset_s:
                    where = "future" if seen.stamp_offset > 0 else "past"
                    out.append(f"{name}: header stamp {abs(seen.stamp_offset):.2f} s in the {where} of its arrival "
                               f"(limit {self.max_stamp_offset_s:g} s)")
                if seen.jumped is not None and -STAMP_JUMP_HOLD_S < now - seen.jumped[1] < STAMP_JUMP_HOLD_S:
                    out.append(f"{name}: header stamp jumped back {seen.jumped[0]:.2f} s (clock jumped back)")
                if (self.frozen_after_s is not None and seen.unchanged_since is not None
                        and now - seen.unchanged_since > self.frozen_after_s):
                    out.append(f"{name}: frozen, the same image for {now - seen.unchanged_since:.1f} s "
                               f"(limit {self.frozen_after_s:g} s)")
        return out
