"""The closed loop without ROS (demo/sim_loop.py): the stand-in's core, the node's execution core and a real
policy in simulated time. A cell repeats exactly with a seed, whatever the machine's load; with blend rtc the
policy gets the plan under way with the injected latency's delay rows, and the boundary shrinks."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from groot_ros.demo.sim_loop import LoopConfig, apply_method, blend_settings, run_boxes, summarize, unseen_boxes
from groot_ros.execution.config import load_execution_settings
from groot_ros.policy.runtime import GrootRuntime
from groot_ros.sim.standin_model import load_sim_config


class Recording:
    """The runtime, with every prefix it was handed kept."""

    def __init__(self, runtime):
        self.runtime, self.prefixes = runtime, []

    @property
    def rtc(self):
        return self.runtime.rtc

    @rtc.setter
    def rtc(self, options):
        self.runtime.rtc = options

    def predict_chunk(self, obs, seed=None, prefix=None):
        self.prefixes.append(prefix)
        return self.runtime.predict_chunk(obs, seed, prefix)


@pytest.fixture(scope="module")
def policy(tiny_checkpoint, depalletize_layout):
    return Recording(GrootRuntime.load(tiny_checkpoint.pretrained_model, depalletize_layout, fast=True))


def _cell(policy, layout, blend, latency_s=0.3):
    apply_method(policy, blend)
    policy.prefixes.clear()
    settings = blend_settings(load_execution_settings(), blend)
    cfg = LoopConfig(latency_s=latency_s, seconds=2.5, seed=5)
    return run_boxes(policy, layout, settings, load_sim_config(), unseen_boxes(1), cfg)


def test_a_seeded_cell_repeats_exactly_in_simulated_time(policy, depalletize_layout):
    a, b = _cell(policy, depalletize_layout, "crossfade"), _cell(policy, depalletize_layout, "crossfade")
    assert a[0].chunks >= 3 and a[0].boundary_steps
    assert dataclasses.replace(a[0], model_s=[]) == dataclasses.replace(b[0], model_s=[])
    assert all(p is None for p in policy.prefixes)  # other blends hand no prefix


def test_rtc_hands_the_plan_with_the_latency_in_delay_rows_and_shrinks_the_boundary(policy, depalletize_layout):
    none = summarize("none", 0.3, _cell(policy, depalletize_layout, "none"))
    rtc = _cell(policy, depalletize_layout, "rtc")
    prefixes = policy.prefixes
    assert prefixes[0] is None and len(prefixes) >= 3
    assert all(p.delay_steps == 3 for p in prefixes[1:])  # 300 ms measured with the first chunk, 0.1 s steps
    assert summarize("rtc", 0.3, rtc).boundary_max < none.boundary_max
    assert np.isfinite(rtc[0].largest_tick_step)
