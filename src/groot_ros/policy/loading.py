"""The one way the node and the tools get a policy: a checkpoint in, a ChunkPolicy (policy/base.py) out.

Callers see only the interface, so a remote policy or a recording wrapper can be returned here later without
touching them. Today it loads the checkpoint locally (GrootRuntime) and, when asked, turns on our inference path.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from groot_ros.core.layout import Layout
from groot_ros.policy.base import ChunkPolicy


def load_policy(checkpoint: str | Path, layout: Layout, *, base_config: str | Path | None = None,
                eagle_assets: str | Path | None = None, device: str = "cpu", dtype: str = "float32",
                attention: str = "auto", fast: bool = False,
                report: Callable[[str], None] | None = None) -> ChunkPolicy:
    """Validates and loads (CheckpointError lists every problem at once). report: gets one line saying what was
    loaded, where and how it runs (the node logs it)."""
    from groot_ros.policy.runtime import GrootRuntime

    t0 = time.perf_counter()
    runtime = GrootRuntime.load(checkpoint, layout, base_config=base_config, eagle_assets=eagle_assets,
                                device=device, dtype=dtype, attention=attention, fast=fast)
    if report is not None:
        report(f"loaded {checkpoint} in {time.perf_counter() - t0:.1f} s on {runtime.device}/{runtime.dtype} "
               f"({runtime.attention.implementation} attention, {runtime.name} inference path)")
    return runtime
