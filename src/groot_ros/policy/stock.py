"""LeRobot's own inference path as an engine: its preprocessor pipeline and GrootPolicy.predict_action_chunk.

The reference every speed-up is checked against. The only thing added is the full-chunk de-normalization
(LeRobot's postprocessor keeps only the last row) and the seed handling: an unseeded call draws fresh noise from
the global generator, as LeRobot does; a seeded call runs in a forked generator so it repeats exactly and leaves
the global random state as it was.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

from groot_ros.core.observation import Observation
from groot_ros.policy.base import ChunkPolicy, PolicyInputs, Prediction, StageClock


@contextlib.contextmanager
def seeded(seed: int | None, device: str) -> Iterator[None]:
    """Fresh noise without a seed; with one, the same noise every time, the global generator untouched."""
    if seed is None:
        yield
        return
    import torch

    with torch.random.fork_rng(devices=[torch.device(device)] if device.startswith("cuda") else []):
        torch.manual_seed(seed)
        yield


class StockEngine(ChunkPolicy):
    name = "stock LeRobot"

    def __init__(self, runtime: Any):
        self.runtime = runtime  # a loaded GrootRuntime (policy, preprocessor, stats); it owns this engine

    @property
    def expects(self) -> PolicyInputs:
        return self.runtime.expects

    def predict(self, obs: Observation, seed: int | None = None) -> Prediction:
        rt = self.runtime
        rt.check_observation(obs)
        clock = StageClock()
        batch = rt.preprocessor(rt.batch_for(obs))
        clock.mark("preprocess")
        with seeded(seed, rt.device):
            normalized = rt.policy.predict_action_chunk(batch)[0].float().cpu().numpy()
        clock.mark("action_head")
        chunk = rt.stats.action.denormalize(normalized)
        clock.mark("denormalize")
        self.last_timings = clock.timings()
        return Prediction(normalized=normalized, chunk=chunk)
