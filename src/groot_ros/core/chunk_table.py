"""Human-readable rendering of an action chunk: one row per action dimension, with its unit."""

from __future__ import annotations

import numpy as np

from groot_ros.core.layout import Layout


def format_chunk(chunk: np.ndarray, layout: Layout, max_steps: int = 16) -> str:
    steps = min(chunk.shape[0], max_steps)
    units = [u for c in layout.action for u in c.units]
    names = layout.action_names
    width = max(len(n) for n in names) + 2
    header = f"{'dimension':<{width}}{'unit':<8}" + "".join(f"{f't{i}':>9}" for i in range(steps))
    lines = [header, "-" * len(header)]
    for d, (name, unit) in enumerate(zip(names, units)):
        lines.append(f"{name:<{width}}{unit:<8}" + "".join(f"{chunk[i, d]:9.3f}" for i in range(steps)))
    return "\n".join(lines)
