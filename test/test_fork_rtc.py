"""Our users' fork's RTC (dev c497b6f) against ours, from numbers their code produced (test/fixtures/fork_rtc/,
written by scripts/make_fork_rtc_fixture.py; these tests never need the fork). docs/rtc.md explains.

1. As their eval/eval.py runs it, the prefix never reaches the denoising loop (their GR00TN15.get_action drops the
   keywords; the model's config has no RTC; init_rtc_processor gives the action head no processor): the chunk
   is the one without a prefix, bit for bit.
2. Wired through, their loop hands LeRobot's RTC module GR00T's integer timestep buckets (0, 250, 500, 750) where
   it expects a time in [0, 1] running from 1 (noise) to 0: guidance weights 0, -2, -2, -2 (negative: pushed
   away from the prefix), and x1 = x - 250 v: the chunk blows up, the frozen rows far from the prefix.
3. Ours on the same checkpoint, observation, prefix and noise: the frozen rows are the prefix's.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from groot_ros.core.prefix import ChunkPrefix
from groot_ros.policy.rtc import RtcOptions, guidance_weight

from test_fork_heads import fixture_cases, load

FIXTURE = Path(__file__).parent / "fixtures" / "fork_rtc"
SOURCE = json.loads((FIXTURE / "SOURCE.json").read_text())
CHUNKS = np.load(FIXTURE / "chunks.npz")


def test_fixture_names_the_fork_commit():
    assert SOURCE["fork"] == "KKXiaoKang/humanoid_groot" and SOURCE["branch"] == "dev"
    assert SOURCE["commit"].startswith("c497b6f")


def test_as_their_eval_runs_it_the_prefix_changes_nothing():
    assert SOURCE["as_run"] == {"model_rtc_enabled": False, "action_head_has_rtc_processor": False}
    np.testing.assert_array_equal(CHUNKS["as_run"], CHUNKS["plain"])
    # ... and it is the chunk groot_ros predicts without a prefix (same checkpoint, observation, noise seed).
    runtime = load("dev_shared_xattn")
    obs = fixture_cases("dev_shared_xattn")[1][0][0]
    np.testing.assert_allclose(runtime.predict(obs, seed=SOURCE["noise_seed"]).normalized, CHUNKS["plain"],
                               atol=1e-6, rtol=0)


def test_wired_through_their_time_convention_gives_weights_0_minus2_minus2_minus2():
    times = [s["time"] for s in SOURCE["wired_steps"]]
    weights = [s["guidance_weight"] for s in SOURCE["wired_steps"]]
    assert times == [0.0, 250.0, 500.0, 750.0]  # GR00T's timestep buckets, not a time in [0, 1]
    np.testing.assert_allclose(weights, [0.0, -2.0, -2.0, -2.0], atol=1e-4)
    # LeRobot 0.4.2's RTC module (the one their branch carries, unchanged) gives the same for those times ...
    from lerobot.configs.types import RTCAttentionSchedule
    from lerobot.policies.rtc.configuration_rtc import RTCConfig
    from lerobot.policies.rtc.modeling_rtc import RTCProcessor

    lerobot = RTCProcessor(RTCConfig(max_guidance_weight=1.0, prefix_attention_schedule=RTCAttentionSchedule.EXP,
                                     execution_horizon=16, debug=True))
    x = torch.zeros(1, 16, 32)
    for t in times:
        lerobot.denoise_step(x, torch.zeros(1, 13, 16), SOURCE["inference_delay"], t, lambda a: a * 0 + 1.0)
    np.testing.assert_allclose([float(s.guidance_weight) for s in lerobot.get_all_debug_steps()], weights, atol=1e-4)
    # ... and the time it expects, 1 - t for GR00T's t = i / 4, gives the capped weight at every step.
    assert [guidance_weight(i / 4, 1.0) for i in range(4)] == [1.0, 1.0, 1.0, 1.0]
    wired, prefix = CHUNKS["wired"], CHUNKS["prefix"]
    d = SOURCE["inference_delay"]
    assert np.abs(wired[:d] - prefix[:d]).max() > 10.0  # pushed away, far outside the [-1, 1] action range


def test_ours_on_the_same_prefix_and_noise_keeps_the_frozen_rows():
    runtime = load("dev_shared_xattn")
    obs = fixture_cases("dev_shared_xattn")[1][0][0]
    d = SOURCE["inference_delay"]
    prefix = ChunkPrefix(runtime.stats.action.denormalize(CHUNKS["prefix"]).astype(np.float32), d)
    for method in ("guided", "prefix"):
        runtime.rtc = RtcOptions(method=method, max_guidance_weight=1.0)
        ours = runtime.predict(obs, seed=SOURCE["noise_seed"], prefix=prefix)
        np.testing.assert_array_equal(ours.chunk[:d], prefix.actions[:d])
        # stays within the range of the chunks it lies between, unlike the wired fork's
        assert np.abs(ours.normalized).max() <= max(np.abs(CHUNKS["plain"]).max(), np.abs(CHUNKS["prefix"]).max())
