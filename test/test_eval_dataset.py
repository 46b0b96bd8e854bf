"""eval-dataset: same runtime as the node, open-loop chunks of K rows, metrics, ablations, figures."""

from __future__ import annotations

import json

import numpy as np
import pytest

from groot_ros.testing.bags import write_bags

K = 8


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory, depalletize_layout):
    from groot_ros.tools.bag2lerobot import ConvertOptions, convert

    folder = tmp_path_factory.mktemp("bags")
    write_bags(folder, depalletize_layout, count=2, seconds=2.5)
    root = tmp_path_factory.mktemp("datasets") / "kuavo"
    convert([folder], root, depalletize_layout, ConvertOptions(task="Depalletize the boxes."), progress=False)
    return root


@pytest.fixture(scope="module")
def result(tmp_path_factory, tiny_runtime, dataset_root):
    from groot_ros.tools.eval_dataset import VARIANTS, EvalOptions, evaluate

    out = tmp_path_factory.mktemp("eval")
    return evaluate(tiny_runtime, dataset_root, out,
                    EvalOptions(episodes=None, action_chunk_size=K, variants=VARIANTS), progress=False)


def test_writes_metrics_per_dimension_component_episode_and_overall(result, depalletize_layout):
    metrics = json.loads((result.out_dir / "metrics.json").read_text())
    assert metrics["variants"] == ["normal", "state-zero", "image-zero"] and metrics["episodes"] == [0, 1]
    assert metrics["baselines"] == ["hold"]
    assert metrics["units"]["Left_arm_0"] == "rad" and metrics["units"]["Left_claw"] == "0..100"
    for variant in metrics["variants"] + metrics["baselines"]:
        res = metrics["results"][variant]
        for scope in [res["overall"], *res["episodes"].values()]:
            assert list(scope["dimensions"]) == depalletize_layout.action_names
            assert list(scope["components"]) == [c.name for c in depalletize_layout.action]
            for stats in [*scope["dimensions"].values(), *scope["components"].values()]:
                assert 0 <= stats["mae"] <= stats["rmse"] <= stats["max"] and np.isfinite(stats["max"])
        assert set(res["episodes"]) == {"0", "1"}
        assert res["overall"]["frames"] == sum(e["frames"] for e in res["episodes"].values())
    # Cmd_pose_pitch never moved in the recordings, and the checkpoint's stats say max == min for Right_claw:
    # de-normalization gives exactly min there, and range_mae leaves constant dimensions out.
    assert metrics["ablation_range_mae"]["normal"]["all"] > 0


def test_figures_and_ablation_table(result, depalletize_layout):
    names = {p.name for p in result.figures}
    for episode in (0, 1):
        for comp in depalletize_layout.action:
            assert f"episode_{episode:03d}_{comp.name}.png" in names
    assert "ablation.png" in names and "chunk_rows.png" in names
    for path in result.figures:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
    table = (result.out_dir / "ablation.txt").read_text()
    for token in ["normal", "state-zero", "image-zero", "hold", "Left_arm", "Cmd_pose_pitch", "% range",
                  "relative to normal", "holding the current state"]:
        assert token in table
    rows = (result.out_dir / "chunk_rows.txt").read_text().splitlines()
    assert rows[0].split() == ["row", "normal", "state-zero", "image-zero", "hold"] and len(rows) == 1 + 16


def test_hold_baseline_commands_the_measured_state_for_every_row(result, dataset_root, depalletize_layout):
    """hold = the action that keeps the robot where it is at each chunk start, for the whole chunk."""
    from groot_ros.tools.eval_dataset import open_dataset

    ds = open_dataset(dataset_root)
    hold = next(r for r in result.rollouts if r.episode == 1 and r.variant == "hold")
    start = int(ds.meta.episodes[1]["dataset_from_index"])
    arms = depalletize_layout.action_slices()["Left_arm"]
    for n, t in enumerate(hold.chunk_starts):
        state = np.asarray(ds[start + t]["observation.state"])
        assert np.all(hold.chunks[n] == hold.chunks[n][0])  # the same row, repeated
        np.testing.assert_allclose(hold.chunks[n][0][arms], state[:7])  # J_q's left arm = Left_arm
        np.testing.assert_allclose(hold.predicted[t:t + K], hold.chunks[n][:min(K, len(hold.truth) - t)])


def test_per_row_errors_and_verdict():
    """Row r of every chunk is scored against frame start + r; the verdict says plainly who beats holding."""
    from groot_ros.tools.eval_dataset import Rollout, per_row_range_mae, verdict

    truth = np.arange(10.0)[:, None]  # one dimension moving 1 per frame
    chunks = np.stack([np.full((4, 1), float(t)) for t in (0, 4, 8)])  # every chunk holds its start value
    r = Rollout(episode=0, variant="hold", predicted=truth, truth=truth, chunk_starts=(0, 4, 8), chunks=chunks)
    assert per_row_range_mae([r], np.array([10.0])) == pytest.approx([0.0, 0.1, 0.2, 0.3])
    comp = lambda x: {"overall": {"range_mae": x, "components": {"Left_arm": {"range_mae": x}}}}  # noqa: E731
    assert verdict({"results": {"normal": comp(0.2), "hold": comp(0.1)}}).startswith(
        "the model does NOT beat holding the current state: 20.0 % vs 10.0 %")
    assert verdict({"results": {"normal": comp(0.05), "hold": comp(0.1), "untrained": comp(0.5)}}) == (
        "the model beats holding the current state: 5.0 % vs 10.0 % of the action range (2.0x lower); "
        "untrained 50.0 %")


def test_chunks_are_the_runtimes_k_rows_with_the_same_seed_in_every_variant(result, tiny_runtime, dataset_root):
    """What eval-dataset scores is exactly what the node would execute: runtime.predict_chunk rows 0..K-1."""
    from groot_ros.tools.eval_dataset import observation_at, open_dataset

    ds = open_dataset(dataset_root)
    normal = next(r for r in result.rollouts if r.episode == 1 and r.variant == "normal")
    assert normal.chunk_starts == tuple(range(0, normal.truth.shape[0], K))
    start = int(ds.meta.episodes[1]["dataset_from_index"])
    state_zero = tiny_runtime.stats.state.denormalize(np.zeros(tiny_runtime.stats.state.dim))
    for n, t in enumerate(normal.chunk_starts[:2]):
        obs = observation_at(ds, start + t, "normal", state_zero, tiny_runtime.info.camera_keys, None)
        chunk = tiny_runtime.predict_chunk(obs, seed=0 + 7919 * 1 + n)
        np.testing.assert_allclose(normal.predicted[t:t + K], chunk[:K])
    truth = np.stack([np.asarray(ds[start + i]["action"]) for i in range(normal.truth.shape[0])])
    np.testing.assert_allclose(normal.truth, truth)


def test_ablation_inputs(tiny_runtime, dataset_root):
    from groot_ros.tools.eval_dataset import observation_at, open_dataset

    ds = open_dataset(dataset_root)
    state_zero = tiny_runtime.stats.state.denormalize(np.zeros(tiny_runtime.stats.state.dim))
    keys = tiny_runtime.info.camera_keys
    normal = observation_at(ds, 3, "normal", state_zero, keys, None)
    no_state = observation_at(ds, 3, "state-zero", state_zero, keys, None)
    no_image = observation_at(ds, 3, "image-zero", state_zero, keys, "another task")
    np.testing.assert_allclose(tiny_runtime.stats.state.normalize(no_state.state), 0.0, atol=1e-12)
    assert all(np.array_equal(no_state.images[k], normal.images[k]) for k in keys)
    assert all(not img.any() for img in no_image.images.values()) and no_image.task == "another task"
    np.testing.assert_array_equal(no_image.state, normal.state)
    assert normal.task == "Depalletize the boxes." and normal.images[keys[0]].dtype == np.uint8


def test_error_statistics():
    from groot_ros.tools.eval_dataset import error_stats
    from groot_ros.tools.eval_units import range_mae

    err = np.array([[1.0, -2.0], [-3.0, 0.0]])
    assert error_stats(err) == pytest.approx({"mae": 1.5, "rmse": np.sqrt(3.5), "max": 3.0})
    assert range_mae(err, np.array([4.0, 0.0])) == pytest.approx(0.5)  # the constant dimension is left out
    assert range_mae(err, np.array([0.0, 0.0])) is None


def test_bad_requests_are_clear_errors(tmp_path, tiny_runtime, dataset_root):
    from groot_ros.tools.eval_dataset import EvalError, EvalOptions, evaluate

    with pytest.raises(EvalError, match=r"--action-chunk-size must be 1\.\.16"):
        evaluate(tiny_runtime, dataset_root, tmp_path, EvalOptions(action_chunk_size=20), progress=False)
    with pytest.raises(EvalError, match=r"episodes \[7\] do not exist: the dataset has episodes 0\.\.1"):
        evaluate(tiny_runtime, dataset_root, tmp_path, EvalOptions(episodes=(7,)), progress=False)
    old = tmp_path / "old"
    (old / "meta").mkdir(parents=True)
    (old / "meta" / "info.json").write_text(json.dumps({"codebase_version": "v2.1"}))
    with pytest.raises(EvalError, match="convert-v21"):
        evaluate(tiny_runtime, old, tmp_path, EvalOptions(), progress=False)


def test_dataset_that_does_not_fit_the_layout(dataset_root):
    from groot_ros.tools.eval_dataset import dataset_problems, open_dataset
    from groot_ros.core.layout import load_layout

    meta = open_dataset(dataset_root).meta
    problems = dataset_problems(load_layout("arms_claws", "4_pro", "sim"), meta.features, meta.camera_keys)
    assert any("state dim: dataset 18" in p for p in problems) and any("action dim: dataset 18" in p for p in problems)


def test_their_metric_last_row_their_stats_no_task_and_a_perfect_predictors_floor(tmp_path, tiny_runtime,
                                                                                  dataset_root, capsys):
    from groot_ros.cli import main
    from groot_ros.tools.eval_dataset import observation_at, open_dataset
    from groot_ros.tools.eval_theirs import last_row_rollout, perfect_rows

    class Quiet:
        def update(self, n):
            pass

    dataset = open_dataset(dataset_root)
    truth = np.stack([np.asarray(dataset[t]["action"], np.float64) for t in range(5)])
    # with the checkpoint's own statistics in the dataset, their row is the runtime's last row for the raw state
    # and no task (LeRobot's "Perform the task.")
    ck = tiny_runtime.stats
    dataset.meta.stats = {"observation.state": {"min": ck.state.min, "max": ck.state.max},
                          "action": {"min": ck.action.min, "max": ck.action.max}}
    rows = last_row_rollout(tiny_runtime, dataset, 0, 2, "normal", 0, Quiet())
    obs = observation_at(dataset, 1, "normal", None, tiny_runtime.info.camera_keys, "Perform the task.")
    np.testing.assert_allclose(rows[1], tiny_runtime.predict_chunk(obs, seed=1)[-1], atol=1e-5)
    assert np.array_equal(perfect_rows(truth, 16), truth[[4, 4, 4, 4, 4]])

    out = tmp_path / "eval"
    assert main(["eval-dataset", "--checkpoint", str(tiny_runtime.info.path), "--dataset-root", str(dataset_root),
                 "--max-frames", "20", "--state-zero", "--metric", "humanoid_groot", "--no-plots",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "humanoid_groot's eval_on_dataset.py score" in printed and "perfect" in printed
    theirs = json.loads((out / "metrics.json").read_text())["humanoid_groot"]
    assert list(theirs) == ["state-zero", "perfect"] and theirs["perfect"]["frames"] == 20
    actions = np.stack([np.asarray(dataset[t]["action"], np.float64) for t in range(20)])
    expected = np.abs(perfect_rows(actions, 16) - actions).mean(axis=0).mean()
    assert theirs["perfect"]["mae"] == pytest.approx(expected) and theirs["perfect"]["mae"] > 0
