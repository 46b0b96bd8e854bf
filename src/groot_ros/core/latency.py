"""Rolling timing statistics for logs and /diagnostics: the last N samples per key, p50/p99/max."""

from __future__ import annotations

import threading
from collections import deque

import numpy as np


class LatencyStats:
    def __init__(self, window: int = 2000):
        self._samples: dict[str, deque[float]] = {}
        self._window = window
        self._lock = threading.Lock()

    def record(self, key: str, seconds: float) -> None:
        with self._lock:
            self._samples.setdefault(key, deque(maxlen=self._window)).append(seconds)

    def percentiles(self, key: str) -> dict[str, float]:
        with self._lock:
            values = np.asarray(self._samples.get(key, ()), dtype=np.float64)
        if values.size == 0:
            return {}
        return {"p50": float(np.percentile(values, 50)), "p99": float(np.percentile(values, 99)),
                "max": float(values.max()), "n": float(values.size)}

    def summary(self) -> dict[str, str]:
        """{"inference_p50_ms": "123.4", ...} for every key recorded so far."""
        out = {}
        with self._lock:
            keys = list(self._samples)
        for key in keys:
            for name, value in self.percentiles(key).items():
                out[f"{key}_{name}" if name == "n" else f"{key}_{name}_ms"] = (
                    f"{int(value)}" if name == "n" else f"{value * 1e3:.2f}")
        return out
