"""LeRobot's own inference path as an engine: its preprocessor pipeline and GrootPolicy.predict_action_chunk.

The reference every speed-up is checked against (bench-policy times this engine). The only thing added is the
full-chunk de-normalization
(LeRobot's postprocessor keeps only the last row) and the seed handling: an unseeded call draws fresh noise from
the global generator, as LeRobot does; a seeded call runs in a forked generator so it repeats exactly and leaves
the global random state as it was.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

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


@contextlib.contextmanager
def model_stage_marks(policy: Any, clock: StageClock) -> Iterator[None]:
    """Marks the backbone and the action head inside an unmodified predict_action_chunk (instance wrappers only,
    removed afterwards); the code between them is charged to "other"."""
    model = policy._groot_model
    backbone_forward, get_action = model.backbone.forward, model.action_head.get_action

    def timed(fn: Callable[..., Any], stage: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            clock.mark("other")
            out = fn(*args, **kwargs)
            clock.mark(stage)
            return out
        return call

    model.backbone.forward = timed(backbone_forward, "backbone")
    model.action_head.get_action = timed(get_action, "action_head")
    try:
        yield
    finally:
        del model.backbone.forward, model.action_head.get_action


class StockEngine(ChunkPolicy):
    name = "stock LeRobot"

    def __init__(self, checkpoint: Any):
        self.checkpoint = checkpoint  # a policy.runtime.LoadedCheckpoint

    @property
    def expects(self) -> PolicyInputs:
        return self.checkpoint.expects

    def predict(self, obs: Observation, seed: int | None = None, clock: StageClock | None = None) -> Prediction:
        """`clock`: one whose marks synchronise the device, for the bench's stage split (default: plain)."""
        ck = self.checkpoint
        ck.check_observation(obs)
        clock = clock or StageClock()
        batch = ck.preprocessor(ck.batch_for(obs))
        clock.mark("preprocess")
        with seeded(seed, ck.device), model_stage_marks(ck.policy, clock):
            normalized = ck.policy.predict_action_chunk(batch)[0].float().cpu().numpy()
        chunk = ck.stats.action.denormalize(normalized)
        clock.mark("denormalize")
        return Prediction(normalized=normalized, chunk=chunk, timings=clock.timings())
