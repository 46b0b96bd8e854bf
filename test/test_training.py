"""Training wrapper, and the offline round trip: the recorded demonstration bags (test/bags, real Kuavo topics)
-> bag2lerobot -> tiny training (+ resume through scripts/train_groot.sh) -> the checkpoint loads in the
runtime -> eval-dataset --ablations all."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
BAGS = REPO / "test" / "bags"  # scripts/record_test_bags.sh


def _options(tmp_path, **kw):
    from groot_ros.tools.training import TrainOptions

    return TrainOptions(dataset_root=tmp_path / "ds", output_dir=tmp_path / "run", **kw)


def test_lerobot_arguments_carry_the_seed_defaults_and_stay_offline(tmp_path, depalletize_layout):
    from groot_ros.tools.training import command_line, launch_command, lerobot_args

    args = lerobot_args(_options(tmp_path, device="cpu", base_model=str(tmp_path)), depalletize_layout)
    for flag in ["--batch_size=8", "--steps=40000", "--save_freq=4000", "--wandb.enable=false",
                 "--policy.push_to_hub=false", "--policy.type=groot", "--policy.use_bf16=false",
                 f"--policy.base_model_path={tmp_path.resolve()}", f"--dataset.root={(tmp_path / 'ds').resolve()}",
                 "--policy.chunk_size=16", "--policy.embodiment_tag=new_embodiment"]:
        assert flag in args
    resume = lerobot_args(_options(tmp_path, resume=True, steps=50_000, base_model=str(tmp_path)), depalletize_layout)
    assert resume[:2] == [f"--config_path={(tmp_path / 'run').resolve()}/checkpoints/last/pretrained_model/"
                          "train_config.json", "--resume=true"] and "--steps=50000" in resume
    # the saved train_config.json names no path of this machine: a resume gives them again
    for flag in [f"--output_dir={(tmp_path / 'run').resolve()}", f"--dataset.root={(tmp_path / 'ds').resolve()}",
                 f"--policy.base_model_path={tmp_path.resolve()}"]:
        assert flag in resume
    multi = command_line(launch_command(_options(tmp_path, num_gpus=4, device="cuda"), depalletize_layout))
    assert multi.startswith("accelerate launch --multi_gpu --num_processes=4 -m groot_ros.tools.training --dataset.repo_id")
    assert "--policy.use_bf16=true" in multi


def test_bad_runs_are_refused_before_lerobot_starts(tmp_path, depalletize_layout):
    from groot_ros.tools.training import TrainingError, check_options

    with pytest.raises(TrainingError, match="train without resume first"):
        check_options(_options(tmp_path, resume=True), depalletize_layout)
    (tmp_path / "run").mkdir()
    with pytest.raises(TrainingError, match=r"already exists: resume it[\s\S]*not a LeRobot dataset"):
        check_options(_options(tmp_path), depalletize_layout)


@pytest.mark.slow
def test_round_trip_bags_dataset_training_resume_eval(tmp_path, depalletize_layout, capsys):
    from groot_ros.cli import main
    from groot_ros.policy.runtime import GrootRuntime

    ds, run = tmp_path / "ds", tmp_path / "run"
    assert main(["bag2lerobot", str(BAGS), "--out", str(ds), "--topics", "real",
                 "--task-map", str(BAGS / "tasks.json")]) == 0
    converted = re.search(r"2 episodes, (\d+) frames at 10 fps", capsys.readouterr().out)
    frames = int(converted.group(1))
    assert 220 <= frames <= 250  # two 12 s episodes at 10 fps, minus the topics' start-up

    small = ["--batch-size", "2", "--save-freq", "3", "--log-freq", "2", "--num-workers", "0", "--device", "cpu"]
    assert main(["train", "--tiny-base-model", str(tmp_path / "tiny"), "--dataset-root", str(ds),
                 "--output-dir", str(run), "--steps", "6", *small]) == 0
    printed = capsys.readouterr().out
    assert "[train] " in printed and "--policy.type=groot" in printed and "--steps=6" in printed
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["000003", "000006", "last"]

    env = dict(os.environ, RESUME="true", STEPS="10", OUTPUT_DIR=str(run), BATCH_SIZE="2", SAVE_FREQ="3",
               LOG_FREQ="2", NUM_WORKERS="0", DEVICE="cpu", BASE_MODEL=str(tmp_path / "tiny" / "base_model"),
               EAGLE_ASSETS=str(tmp_path / "tiny" / "eagle_assets"))  # the checkpoint names neither: given again
    done = subprocess.run([str(REPO / "scripts" / "train_groot.sh")], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "[train] " in done.stdout and "--resume=true" in done.stdout and "--steps=10" in done.stdout
    last = (run / "checkpoints" / "last").resolve()
    assert last.name == "000010"
    assert json.loads((last / "training_state" / "training_step.json").read_text())["step"] == 10

    checkpoint = last / "pretrained_model"
    config = json.loads((checkpoint / "config.json").read_text())
    assert config["base_model_path"] == "nvidia/GR00T-N1.5-3B"  # the local base's config is beside it instead
    assert json.loads((checkpoint / "train_config.json").read_text())["dataset"]["root"] == "../ds"
    runtime = GrootRuntime.load(checkpoint, depalletize_layout)
    assert runtime.base_config == checkpoint.parent / "base_model" / "config.json"
    assert runtime.info.chunk_size == 16 and runtime.stats.action.dim == 18

    out = tmp_path / "eval"
    assert main(["eval-dataset", "--checkpoint", str(checkpoint), "--dataset-root", str(ds), "--episode", "all",
                 "--action-chunk-size", "8", "--ablations", "all", "--out", str(out)]) == 0
    summary = capsys.readouterr().out
    assert "state-zero" in summary and "image-zero" in summary and "metrics:" in summary
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["episodes"] == [0, 1] and metrics["variants"] == ["normal", "state-zero", "image-zero"]
    for variant in metrics["variants"]:
        overall = metrics["results"][variant]["overall"]
        assert overall["frames"] == frames and 0 < overall["range_mae"] < 5
        assert all(np.isfinite(d["max"]) for d in overall["dimensions"].values())
    pngs = sorted(p.name for p in (out / "plots").glob("*.png"))
    assert len(pngs) == 2 * len(depalletize_layout.action) and (out / "ablation.png").stat().st_size > 5000


@pytest.mark.slow
def test_tiny_training_beats_the_untrained_model_on_a_held_out_episode(tmp_path, depalletize_layout):
    """The demo's claim, small: with demo_train_options the tiny model learns actions that follow from the
    observation (synthetic bags) and at least halves the untrained model's error on an unseen episode. Fails if
    the tiny base model loses its fan-in init or the learning rate falls back to GR00T's 1e-4 (docs/tiny_training.md)."""
    from groot_ros.testing.bags import write_bags

    from groot_ros.cli import main
    from groot_ros.tools.eval_dataset import EvalOptions, evaluate
    from groot_ros.policy.runtime import GrootRuntime
    from groot_ros.tools.training import demo_train_options, make_tiny_base_model, train, untrained_runtime

    bags = write_bags(tmp_path / "bags", depalletize_layout, count=5, seconds=6.0)
    for name, part in (("train", bags[:-1]), ("held_out", bags[-1:])):
        assert main(["bag2lerobot", *map(str, part), "--out", str(tmp_path / name), "--task", "Depalletize."]) == 0
    base = make_tiny_base_model(tmp_path / "tiny")
    train(demo_train_options(tmp_path / "train", tmp_path / "run", base, steps=1200), depalletize_layout)

    checkpoint = tmp_path / "run" / "checkpoints" / "last" / "pretrained_model"
    options = EvalOptions(episodes=(0,), plots=False)
    error = {name: evaluate(runtime, tmp_path / "held_out", tmp_path / name, options, progress=False)
             .metrics["results"]["normal"]["overall"]["range_mae"]
             for name, runtime in (("trained", GrootRuntime.load(checkpoint, depalletize_layout)),
                                   ("untrained", untrained_runtime(checkpoint, depalletize_layout,
                                                                   base_model=base.base_model)))}
    assert error["trained"] < 0.5 * error["untrained"], error


@pytest.mark.parametrize("steps", [1500, 2500, 1200, 3000, 7])
def test_the_demo_runs_last_loss_line_is_its_final_step(tmp_path, steps):
    """LeRobot logs the loss every log_freq steps: the demo's loss curve ends at the true final step only if
    log_freq divides the step count (2500 steps with log_freq 83 ended at 2490)."""
    from groot_ros.policy.tiny import TinyCheckpoint
    from groot_ros.tools.training import demo_train_options

    options = demo_train_options(tmp_path / "data", tmp_path / "run", TinyCheckpoint(tmp_path / "base"), steps=steps)
    assert steps % options.log_freq == 0 and (steps < 30 or 15 <= steps // options.log_freq <= 60)
