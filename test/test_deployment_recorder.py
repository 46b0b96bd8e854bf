"""The deployment recorder (tools/deployment_recorder.py): episodes LeRobot loads back with the operator's commands
where the operator was in charge, nothing lost across handovers, earlier episodes surviving a crash, a caller that
is never blocked, and an existing dataset that does not fit refused with the reason."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from groot_ros.core.layout import load_layout
from groot_ros.core.observation import Observation
from groot_ros.execution.recording import FrameTimer, RecordedFrame, TrialOutcome
from groot_ros.tools.deployment_recorder import DeploymentRecorder, RecorderError

LAYOUT = load_layout("arms_claws", "4_pro", "sim")
SHAPE = (24, 32, 3)


def frame(k: int, intervention: bool, episode: int = 0) -> RecordedFrame:
    """Frame k: its action encodes (episode, k), the operator's frames are negative so a mix-up shows."""
    action = np.full(LAYOUT.action_dim, (-1 if intervention else 1) * (1000 * episode + k), np.float32)
    proposal = np.full(LAYOUT.action_dim, np.nan if k == 0 else k, np.float32)  # no plan before the first chunk
    images = {key: np.full(SHAPE, (10 * k + i) % 256, np.uint8) for i, key in enumerate(LAYOUT.camera_keys)}
    obs = Observation(state=np.full(LAYOUT.state_dim, k, np.float32), images=images, task="Depalletize the box")
    return RecordedFrame(stamp=0.1 * k, observe=lambda: obs, action=action, policy_action=proposal,
                         intervention=intervention, task=obs.task)


def load(root):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    return LeRobotDataset(f"local/{root.name}", root=root, video_backend="pyav")


def test_two_takeovers_become_intervention_frames_with_the_operators_commands(tmp_path):
    root = tmp_path / "runs"
    recorder = DeploymentRecorder(root, LAYOUT, fps=10, video=False)
    takeovers = [False] * 5 + [True] * 4 + [False] * 3 + [True] * 2 + [False] * 2  # two takeovers
    for k, operator in enumerate(takeovers):
        assert recorder.add(frame(k, operator))
    recorder.save_episode(TrialOutcome(success=True, duration_s=1.6, reason="box placed"))
    for k in range(4):
        recorder.add(frame(k, False, episode=1))
    recorder.discard_episode()  # the operator threw this one away
    for k in range(3):
        recorder.add(frame(k, False, episode=2))
    assert recorder.close(timeout=60)
    assert recorder.status().episodes_saved == 2 and recorder.status().error == ""

    ds = load(root)
    assert ds.num_episodes == 2 and ds.num_frames == len(takeovers) + 3  # no frame lost across the handovers
    for k, operator in enumerate(takeovers):
        item = ds[k]
        assert bool(item["intervention"]) == operator
        assert float(item["action"][0]) == (-k if operator else k)
        assert float(item["observation.state"][0]) == k
    assert np.isnan(ds[0]["policy_action"].numpy()).all() and float(ds[3]["policy_action"][0]) == 3
    assert float(ds[len(takeovers)]["action"][0]) == 2000  # episode 1 was discarded: episode 2 follows
    assert ds.meta.features["action"]["names"] == LAYOUT.action_feature_names  # bag2lerobot's names
    trials = [json.loads(line) for line in (root / "meta" / "trials.jsonl").read_text().splitlines()]
    assert trials[0] == {"episode_index": 0, "intervention_frames": 6, "success": True, "duration_s": 1.6,
                         "reason": "box placed"}
    assert trials[1]["episode_index"] == 1 and trials[1]["reason"] == "recorder closed"


def test_a_crash_loses_only_the_episode_in_progress(tmp_path):
    root = tmp_path / "runs"
    script = textwrap.dedent(f"""
        import os, sys
        sys.path[:0] = {sys.path!r}
        from test_deployment_recorder import LAYOUT, frame
        from groot_ros.tools.deployment_recorder import DeploymentRecorder
        rec = DeploymentRecorder({str(root)!r}, LAYOUT, fps=10, video=True)
        for ep in range(2):
            for k in range(6):
                rec.add(frame(k, k % 3 == 0, ep))
            rec.save_episode()
        for k in range(6):
            rec.add(frame(k, False, 2))
        rec.flush(60)
        os._exit(9)  # killed mid-episode: no finalize, no atexit
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=str(Path(__file__).parent),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 9, done.stderr[-2000:]
    ds = load(root)
    assert ds.num_episodes == 2 and ds.num_frames == 12
    assert float(ds[11]["action"][0]) == 1005
    # the next launch appends to the same dataset
    recorder = DeploymentRecorder(root, LAYOUT, fps=10, video=True)
    for k in range(4):
        recorder.add(frame(k, False, 3))
    assert recorder.close(timeout=60)
    ds = load(root)
    assert ds.num_episodes == 3 and float(ds[12]["action"][0]) == 3000


def test_an_existing_dataset_that_does_not_fit_is_refused_with_the_reason(tmp_path):
    root = tmp_path / "runs"
    recorder = DeploymentRecorder(root, LAYOUT, fps=10, video=False)
    recorder.add(frame(0, False))
    assert recorder.close(timeout=60)
    with pytest.raises(RecorderError, match=r"fps 10 \(recording at 30\)"):
        DeploymentRecorder(root, LAYOUT, fps=30, video=False)
    other = load_layout("arms_claws_imu", "4_pro", "sim")
    with pytest.raises(RecorderError, match="observation.state names"):
        DeploymentRecorder(root, other, fps=10, video=False)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("x")
    with pytest.raises(RecorderError, match="not a LeRobot dataset"):
        DeploymentRecorder(tmp_path / "junk", LAYOUT, fps=10)


def test_frames_whose_inputs_were_unusable_are_left_out_and_counted(tmp_path):
    recorder = DeploymentRecorder(tmp_path / "runs", LAYOUT, fps=10, video=False)
    for k in range(4):
        good = frame(k, False)
        recorder.add(good if k != 2 else RecordedFrame(good.stamp, lambda: None, good.action, good.policy_action,
                                                        False, good.task))
    assert recorder.close(timeout=60) and recorder.status().frames_unusable == 1
    assert load(tmp_path / "runs").num_frames == 3


def test_the_caller_is_never_blocked_and_drops_are_counted(tmp_path):
    recorder = DeploymentRecorder(tmp_path / "runs", LAYOUT, fps=10, video=False, max_pending_frames=3)
    accepted = sum(recorder.add(frame(k, False)) for k in range(200))
    status = recorder.status()
    assert accepted + status.frames_dropped == 200 and status.pending_frames <= 3
    assert recorder.close(timeout=60)
    assert load(tmp_path / "runs").num_frames == accepted


def test_a_write_error_drops_that_episode_and_says_why(tmp_path):
    root = tmp_path / "runs"
    recorder = DeploymentRecorder(root, LAYOUT, fps=10, video=False)
    recorder.add(frame(0, False))
    recorder.flush(60)
    assert not (root / "data").exists()  # LeRobot writes parquet only when the episode is saved
    (root / "data").write_text("not a folder")  # the parquet folder cannot be made: as a full or broken disk
    for k in range(1, 4):
        recorder.add(frame(k, False))
    recorder.save_episode()
    recorder.flush(60)
    status = recorder.status()
    assert status.episodes_saved == 0 and "data" in status.error
    assert recorder.close(timeout=60)


def test_frame_timer_takes_one_frame_per_period_without_bursts():
    timer = FrameTimer(fps=10)
    ticks = [k * 0.01 for k in range(100)]  # 1 s of a 100 Hz loop
    assert sum(timer.due(t) for t in ticks) == 10
    assert timer.due(5.0) and not timer.due(5.05) and timer.due(5.1)  # after a pause: one frame, re-anchored


def test_recordings_merge_with_converted_bags_without_their_run_only_features(tmp_path):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    from groot_ros.tools.bag2lerobot import dataset_features, merge_datasets

    runs = tmp_path / "runs"
    recorder = DeploymentRecorder(runs, LAYOUT, fps=10, video=False)
    for k in range(5):
        recorder.add(frame(k, k >= 3))
    assert recorder.close(timeout=60)
    bags = tmp_path / "bags"  # what bag2lerobot writes for the same layout: its own features function
    converted = LeRobotDataset.create(repo_id="local/bags", fps=10, root=bags, robot_type=f"kuavo_{LAYOUT.robot.version}",
                                      features=dataset_features(LAYOUT, {k: SHAPE for k in LAYOUT.camera_keys}, False),
                                      use_videos=False)
    for k in range(4):
        f = frame(k, True, episode=7)
        obs = f.observe()
        converted.add_frame({"observation.state": obs.state, "action": f.action, **obs.images, "task": f.task})
    converted.save_episode()
    converted.finalize()

    merged = load(merge_datasets([bags, runs], tmp_path / "merged"))
    assert merged.num_episodes == 2 and merged.num_frames == 9
    assert "intervention" not in merged.meta.features and "policy_action" not in merged.meta.features
    assert float(merged[4 + 3]["action"][0]) == -3  # the operator's command survives as the action
    assert "intervention" in load(runs).meta.features  # the recording itself keeps them


@pytest.mark.slow
def test_a_recording_merged_with_converted_bags_trains_through_the_wrapper(tmp_path):
    from groot_ros.cli import main
    from groot_ros.tools.bag2lerobot import merge_datasets

    runs, bags = tmp_path / "runs", tmp_path / "bags"
    for root, operator in ((runs, lambda k: k >= 6), (bags, lambda k: True)):
        recorder = DeploymentRecorder(root, LAYOUT, fps=10, video=False)
        for k in range(20):
            recorder.add(frame(k, operator(k)))
        assert recorder.close(timeout=60)
    merged = merge_datasets([bags, runs], tmp_path / "merged")
    small = ["--batch-size", "2", "--save-freq", "2", "--log-freq", "1", "--num-workers", "0", "--device", "cpu"]
    assert main(["train", "--layout", "arms_claws", "--tiny-base-model", str(tmp_path / "tiny"),
                 "--dataset-root", str(merged), "--output-dir", str(tmp_path / "run"), "--steps", "2", *small]) == 0
    assert (tmp_path / "run" / "checkpoints" / "last" / "pretrained_model" / "model.safetensors").is_file()
