"""bench-server: what the policy server adds to a chunk, against the same engine called in process.

One loaded engine is timed twice: called directly, and through `groot_ros serve`'s server on loopback by the
robot side's RemotePolicy (the node's own client), for three cameras at 224x224 and 480x640, raw pixels and JPEG on
the wire. The overhead per call is the round trip minus the server's own queue + model time (server_timing), so the
model's jitter does not hide it; the in-process and remote round trips are shown next to it. Two robots at once:
two clients in two threads, each with its own connection; their requests queue for the one model.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import cv2

from groot_ros.bench.policy import BenchConfig, Stat, prepare_checkpoint
from groot_ros.core.layout import load_layout
from groot_ros.policy.matching import choose_layout
from groot_ros.policy.remote import RemotePolicy
from groot_ros.policy.server import PolicyServer, ServerConfig, ServerThread, served_metadata
from groot_ros.policy.tiny import synthetic_observation
from groot_ros.policy.wire import encode_request

SIZES = ((224, 224), (480, 640))


@dataclass(frozen=True)
class ServerBenchConfig:
    checkpoint: Path | None = None  # None: a random-weight model of `size` (bench-policy's)
    size: str = "tiny"
    workdir: Path = Path("artifacts/bench")
    device: str = "cpu"
    dtype: str = "float32"
    fast: bool = False
    cuda_graphs: bool = False
    calls: int = 50
    warmup: int = 5
    jpeg_quality: int = 90
    robot: str = "4_pro"
    topics: str = "sim"


def _timed(call: Callable[[], Any], n: int, warmup: int) -> tuple[list[float], list[Any]]:
    for _ in range(warmup):
        call()
    ms, outs = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        outs.append(call())
        ms.append((time.perf_counter() - t0) * 1e3)
    return ms, outs


def _row(**values: Any) -> dict[str, Any]:
    return {k: (round(v, 2) if isinstance(v, float) else v) for k, v in values.items()}


def run_server_bench(cfg: ServerBenchConfig, log: Callable[[str], None] = lambda _line: None) -> dict[str, Any]:
    from groot_ros.policy.fast import FastOptions
    from groot_ros.policy.runtime import GrootRuntime

    named = load_layout("depalletize", cfg.robot, cfg.topics)
    checkpoint = prepare_checkpoint(BenchConfig(size=cfg.size, checkpoint=cfg.checkpoint, workdir=cfg.workdir),
                                    named)
    choice = choose_layout(checkpoint, cfg.robot, cfg.topics)
    layout = choice.layout
    runtime = GrootRuntime.load(checkpoint, layout, device=cfg.device, dtype=cfg.dtype)
    if cfg.fast or cfg.cuda_graphs:
        runtime.enable_fast_path(FastOptions(cuda_graphs=cfg.cuda_graphs))
    engine = f"{runtime.device}/{runtime.dtype}, {runtime.name}" + (", CUDA graphs" if cfg.cuda_graphs else "")
    log(f"{checkpoint} ({engine}), {len(layout.camera_keys)} cameras, {cfg.calls} calls per row")
    metadata = served_metadata(choice, runtime, "Depalletize the box", engine, 64 << 20)
    rows, two = [], []
    for h, w in SIZES:
        # the robot side sends the size the metadata names (a checkpoint trained at h x w); the engine resizes
        # to its own on both paths alike
        sized = replace(metadata, cameras={k: (h, w) for k in metadata.cameras})
        base = synthetic_observation(layout)
        obs = replace(base, images={k: cv2.resize(v, (w, h)) for k, v in base.images.items()})
        with ServerThread(PolicyServer(runtime, sized, ServerConfig(port=0, max_frame_bytes=64 << 20))) as served:
            # on a thread of its own, as the server's model thread and the node's worker call it: torch's CPU
            # thread pool is per calling thread, and on a loaded machine the main thread's is much slower
            with ThreadPoolExecutor(1) as worker:
                local, _ = worker.submit(_timed, lambda: runtime.predict(obs, seed=0), cfg.calls, cfg.warmup).result()
            for quality in (0, cfg.jpeg_quality):
                wire = f"JPEG q{quality}" if quality else "raw"
                remote = RemotePolicy(served.url, layout, timeout_s=120.0, jpeg_quality=quality)
                try:
                    total, predictions = _timed(lambda: remote.predict(obs, seed=0), cfg.calls, cfg.warmup)
                finally:
                    remote.close()
                overhead = [p.timings.stages_ms["network"] for p in predictions]
                frame = len(encode_request(obs, seed=0, request_id=1, jpeg_quality=quality))
                rows.append(_row(images=f"3 x {h}x{w}", wire=wire, frame_kb=frame / 1024,
                                 in_process_p50=Stat.of(local).p50, in_process_p99=Stat.of(local).p99,
                                 remote_p50=Stat.of(total).p50, remote_p99=Stat.of(total).p99,
                                 overhead_p50=Stat.of(overhead).p50, overhead_p99=Stat.of(overhead).p99))
                log(str(rows[-1]))
            two.append(_two_robots(served.url, layout, obs, cfg, f"3 x {h}x{w}", log))
    return {"engine": engine, "checkpoint": str(checkpoint), "calls": cfg.calls, "rows": rows, "two_robots": two}


def _two_robots(url: str, layout: Any, obs: Any, cfg: ServerBenchConfig, images: str,
                log: Callable[[str], None]) -> dict[str, Any]:
    """Two clients calling at once, raw frames: the round trip each sees, its overhead and its wait for the model."""
    results: dict[int, list[Any]] = {}

    def robot(i: int) -> None:
        remote = RemotePolicy(url, layout, timeout_s=120.0)
        try:
            results[i] = _timed(lambda: remote.predict(obs, seed=i), cfg.calls, cfg.warmup)
        finally:
            remote.close()

    threads = [threading.Thread(target=robot, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = [ms for i in results for ms in results[i][0]]
    predictions = [p for i in results for p in results[i][1]]
    server = Stat.of([p.timings.stages_ms["server"] for p in predictions])
    overhead = Stat.of([p.timings.stages_ms["network"] for p in predictions])
    row = _row(images=images, wire="raw", remote_p50=Stat.of(total).p50, remote_p99=Stat.of(total).p99,
               overhead_p50=overhead.p50, overhead_p99=overhead.p99, server_p50=server.p50)
    log(f"two robots: {row}")
    return row


def format_server_report(report: dict[str, Any]) -> str:
    lines = [f"policy server round trip on loopback vs in process ({report['engine']}; {report['calls']} calls; ms)",
             "", "| images | wire | frame | in process p50 / p99 | through the server p50 / p99 | overhead p50 / p99 |",
             "|---|---|---|---|---|---|"]
    for r in report["rows"]:
        lines.append(f"| {r['images']} | {r['wire']} | {r['frame_kb']:.0f} kB | {r['in_process_p50']:.1f} / "
                     f"{r['in_process_p99']:.1f} | {r['remote_p50']:.1f} / {r['remote_p99']:.1f} | "
                     f"{r['overhead_p50']:.2f} / {r['overhead_p99']:.2f} |")
    lines += ["", "two robots at once (raw frames; each request waits for the other's model call)", "",
              "| images | round trip p50 / p99 | overhead p50 / p99 | server (queue + model) p50 |", "|---|---|---|---|"]
    for r in report["two_robots"]:
        lines.append(f"| {r['images']} | {r['remote_p50']:.1f} / {r['remote_p99']:.1f} | {r['overhead_p50']:.2f} / "
                     f"{r['overhead_p99']:.2f} | {r['server_p50']:.1f} |")
    return "\n".join(lines)
