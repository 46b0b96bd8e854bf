"""The policy node's per-chunk work without ROS: what `fast_inference:=true` costs as the node measures it.

For a machine without ROS (the lent GPU machines have none): the node's inference worker is PolicyRunner's
(execution/runner.py), and this runs the very same `infer` per chunk: `ObservationStore.build_observation(now,
task)` over the latest messages, then `predict_chunk(obs, seed=node seed)`, handing the chunk to the execution
core, with the runner's own timers (observation_build, model_call, inference = done - obs.stamp). The store is fed
message-shaped objects (raw rgb8 camera frames, the layout's state fields; a fresh frame per camera before every
chunk, as at 30 Hz cameras and a 10 Hz model) and the calls run in a worker thread of their own, unseeded unless
asked. Not measured here: rospy's deserialisation of the messages, topic transport, the control loop competing for
the GIL, publishing the chunk.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from groot_ros.core.layout import Layout


@dataclass(frozen=True)
class NodePathConfig:
    checkpoint: Path
    device: str = "cpu"
    dtype: str = "float32"
    attention: str = "auto"
    fast_inference: bool = True
    seed: int | None = None  # the node's default: fresh noise every chunk
    warmup: int = 5
    chunks: int = 100
    image_height: int = 480
    image_width: int = 640
    task: str = "depalletize"


def _stamp(t: float) -> SimpleNamespace:
    secs = int(t)
    return SimpleNamespace(secs=secs, nsecs=int((t - secs) * 1e9))


def _nested(path: str, value: Any) -> Any:
    """An object with `value` at the dotted attribute `path` ("joint_data.joint_q")."""
    obj: Any = value
    for part in reversed(path.split(".")):
        obj = SimpleNamespace(**{part: obj})
    return obj


def _merge(a: SimpleNamespace, b: SimpleNamespace) -> SimpleNamespace:
    for key, value in vars(b).items():
        if key in vars(a) and isinstance(value, SimpleNamespace):
            _merge(getattr(a, key), value)
        else:
            setattr(a, key, value)
    return a


def stream_messages(layout: Layout, now: float, rng: np.random.Generator) -> dict[str, Any]:
    """One message-shaped object per state stream, holding every field the layout reads (long enough vectors)."""
    messages: dict[str, SimpleNamespace] = {}
    for comp in layout.state:
        size = max(max(comp.indices) + 1, (layout.robot.num_joints or 0) if comp.joint_vector else 0)
        values = list(rng.uniform(-0.5, 0.5, size))
        msg = _nested(comp.field, values)
        messages[comp.stream] = _merge(messages[comp.stream], msg) if comp.stream in messages else msg
    for msg in messages.values():
        msg.header = SimpleNamespace(stamp=_stamp(now))
    return messages


def camera_message(img: np.ndarray, now: float) -> SimpleNamespace:
    from groot_ros.core.images import encode_rgb8

    return SimpleNamespace(header=SimpleNamespace(stamp=_stamp(now)), **encode_rgb8(img))


def run_node_path(cfg: NodePathConfig, layout: Layout) -> dict[str, Any]:
    """Times the runner's inference step per chunk in a worker thread; ms p50/p99/max per part."""
    from groot_ros.core.latency import LatencyStats
    from groot_ros.core.store import ObservationStore
    from groot_ros.execution.config import load_execution_settings
    from groot_ros.execution.inputs import InputMonitor
    from groot_ros.execution.runner import PolicyRunner
    from groot_ros.policy.loading import load_policy

    # the node's own loader: fast_inference on CUDA captures and warms up CUDA graphs before the first chunk
    runtime = load_policy(cfg.checkpoint, layout, device=cfg.device, dtype=cfg.dtype, attention=cfg.attention,
                          fast=cfg.fast_inference, task=cfg.task)
    store = ObservationStore(layout)
    chunks: list[np.ndarray] = []
    runner = PolicyRunner(layout, load_execution_settings(), runtime, store, InputMonitor(),
                          lambda _command, _stamp: None, task=cfg.task, seed=cfg.seed,
                          on_chunk=lambda out: chunks.append(out.chunk))
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (cfg.image_height, cfg.image_width, 3), dtype=np.uint8) for _ in range(4)]
    errors: list[BaseException] = []

    def feed(i: int) -> None:
        now = time.time()
        for name, msg in stream_messages(layout, now, rng).items():
            store.update(name, msg, now)
        for k, cam in enumerate(layout.cameras):
            store.update(cam.name, camera_message(frames[(i + k) % len(frames)], now), now)

    def worker() -> None:
        try:
            for i in range(cfg.warmup + cfg.chunks):
                if i == cfg.warmup:
                    runner.latency = LatencyStats()  # warm-up calls are not counted
                feed(i)
                if runner.infer(time.time()) is None:
                    problems = store.build_observation(time.time(), cfg.task).summary()
                    raise RuntimeError(f"observation not usable: {problems}")
                assert chunks[-1].shape == (runtime.expects.chunk_size, layout.action_dim)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=worker, name="groot_inference")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    parts = {"observation_build": "observation_build", "predict_chunk": "model_call", "inference": "inference"}
    stats = {name: {k: v * 1e3 for k, v in runner.latency.percentiles(key).items() if k != "n"}
             for name, key in parts.items()}
    return {"engine": runtime.name, "device": cfg.device, "dtype": cfg.dtype, "seed": cfg.seed,
            "chunks": cfg.chunks, "image": f"{cfg.image_width}x{cfg.image_height} rgb8 x {len(layout.cameras)}",
            "ms": stats}


def format_node_path(result: dict[str, Any]) -> str:
    lines = [f"node inference path without ROS ({result['engine']}, {result['device']}/{result['dtype']}, "
             f"seed {result['seed']}, {result['chunks']} chunks, cameras {result['image']}); ms p50 / p99 / max"]
    for name, s in result["ms"].items():
        lines.append(f"  {name:18s} {s['p50']:8.2f} / {s['p99']:8.2f} / {s['max']:8.2f}")
    return "\n".join(lines)
