"""RTC's extra time per chunk (docs/rtc.md): the same checkpoint, observation and 13-row prefix, each engine without
a prefix, with the guided method and with GR00T's prefix method, calls interleaved and unseeded (as the node calls
them), 1 torch thread, p50 over 50 calls after 10 of warm-up.

    scripts/in-env python scripts/measure_rtc_overhead.py artifacts/demo/3_training/run/checkpoints/last/pretrained_model
"""
import sys

import numpy as np
import torch

from groot_ros.core.layout import load_layout
from groot_ros.core.prefix import ChunkPrefix
from groot_ros.policy.rtc import RtcOptions
from groot_ros.policy.runtime import GrootRuntime
from groot_ros.policy.tiny import synthetic_observation
torch.set_num_threads(1)
ck = sys.argv[1]
layout = load_layout("depalletize", robot="4_pro", topics="sim")
obs = synthetic_observation(layout)
for fast in (False, True):
    rt = GrootRuntime.load(ck, layout, fast=fast)
    prefix = ChunkPrefix(rt.predict_chunk(obs, seed=1)[3:].astype(np.float32), 3)
    modes = {"no prefix": (None, None), "rtc guided": (prefix, "guided"), "rtc prefix": (prefix, "prefix")}
    samples = {m: {"total": [], "action_head": []} for m in modes}
    for i in range(60):
        for m, (p, method) in modes.items():
            if method:
                rt.rtc = RtcOptions(method=method)
            t = rt.predict(obs, prefix=p).timings
            if i >= 10:
                samples[m]["total"].append(t.total_ms)
                samples[m]["action_head"].append(t.stages_ms["action_head"])
    for m in modes:
        s = samples[m]
        print(f"{rt.name:16s} {m:10s} end to end p50 {np.median(s['total']):6.2f} ms, action head p50 "
              f"{np.median(s['action_head']):6.2f} ms (p90 {np.percentile(s['action_head'], 90):6.2f})")
