"""`python -m groot_ros bench-node` end to end: its own master, the stand-in and the node, read through ~status."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def test_bench_node_reports_the_nodes_own_figures(tiny_checkpoint, tmp_path):
    out = tmp_path / "bench.json"
    env = {k: v for k, v in os.environ.items() if k != "ROS_MASTER_URI"}  # it starts a master of its own
    done = subprocess.run([sys.executable, "-m", "groot_ros", "bench-node", "--checkpoint",
                           str(tiny_checkpoint.pretrained_model), "--seconds", "3", "--modes", "async",
                           "--image-size", "120", "160", "--json", str(out)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run = json.loads(out.read_text())["runs"][0]
    assert run["mode"] == "async"
    for key in ("control_period_p50_ms", "observation_build_p50_ms", "inference_p50_ms"):
        assert math.isfinite(run[key]) and run[key] > 0, (key, run)
    assert run["stall_ticks"] >= 0 and run["missed_ticks"] >= 0
    assert "missed control ticks" in done.stdout
