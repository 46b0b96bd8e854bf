"""The one way the node and the tools get a policy: a checkpoint or a policy server in, a ChunkPolicy out.

Callers see only the interface (policy/base.py): a checkpoint loads locally (GrootRuntime), with `fast` through our
inference path, and on a CUDA device with CUDA graphs captured and warmed up here, before the node's first
~start, so the watchdog never sees the capture; a `server` URL gives the RemotePolicy (policy/remote.py), whose
model runs on another machine.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Callable, Mapping

from groot_ros.core.layout import Layout
from groot_ros.core.observation import DEFAULT_TASK
from groot_ros.policy.base import ChunkPolicy

WARMUP_CALLS = 3  # the first call captures the graphs, the next ones replay them (allocations settle)


def load_policy(checkpoint: str | Path | None, layout: Layout, *, base_config: str | Path | None = None,
                eagle_assets: str | Path | None = None, device: str = "cpu", dtype: str = "float32",
                attention: str = "auto", fast: bool = False, task: str = DEFAULT_TASK,
                image_sizes: Mapping[str, tuple[int, int]] | None = None, server: str = "",
                server_timeout_s: float = 0.3, report: Callable[[str], None] | None = None) -> ChunkPolicy:
    """Validates and loads (CheckpointError lists every problem at once). report: gets one line saying what was
    loaded, where and how it runs (the node logs it). task, image_sizes: what the CUDA graphs are captured for
    (the node's task and the sizes it decodes the cameras to). server: ws://host:port of `groot_ros serve`
    (no checkpoint here then); server_timeout_s: how long a reply may take."""
    t0 = time.perf_counter()
    if server:
        from groot_ros.policy.remote import API_KEY_ENV, RemotePolicy

        remote = RemotePolicy(server, layout, timeout_s=server_timeout_s, api_key=os.environ.get(API_KEY_ENV, ""),
                              log=report or (lambda _line: None))
        if report is not None:
            m = remote.metadata
            report(f"policy server {server}: checkpoint {m.checkpoint} (sha256 {m.checkpoint_sha256[:12]}), "
                   f"{m.engine}, groot_ros {m.version}; replies later than {server_timeout_s * 1e3:.0f} ms hold")
        return remote
    from groot_ros.policy.runtime import GrootRuntime

    runtime = GrootRuntime.load(checkpoint, layout, base_config=base_config, eagle_assets=eagle_assets,
                                device=device, dtype=dtype, attention=attention)
    graphs = fast and str(device).startswith("cuda")
    if fast:
        from groot_ros.policy.fast import FastOptions

        runtime.enable_fast_path(FastOptions(cuda_graphs=graphs))
    if graphs:
        t1 = time.perf_counter()
        warm_up(runtime, layout, task, image_sizes or {})
        if report is not None:
            report(f"CUDA graphs captured and warmed up in {time.perf_counter() - t1:.1f} s ({WARMUP_CALLS} calls)")
    if report is not None:
        report(f"loaded {checkpoint} in {time.perf_counter() - t0:.1f} s on {runtime.device}/{runtime.dtype} "
               f"({runtime.attention.implementation} attention, {runtime.name} inference path"
               f"{' with CUDA graphs' if graphs else ''})")
    return runtime


def warm_up(policy: ChunkPolicy, layout: Layout, task: str, image_sizes: Mapping[str, tuple[int, int]],
            calls: int = WARMUP_CALLS) -> None:
    """A few calls on a synthetic observation with the task and image sizes the real ones will have: CUDA graphs
    are captured per task and image shape, so the first real chunk replays instead of capturing."""
    import cv2

    from groot_ros.policy.tiny import synthetic_observation

    obs = synthetic_observation(layout, task=task)
    images = {k: cv2.resize(img, image_sizes[k][::-1]) if k in image_sizes else img for k, img in obs.images.items()}
    obs = dataclasses.replace(obs, images=images)
    for _ in range(calls):
        policy.predict(obs, seed=None)
