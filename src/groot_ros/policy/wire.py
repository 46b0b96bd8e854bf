"""The policy server's wire format: openpi's msgpack-numpy frames, decoded without trusting the sender.

openpi (openpi_client/msgpack_numpy.py) packs an ndarray as a msgpack map {b"__ndarray__": True, b"data": raw
bytes, b"dtype": dtype.str, b"shape": shape} and a numpy scalar as {b"__npgeneric__": True, b"data": item,
b"dtype": dtype.str}; its WebsocketClientPolicy sends one packed dict per request, reads one packed dict back, and
raises on a text frame (the server's error). We speak exactly that, so openpi-client works against our server
unchanged, but decode it our way: only plain numeric dtypes, the byte count checked against the shape before numpy
sees the buffer, nothing unpickled, every problem a WireError naming the key.

What the frames hold (docs/policy_server.md): a request is `observation.state` (float32, state_dim),
`observation.images.<camera>` (uint8 HxWx3, or JPEG/PNG bytes; LeRobot's own feature key, which is the
checkpoint's camera key), `task`, and optionally `seed`, `request_id`,
`observation_stamp`, and the real-time-chunking prefix `prefix.actions` (float32 rows x action_dim) with
`prefix.delay_steps`; a reply is `actions` (chunk x action_dim float32, robot units), `actions_normalized`,
`server_timing` (ms) and the echoed `request_id` and `observation_stamp`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from groot_ros.core.images import ImageError, compressed_size, decode_compressed, encode_jpeg
from groot_ros.core.observation import Observation
from groot_ros.core.prefix import ChunkPrefix

STATE = "observation.state"
IMAGE_PREFIX = "observation.images."
PREFIX_ACTIONS = "prefix.actions"
PREFIX_DELAY = "prefix.delay_steps"
OPTIONAL = ("task", "seed", "request_id", "observation_stamp", PREFIX_ACTIONS, PREFIX_DELAY)
# bool, signed and unsigned integers, floats: what observations and chunks are made of (openpi refuses V, O, c;
# we also refuse strings and anything else a sender could make numpy build)
DTYPE_KINDS = "biuf"
MAX_DEPTH = 8


def image_key(camera_key: str) -> str:
    """The request key of a camera: the checkpoint's camera keys are LeRobot feature keys already
    ('observation.images.cam_head'); a bare name gets the prefix."""
    return camera_key if camera_key.startswith(IMAGE_PREFIX) else IMAGE_PREFIX + camera_key


class WireError(ValueError):
    """A frame that is not what the protocol says; the message names the key and what was wrong."""


def _pack_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in DTYPE_KINDS:
            raise WireError(f"cannot send a {obj.dtype} array: only bool, integer and float arrays go on the wire")
        return {b"__ndarray__": True, b"data": np.ascontiguousarray(obj).tobytes(), b"dtype": obj.dtype.str,
                b"shape": list(obj.shape)}
    if isinstance(obj, np.generic):
        return {b"__npgeneric__": True, b"data": obj.item(), b"dtype": obj.dtype.str}
    raise WireError(f"cannot send a {type(obj).__name__}")


def pack(obj: Any) -> bytes:
    """One binary frame (msgpack, numpy as openpi packs it)."""
    import msgpack

    return msgpack.packb(obj, default=_pack_default, use_bin_type=True)


def _dtype(raw: Any) -> np.dtype:
    text = raw.decode("ascii", "replace") if isinstance(raw, bytes) else raw
    if not isinstance(text, str) or len(text) > 8:
        raise WireError(f"array dtype {raw!r} is not a numpy dtype string like '<f4'")
    try:
        dtype = np.dtype(text)
    except TypeError as exc:
        raise WireError(f"array dtype {text!r} is not a numpy dtype") from exc
    if dtype.kind not in DTYPE_KINDS:
        raise WireError(f"array dtype {text!r} refused: only bool, integer and float arrays are accepted")
    return dtype


def _array(obj: Mapping) -> np.ndarray:
    data, shape = obj.get(b"data"), obj.get(b"shape")
    dtype = _dtype(obj.get(b"dtype"))
    if not isinstance(data, bytes):
        raise WireError("array data must be bytes")
    if not isinstance(shape, (list, tuple)) or len(shape) > 8 or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
        raise WireError(f"array shape {shape!r} is not a list of at most 8 non-negative integers")
    expected = math.prod(shape) * dtype.itemsize
    if len(data) != expected:
        raise WireError(f"array of shape {list(shape)} {dtype.str} needs {expected} bytes, the frame has {len(data)}")
    return np.frombuffer(data, dtype=dtype).reshape(shape)


def _scalar(obj: Mapping) -> np.generic:
    dtype = _dtype(obj.get(b"dtype"))
    data = obj.get(b"data")
    if isinstance(data, (bytes, str, list, dict)) or data is None:
        raise WireError(f"numpy scalar data {type(data).__name__} is not a number")
    return dtype.type(data)


def _hook(obj: dict) -> Any:
    if b"__ndarray__" in obj:
        return _array(obj)
    if b"__npgeneric__" in obj:
        return _scalar(obj)
    return obj


def unpack(frame: bytes) -> Any:
    """A binary frame -> plain Python with numpy arrays (read-only views of the frame); WireError on anything
    else. msgpack bounds every length by the frame's own size, so a short frame cannot ask for a huge buffer."""
    import msgpack

    if not isinstance(frame, (bytes, bytearray, memoryview)):
        raise WireError("expected a binary msgpack frame, got a text frame")
    try:
        return msgpack.unpackb(frame, object_hook=_hook, raw=False, strict_map_key=False)
    except WireError:
        raise
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise WireError(f"not a msgpack frame: {type(exc).__name__}: {exc}") from exc
    except RecursionError as exc:
        raise WireError("msgpack frame nested too deeply") from exc


PROTOCOL = "groot_ros.policy_server/1"


@dataclass(frozen=True)
class ServerMetadata:
    """The frame the server sends on connect: what it serves, so the robot checks it as it checks a checkpoint."""

    checkpoint: str  # the path on the server (for people: which run)
    checkpoint_sha256: str  # content hash of the checkpoint's files: the identity the robot compares
    layout: str
    state: tuple[tuple[str, int], ...]  # components (name, dim), in order
    action: tuple[tuple[str, int], ...]
    state_names: tuple[str, ...]  # per-dimension feature names
    action_names: tuple[str, ...]
    cameras: Mapping[str, tuple[int, int]]  # camera key -> (height, width) the model takes
    chunk_size: int
    model_step_s: float
    default_task: str
    head: str
    engine: str  # how the server runs it: device/dtype, inference path, CUDA graphs
    version: str
    max_frame_bytes: int
    protocol: str = PROTOCOL

    @property
    def state_dim(self) -> int:
        return sum(d for _, d in self.state)

    @property
    def action_dim(self) -> int:
        return sum(d for _, d in self.action)

    @property
    def spec(self) -> WireSpec:
        return WireSpec(self.state_dim, self.action_dim, tuple(self.cameras), self.default_task)

    def to_wire(self) -> dict[str, Any]:
        return {"protocol": self.protocol, "version": self.version, "checkpoint": self.checkpoint,
                "checkpoint_sha256": self.checkpoint_sha256, "layout": self.layout,
                "state": [[n, d] for n, d in self.state], "action": [[n, d] for n, d in self.action],
                "state_names": list(self.state_names), "action_names": list(self.action_names),
                "cameras": {k: list(v) for k, v in self.cameras.items()}, "chunk_size": self.chunk_size,
                "model_step_s": self.model_step_s, "default_task": self.default_task, "head": self.head,
                "engine": self.engine, "max_frame_bytes": self.max_frame_bytes}

    @classmethod
    def from_wire(cls, data: Any) -> ServerMetadata:
        if not isinstance(data, dict) or data.get("protocol") != PROTOCOL:
            got = data.get("protocol") if isinstance(data, dict) else type(data).__name__
            raise WireError(f"the server's metadata is not {PROTOCOL} (protocol {got!r}): not a groot_ros server?")
        try:
            return cls(checkpoint=str(data["checkpoint"]), checkpoint_sha256=str(data["checkpoint_sha256"]),
                       layout=str(data["layout"]), state=tuple((str(n), int(d)) for n, d in data["state"]),
                       action=tuple((str(n), int(d)) for n, d in data["action"]),
                       state_names=tuple(map(str, data["state_names"])),
                       action_names=tuple(map(str, data["action_names"])),
                       cameras={str(k): (int(v[0]), int(v[1])) for k, v in data["cameras"].items()},
                       chunk_size=int(data["chunk_size"]), model_step_s=float(data["model_step_s"]),
                       default_task=str(data["default_task"]), head=str(data["head"]), engine=str(data["engine"]),
                       version=str(data["version"]), max_frame_bytes=int(data["max_frame_bytes"]))
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise WireError(f"the server's metadata is incomplete: {type(exc).__name__}: {exc}") from exc


# -- the frames ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WireSpec:
    """What the served policy takes: the request is checked against it before the model sees anything."""

    state_dim: int
    action_dim: int
    camera_keys: tuple[str, ...]
    default_task: str = ""  # a request without `task` gets this one (openpi's examples send a `prompt`, not ours)


@dataclass(frozen=True)
class Request:
    observation: Observation
    seed: int | None
    request_id: Any  # echoed as sent (int or str)
    prefix: ChunkPrefix | None


def encode_request(obs: Observation, *, seed: int | None = None, request_id: int | str | None = None,
                   prefix: ChunkPrefix | None = None, jpeg_quality: int = 0) -> bytes:
    """The robot side's request. jpeg_quality > 0 sends each image as JPEG bytes instead of raw pixels."""
    frame: dict[str, Any] = {STATE: np.asarray(obs.state, dtype=np.float32), "task": obs.task,
                             "observation_stamp": float(obs.stamp)}
    for key, img in obs.images.items():
        frame[image_key(key)] = encode_jpeg(img, jpeg_quality) if jpeg_quality > 0 else img
    if seed is not None:
        frame["seed"] = int(seed)
    if request_id is not None:
        frame["request_id"] = request_id
    if prefix is not None:
        frame[PREFIX_ACTIONS] = np.asarray(prefix.actions, dtype=np.float32)
        frame[PREFIX_DELAY] = int(prefix.delay_steps)
    return pack(frame)


MAX_IMAGE_SIDE = 4096  # a compressed image larger than this is refused before it is decoded


def _image(key: str, value: Any) -> np.ndarray:
    if isinstance(value, bytes):
        size = compressed_size(value)
        if size is None or max(size) > MAX_IMAGE_SIDE or min(size) == 0:
            raise WireError(f"{key}: {len(value)} bytes are not a JPEG/PNG image of at most {MAX_IMAGE_SIDE} pixels "
                            f"a side (header says {size})")
        try:
            return decode_compressed("jpeg or png", value)
        except ImageError as exc:
            raise WireError(f"{key}: {exc}") from exc
    if not isinstance(value, np.ndarray) or value.dtype != np.uint8 or value.ndim != 3 or value.shape[2] != 3:
        desc = f"{value.dtype} {list(value.shape)}" if isinstance(value, np.ndarray) else type(value).__name__
        raise WireError(f"{key} must be uint8 HxWx3 (or JPEG bytes), got {desc}")
    if min(value.shape[:2]) == 0:
        raise WireError(f"{key} is empty ({list(value.shape)})")
    return value


def _integer(frame: Mapping, key: str) -> int | None:
    value = frame.get(key)
    if value is None:
        return None
    if isinstance(value, np.integer):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise WireError(f"{key} must be an integer, got {type(value).__name__}")
    return value


def decode_request(frame: bytes, spec: WireSpec) -> Request:
    """A request frame checked against the served policy: every problem named in one WireError."""
    data = unpack(frame)
    if not isinstance(data, dict):
        raise WireError(f"a request must be a map, got {type(data).__name__}")
    if not all(isinstance(k, str) for k in data):
        raise WireError(f"request keys must be strings, got {sorted(repr(k) for k in data if not isinstance(k, str))}")
    problems: list[str] = []
    wire_keys = {image_key(k): k for k in spec.camera_keys}
    cameras = {k for k in data if k.startswith(IMAGE_PREFIX)}
    unknown = sorted(k for k in data if k != STATE and k not in OPTIONAL and not k.startswith(IMAGE_PREFIX))
    if unknown:
        problems.append(f"unknown keys {unknown}")
    if cameras != set(wire_keys):
        problems.append(f"images {sorted(cameras)}, the policy takes {sorted(wire_keys)}")
    state = data.get(STATE)
    if not isinstance(state, np.ndarray) or state.dtype != np.float32 or state.shape != (spec.state_dim,):
        desc = f"{state.dtype} {list(state.shape)}" if isinstance(state, np.ndarray) else type(state).__name__
        problems.append(f"{STATE} must be float32 [{spec.state_dim}], got {desc}")
    elif not np.isfinite(state).all():
        problems.append(f"{STATE} has NaN/inf at {np.flatnonzero(~np.isfinite(state)).tolist()}")
    task = data.get("task", spec.default_task)
    if not isinstance(task, str):
        problems.append(f"task must be a string, got {type(task).__name__}")
    stamp = data.get("observation_stamp", 0.0)
    if not isinstance(stamp, (int, float)) or isinstance(stamp, bool) or not math.isfinite(stamp):
        problems.append(f"observation_stamp must be a finite number, got {stamp!r}")
    request_id = data.get("request_id")
    if request_id is not None and (not isinstance(request_id, (int, str)) or isinstance(request_id, bool)):
        problems.append(f"request_id must be an integer or a string, got {type(request_id).__name__}")
    images: dict[str, np.ndarray] = {}
    for key in sorted(cameras & set(wire_keys)):
        try:
            images[wire_keys[key]] = _image(key, data[key])
        except WireError as exc:
            problems.append(str(exc))
    seed = delay = None
    try:
        seed = _integer(data, "seed")
        delay = _integer(data, PREFIX_DELAY)
    except WireError as exc:
        problems.append(str(exc))
    prefix = None
    rows = data.get(PREFIX_ACTIONS)
    if (rows is None) != (delay is None):
        problems.append(f"{PREFIX_ACTIONS} and {PREFIX_DELAY} come together")
    elif rows is not None:
        if (not isinstance(rows, np.ndarray) or rows.dtype != np.float32 or rows.ndim != 2
                or rows.shape[1] != spec.action_dim):
            desc = f"{rows.dtype} {list(rows.shape)}" if isinstance(rows, np.ndarray) else type(rows).__name__
            problems.append(f"{PREFIX_ACTIONS} must be float32 [rows, {spec.action_dim}], got {desc}")
        elif not np.isfinite(rows).all():
            problems.append(f"{PREFIX_ACTIONS} has NaN/inf")
        else:
            try:
                prefix = ChunkPrefix(np.array(rows), int(delay))
            except ValueError as exc:
                problems.append(str(exc))
    if problems:
        raise WireError("bad request: " + "; ".join(problems))
    obs = Observation(state=np.array(state), images=images, task=task, stamp=float(stamp))
    return Request(obs, seed, request_id, prefix)


@dataclass(frozen=True)
class Reply:
    actions: np.ndarray  # (chunk, action_dim) float32, robot units
    normalized: np.ndarray | None
    server_timing: Mapping[str, float]
    request_id: Any
    observation_stamp: float | None


def encode_reply(actions: np.ndarray, normalized: np.ndarray | None, timing: Mapping[str, float],
                 request_id: Any, stamp: float | None) -> bytes:
    frame: dict[str, Any] = {"actions": np.asarray(actions, dtype=np.float32),
                             "server_timing": {k: float(v) for k, v in timing.items()}}
    if normalized is not None:
        frame["actions_normalized"] = np.asarray(normalized, dtype=np.float32)
    if request_id is not None:
        frame["request_id"] = request_id
    if stamp is not None:
        frame["observation_stamp"] = float(stamp)
    return pack(frame)


def decode_reply(frame: bytes | str, chunk_size: int, action_dim: int) -> Reply:
    """The robot side's check of a reply: a text frame is the server's error, raised as WireError."""
    if isinstance(frame, str):
        raise WireError(f"server error: {frame.strip()}")
    data = unpack(frame)
    actions = data.get("actions") if isinstance(data, dict) else None
    if (not isinstance(actions, np.ndarray) or actions.shape != (chunk_size, action_dim)
            or actions.dtype != np.float32 or not np.isfinite(actions).all()):
        desc = f"{actions.dtype} {list(actions.shape)}" if isinstance(actions, np.ndarray) else type(actions).__name__
        raise WireError(f"reply actions must be finite float32 [{chunk_size}, {action_dim}], got {desc}")
    normalized = data.get("actions_normalized")
    timing = data.get("server_timing") or {}
    return Reply(np.array(actions), np.array(normalized) if isinstance(normalized, np.ndarray) else None,
                 {str(k): float(v) for k, v in timing.items() if isinstance(v, (int, float))},
                 data.get("request_id"), data.get("observation_stamp"))
