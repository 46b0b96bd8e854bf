"""The latest sample of every sensor stream and camera, and the observation built from them, without ROS.

A policy step must see one consistent, fresh view of the robot. Rather than passing a half-valid
observation to the model, `build_observation` either returns a complete Observation or a list of
per-stream problems (stale: by how much over which limit; NaN in which state dims; wrong joint count;
undecodable or wrong-size image) that the node logs while it holds the robot still.
Staleness is judged on the receive time (our clock), so a robot whose clock is off does not make every
stream look stale; the header stamps travel along in Observation.meta for logs and bags.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from groot_ros.core.images import ImageError, check_not_tiny, check_size, decode_message, reduction_for
from groot_ros.core.layout import Layout, read_field
from groot_ros.core.observation import Observation

# A message may be stamped on arrival a hair after the tick's clock reading (another thread); beyond this, the
# clock went backwards.
CLOCK_SLACK_S = 0.05

PROBLEM_KINDS = ("missing", "stale", "field", "joint_count", "nonfinite", "range", "image")
# Claw units a claw state may read beyond the controller's 0..100 (sensor noise) before it is invalid.
CLAW_SLACK = 5.0


@dataclass(frozen=True)
class Sample:
    msg: Any
    received: float  # our clock, seconds
    stamp: float | None  # the message header's stamp, seconds (None: no header or a zero stamp)


@dataclass(frozen=True)
class StreamProblem:
    """One reason the observation cannot be built; `age`/`limit` are set for stale streams."""

    source: str  # stream or camera name from the config
    topic: str
    kind: str  # one of PROBLEM_KINDS
    detail: str
    age: float | None = None
    limit: float | None = None

    def __str__(self) -> str:
        return f"{self.source} ({self.topic}): {self.kind}: {self.detail}"


@dataclass(frozen=True)
class ObservationResult:
    observation: Observation | None
    problems: tuple[StreamProblem, ...] = ()

    @property
    def ok(self) -> bool:
        return self.observation is not None

    def summary(self) -> str:
        return "; ".join(str(p) for p in self.problems) if self.problems else "ok"


def header_stamp(msg: Any) -> float | None:
    header = getattr(msg, "header", None)
    stamp = getattr(header, "stamp", None)
    if stamp is None:
        return None
    seconds = stamp.secs + stamp.nsecs * 1e-9
    return seconds if seconds > 0 else None


class ObservationStore:
    """Thread-safe latest-sample store keyed by the config's stream and camera names.

    expected_image_size: camera name -> (height, width) the checkpoint was trained on; cameras not
    listed accept any size.
    decode_size: camera name -> (height, width) the model needs at least: compressed frames are decoded at
    the smallest JPEG reduction (1/2, 1/4, 1/8) that still covers it, judged on the previous frame's size.
    """

    def __init__(self, layout: Layout, expected_image_size: Mapping[str, tuple[int, int]] | None = None,
                 decode_size: Mapping[str, tuple[int, int]] | None = None):
        self.layout = layout
        self._streams = {name: layout.streams[name] for name in layout.used_streams()}
        self._cameras = {c.name: c for c in layout.cameras}
        unknown = set(expected_image_size or {}) - set(self._cameras)
        if unknown:
            raise ValueError(f"expected_image_size names unknown cameras {sorted(unknown)}; known: {sorted(self._cameras)}")
        self._sizes = dict(expected_image_size or {})
        self._decode_size = dict(decode_size or {})
        self._source_hw: dict[str, tuple[int, int]] = {}  # full-size frame of each camera, from its last frame
        offsets = np.cumsum([0] + [c.dim for c in layout.state])
        self._claw_dims = [int(offsets[k]) + j for k, c in enumerate(layout.state) if c.stream == "claws"
                           for j in range(c.dim)]
        self._samples: dict[str, Sample] = {}
        self._decoded: dict[str, tuple[Sample, np.ndarray | ImageError]] = {}
        self._lock = threading.Lock()

    @property
    def sources(self) -> dict[str, tuple[str, str]]:
        """name -> (topic, message type) for everything the store wants to be fed."""
        out = {n: (s.topic, s.msg_type) for n, s in self._streams.items()}
        out.update({n: (c.topic, c.msg_type) for n, c in self._cameras.items()})
        return out

    def update(self, name: str, msg: Any, received: float) -> None:
        if name not in self._streams and name not in self._cameras:
            raise KeyError(f"'{name}' is neither a used stream {sorted(self._streams)} nor a camera {sorted(self._cameras)}")
        with self._lock:
            self._samples[name] = Sample(msg, received, header_stamp(msg))

    def latest(self, name: str) -> Sample | None:
        with self._lock:
            return self._samples.get(name)

    def measured_action(self, nominal_height: float = 0.0) -> tuple[np.ndarray | None, str]:
        """The robot's pose in action space from the latest state messages, or None and why (a missing stream, a
        malformed message). Values may be non-finite: the safety envelope and the watchdog judge those."""
        messages = {}
        for stream in self.layout.used_streams():
            sample = self.latest(stream)
            if sample is None:
                return None, f"no {stream} message yet"
            messages[stream] = sample.msg
        robot = self.layout.robot
        for comp in (c for c in self.layout.state if c.joint_vector):
            wrong = robot.joint_count_problem(comp, len(read_field(messages[comp.stream], comp.field)))
            if wrong:
                return None, f"sensor message malformed: {comp.stream} {wrong}"
        try:
            state = self.layout.state_from_messages(messages)
        except (IndexError, AttributeError, TypeError, ValueError) as exc:  # the message names its stream
            return None, f"sensor message malformed: {exc}"
        out_of_range = self._range_problem(state)
        if out_of_range:
            return None, f"sensor value invalid: {out_of_range}"
        return self.layout.measured_action(state, nominal_height), ""

    def freshness_problems(self, now: float, samples: Mapping[str, Sample] | None = None) -> list[StreamProblem]:
        """Missing or stale streams and cameras only: cheap enough for every control tick (no decoding)."""
        if samples is None:
            samples = self.snapshot()
        problems = []
        for name, spec in list(self._streams.items()) + list(self._cameras.items()):
            problem = _freshness(name, spec.topic, spec.max_age, samples.get(name), now)
            if problem:
                problems.append(problem)
        return problems

    def snapshot(self) -> dict[str, Sample]:
        """The latest sample of every stream and camera, as of now: cheap (no decoding), so a fast loop can take one
        and have it built later, elsewhere (the deployment recorder builds frames on its own thread)."""
        with self._lock:
            return dict(self._samples)

    def build_observation(self, now: float, task: str) -> ObservationResult:
        return self.observation_from(self.snapshot(), now, task)

    def observation_from(self, samples: Mapping[str, Sample], now: float, task: str) -> ObservationResult:
        """The observation those samples make at time `now`: staleness judged at `now`, images decoded here."""
        problems = self.freshness_problems(now, samples)
        state = self._state(samples, problems)
        images = {}
        for name, cam in self._cameras.items():
            if name not in samples:
                continue
            img = self._image(name, samples[name])
            if isinstance(img, ImageError):
                problems.append(StreamProblem(name, cam.topic, "image", str(img)))
            else:
                images[cam.key] = img
        if problems:
            return ObservationResult(None, tuple(problems))
        meta = {
            "header_stamps": {n: s.stamp for n, s in samples.items()},
            "ages": {n: now - s.received for n, s in samples.items()},
        }
        return ObservationResult(Observation(state=state, images=images, task=task, stamp=now, meta=meta))

    def _state(self, samples: Mapping[str, Sample], problems: list[StreamProblem]) -> np.ndarray | None:
        parts: list[np.ndarray] = []
        robot = self.layout.robot
        for comp in self.layout.state:
            spec = self._streams[comp.stream]
            if comp.stream not in samples:
                return None  # already reported as missing
            try:
                values, _ = self.layout.field_values(samples[comp.stream].msg, comp.field, comp.field)
            except (AttributeError, TypeError, ValueError) as exc:  # NameMapError: names no known set
                problems.append(StreamProblem(comp.stream, spec.topic, "field", f"{comp.field}: {exc}"))
                return None
            wrong = robot.joint_count_problem(comp, len(values))
            if wrong:
                problems.append(StreamProblem(comp.stream, spec.topic, "joint_count", wrong))
                return None
            if len(values) <= max(comp.indices):
                problems.append(StreamProblem(
                    comp.stream, spec.topic, "joint_count" if comp.joint_vector else "field",
                    f"{comp.field} has {len(values)} values, {comp.name} needs index {max(comp.indices)}"))
                return None
            parts.append(values[list(comp.indices)])
        state = np.concatenate(parts)
        out_of_range = self._range_problem(state)
        if out_of_range:
            problems.append(StreamProblem("claws", self._streams["claws"].topic, "range", out_of_range))
            return None
        bad = ~np.isfinite(state)
        if bad.any():
            names = np.asarray(self.layout.state_names)
            for comp, sl in self.layout.state_slices().items():
                dims = [f"{n}={v}" for n, v in zip(names[sl][bad[sl]], state[sl][bad[sl]])]
                if dims:
                    stream = next(c.stream for c in self.layout.state if c.name == comp)
                    problems.append(StreamProblem(stream, self._streams[stream].topic, "nonfinite", ", ".join(dims)))
            return None
        return state

    def _range_problem(self, state: np.ndarray) -> str:
        """Claw positions outside the controller's range (0..100, CLAW_SLACK beyond it tolerated): a reading the
        claws cannot have is an invalid input, not a state to act on."""
        lo, hi = self.layout.robot.claw_limits
        bad = [f"{self.layout.state_names[i]}={state[i]:g}" for i in self._claw_dims
               if np.isfinite(state[i]) and not lo - CLAW_SLACK <= state[i] <= hi + CLAW_SLACK]
        if not bad:
            return ""
        return f"claws ({self._streams['claws'].topic}) {', '.join(bad)} outside {lo:g}..{hi:g}"

    def _image(self, name: str, sample: Sample) -> np.ndarray | ImageError:
        """Decodes once per received frame: the policy may build several observations from one frame."""
        cached = self._decoded.get(name)
        if cached is not None and cached[0] is sample:
            return cached[1]
        try:
            source = self._source_hw.get(name)
            reduce = reduction_for(source, self._decode_size.get(name)) if source else 1
            img = decode_message(sample.msg, self._cameras[name].rotate_180, reduce)
            self._source_hw[name] = (img.shape[0] * reduce, img.shape[1] * reduce)
            check_size(img, self._sizes.get(name))
            check_not_tiny(self._source_hw[name], self._decode_size.get(name))
            result: np.ndarray | ImageError = img
        except ImageError as exc:
            result = exc
        self._decoded[name] = (sample, result)
        return result


def _freshness(name: str, topic: str, max_age: float, sample: Sample | None, now: float) -> StreamProblem | None:
    if sample is None:
        return StreamProblem(name, topic, "missing", "no message received yet")
    age = now - sample.received
    if age < -CLOCK_SLACK_S:  # received "in the future": the clock jumped back, its age says nothing
        return StreamProblem(name, topic, "stale", f"last message received {-age:.3f} s after now (the clock "
                                                   "jumped back)", age=age, limit=max_age)
    if age > max_age:
        return StreamProblem(name, topic, "stale", f"last message {age:.3f} s old, limit {max_age:.3f} s",
                             age=age, limit=max_age)
    return None
