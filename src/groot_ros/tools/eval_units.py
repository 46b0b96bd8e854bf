"""What both offline scores share (eval-dataset's and the users' one, tools/eval_theirs.py): a dataset frame as
the node would have seen it, and an action error in the unit eval-dataset reports (share of the action range)."""

from __future__ import annotations

from typing import Any

import numpy as np


def to_uint8_hwc(image: Any) -> np.ndarray:
    """LeRobot's float CHW in [0, 1] back to the uint8 RGB HxWx3 frame it was stored from."""
    array = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    return np.clip(np.rint(np.transpose(array, (1, 2, 0)) * 255.0), 0, 255).astype(np.uint8)


def range_mae(err: np.ndarray, span: np.ndarray) -> float | None:
    """Mean over dimensions of MAE / (max - min) of the checkpoint's action statistics (constant dims left out)."""
    live = span > 0
    if not live.any():
        return None
    return float((np.abs(err[:, live]).mean(axis=0) / span[live]).mean())
