"""A shortened `make demo`: every stage runs for real, its outputs exist, and trained beats untrained."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def run_demo(root):
    """As `make demo` runs it (a process of its own: it starts its own ROS master), with fewer episodes."""
    out = subprocess.run([sys.executable, "-m", "groot_ros", "demo", "--out", str(root), "--episodes", "5",
                          "--episode-seconds", "10", "--train-steps", "1200", "--closed-loop-seconds", "6"],
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


def test_demo_pipeline_short(tmp_path):
    root = tmp_path / "demo"
    first = run_demo(root)
    index = root / "report" / "index.md"
    assert f"[demo] report: {index}" in first
    assert len(list((root / "1_recordings").glob("episode_*.bag"))) == 5
    summary = json.loads((root / "2_dataset" / "summary.json").read_text())
    assert len(summary["train"]) == 4 and len(summary["held_out"]) == 1
    assert all(e["frames"] > 50 and e["skipped"] is None for e in summary["train"] + summary["held_out"])
    assert (root / "3_training" / "run" / "checkpoints" / "last" / "pretrained_model" / "model.safetensors").exists()
    losses = json.loads((root / "3_training" / "loss.json").read_text())
    assert len(losses) >= 5 and losses[-1][1] < 0.6 * losses[0][1], losses
    result = json.loads((root / "report" / "summary.json").read_text())
    assert result["untrained_over_trained"] > 2.0, result  # several times lower error on the held-out episode
    assert (root / "5_closed_loop" / "closed_loop.bag").stat().st_size > 10_000
    text = index.read_text()
    for figure in ("training_loss.png", "closed_loop.png", "eval_ablation.png", "eval_episode_000_Left_arm.png"):
        assert (index.parent / figure).exists() and f"({figure})" in text
    assert "Range of motion commanded in closed loop" in text and "stall_ticks" in text

    # A second run with nothing changed redoes nothing and says so.
    again = run_demo(root)
    assert again.count(": cached (") == 5 and "cached" in index.read_text()
