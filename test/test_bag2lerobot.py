"""bag2lerobot: alignment rule, skipping with reasons, LeRobot features, and parity with the node's state."""

from __future__ import annotations

import json

import numpy as np
import pytest

from groot_ros.testing.bags import EpisodeSpec, write_bags, write_episode

FPS = 10


@pytest.fixture(scope="module")
def converted(tmp_path_factory, depalletize_layout):
    from groot_ros.tools.bag2lerobot import ConvertOptions, convert

    folder = tmp_path_factory.mktemp("bags")
    good = write_bags(folder, depalletize_layout, count=2)
    write_episode(folder / "episode_97_no_cmd_pose.bag", depalletize_layout,
                  EpisodeSpec(drop_topics=(depalletize_layout.commands["torso"].topic,)))
    write_episode(folder / "episode_98_camera_gap.bag", depalletize_layout, EpisodeSpec(camera_gap=(1.0, 1.8)))
    root = tmp_path_factory.mktemp("datasets") / "kuavo"
    tasks = {"episode_01": "Pick up the box with both hands and place it on the shelf."}
    report = convert([folder], root, depalletize_layout,
                     ConvertOptions(task="Depalletize the boxes.", fps=FPS, tasks=tasks), progress=False)
    return report, good


def _times(bag_path, topic):
    """(time, msg) of one topic, timed as the converter's default clock does: header stamp, else receive time."""
    import rosbag

    from groot_ros.core.store import header_stamp

    with rosbag.Bag(str(bag_path)) as bag:
        out = [(header_stamp(m) or t.to_sec(), m) for _, m, t in bag.read_messages(topics=[topic])]
    return sorted(out, key=lambda x: x[0])


def test_good_bags_become_episodes_and_bad_ones_are_skipped_with_reasons(converted):
    report, good = converted
    assert [o.bag.name for o in report.written] == [p.name for p in good]
    reasons = {o.bag.name: o.skipped for o in report.skipped}
    assert "no messages on command:torso (/cmd_pose)" in reasons["episode_97_no_cmd_pose.bag"]
    assert "gap of" in reasons["episode_98_camera_gap.bag"] and "/camera/color/image_raw" in reasons[
        "episode_98_camera_gap.bag"]
    assert "skipped episode_98_camera_gap.bag" in report.summary()


def test_dataset_has_named_features_fps_stats_and_tasks(converted, depalletize_layout):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    report, _ = converted
    info = json.loads((report.root / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == FPS and info["robot_type"] == "kuavo_4_pro"
    assert info["features"]["observation.state"]["names"] == depalletize_layout.state_feature_names
    assert info["features"]["action"]["names"] == depalletize_layout.action_feature_names
    for key in depalletize_layout.camera_keys:
        assert info["features"][key]["dtype"] == "image" and tuple(info["features"][key]["shape"]) == (64, 64, 3)
    ds = LeRobotDataset(report.repo_id, root=report.root)
    assert ds.num_episodes == 2 and ds.num_frames == sum(o.frames for o in report.written)
    for key in ("observation.state", "action"):
        stats = ds.meta.stats[key]
        assert np.asarray(stats["min"]).shape == (18,) and np.all(np.asarray(stats["max"]) >= np.asarray(stats["min"]))
    first, second = (ds[int(ds.meta.episodes[e]["dataset_from_index"])]["task"] for e in (0, 1))
    assert first == "Depalletize the boxes." and second.startswith("Pick up the box")


def test_state_action_and_images_equal_what_the_node_builds(converted, depalletize_layout):
    """Parity: rebuild frames from the raw bag the way the node does (latest message per stream into an
    ObservationStore) and the layout's command units by hand (degrees on /kuavo_arm_traj)."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    from groot_ros.core.images import decode_message
    from groot_ros.core.store import ObservationStore

    layout = depalletize_layout
    report, good = converted
    ds = LeRobotDataset(report.repo_id, root=report.root)
    bag = good[1]
    start = int(ds.meta.episodes[1]["dataset_from_index"])
    sensors = {n: _times(bag, layout.streams[n].topic) for n in layout.used_streams()}
    cameras = {c.name: _times(bag, c.topic) for c in layout.cameras}
    commands = {ch: _times(bag, layout.commands[ch].topic) for ch in ("arm", "claw", "torso")}
    t0 = max(s[0][0] for s in [*sensors.values(), *cameras.values(), *commands.values()])

    def latest(series, t):
        return [m for m in series if m[0] <= t][-1]

    for k in (0, 7, 19, report.written[1].frames - 1):
        t = t0 + k / FPS
        store = ObservationStore(layout)
        for name, series in {**sensors, **cameras}.items():
            stamp, msg = latest(series, t)
            store.update(name, msg, stamp)
        node = store.build_observation(now=t, task="")
        assert node.ok, node.summary()
        item = ds[start + k]
        np.testing.assert_allclose(item["observation.state"].numpy(), node.observation.state, rtol=1e-6, atol=1e-6)
        by_hand = layout.state_from_messages({n: latest(s, t)[1] for n, s in sensors.items()})
        np.testing.assert_allclose(item["observation.state"].numpy(), by_hand, rtol=1e-6, atol=1e-6)
        arm = np.radians(latest(commands["arm"], t)[1].position)
        claw = np.asarray(latest(commands["claw"], t)[1].data.position)
        twist = latest(commands["torso"], t)[1]
        expected = np.concatenate([arm, claw, [twist.linear.z, twist.angular.y]])
        np.testing.assert_allclose(item["action"].numpy(), expected, rtol=1e-6, atol=1e-6)
        for cam in layout.cameras:
            stored = np.rint(item[cam.key].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
            np.testing.assert_array_equal(stored, decode_message(latest(cameras[cam.name], t)[1], cam.rotate_180))


def test_alignment_rule_zero_order_hold_commands_hold_and_gaps_skip():
    from groot_ros.tools.bag2lerobot import SkipEpisode, Source, align

    srcs = [Source("joints", "/j", "t", "stream", 0.1), Source("head", "/c", "t", "camera", 0.3),
            Source("command:claw", "/k", "t", "command", None)]
    times = {"joints": np.arange(0.0, 2.0, 0.01) + 5.0, "head": np.arange(0.05, 2.0, 1 / 15) + 5.0,
             "command:claw": [5.2, 5.9]}  # commands arrive rarely: they hold until the next one
    a = align(times, srcs, fps=10)
    assert a.ticks[0] == pytest.approx(5.2)  # latest first message over all topics
    assert a.ticks[-1] <= times["joints"][-1] and a.ticks[-1] <= times["head"][-1]
    assert len(a.ticks) == int((min(times["joints"][-1], times["head"][-1]) - 5.2) * 10 + 1e-9) + 1
    for k, tick in enumerate(a.ticks):
        assert times["joints"][a.picks["joints"][k]] <= tick + 1e-12 < times["joints"][a.picks["joints"][k]] + 0.01 + 1e-9
        assert a.picks["command:claw"][k] == (0 if tick < 5.9 else 1)  # held past its last message
    gappy = dict(times, head=np.concatenate([times["head"][:10], times["head"][20:]]))
    with pytest.raises(SkipEpisode, match=r"head \(/c\): gap of 0\.[0-9]+ s"):
        align(gappy, srcs, fps=10)
    with pytest.raises(SkipEpisode, match="no messages on joints"):
        align(dict(times, joints=[]), srcs, fps=10)


def test_wrong_topic_set_fails_with_every_reason(tmp_path, depalletize_layout, converted):
    """Bags recorded with raw sim cameras, converted with the real robot's topics (compressed cameras)."""
    from groot_ros.tools.bag2lerobot import ConversionError, ConvertOptions, convert
    from groot_ros.core.layout import load_layout

    _, good = converted
    with pytest.raises(ConversionError, match=r"no episode could be converted:[\s\S]*/cam_h/color/image_raw/compressed"):
        convert(good[:1], tmp_path / "ds", load_layout("depalletize", "4_pro", "real"), ConvertOptions(task="x"),
                progress=False)
    assert not (tmp_path / "ds").exists()


def test_cli_refuses_an_existing_output(tmp_path, converted, capsys):
    from groot_ros.cli import main

    report, good = converted
    assert main(["bag2lerobot", str(good[0]), "--out", str(report.root)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["bag2lerobot", str(tmp_path), "--out", str(tmp_path / "new")]) == 2
    assert "no .bag files" in capsys.readouterr().err


def _plain(value):
    """Nested arrays from parquet as plain JSON lists."""
    if isinstance(value, (np.ndarray, list)):
        return [_plain(v) for v in value]
    return value.item() if hasattr(value, "item") else value


def _downgrade_to_v21(src, dst):
    """A LeRobot v2.1 copy of a v3.0 dataset (per-episode parquet files and jsonl metadata), as older
    LeRobot versions wrote them: the input convert-v21 is for."""
    import pandas as pd
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    meta = LeRobotDataset("local/src", root=src).meta
    info = json.loads((src / "meta" / "info.json").read_text())
    for key in ("data_files_size_in_mb", "video_files_size_in_mb"):
        info.pop(key, None)
    info.update(codebase_version="v2.1", total_chunks=1, total_videos=0, chunks_size=1000, video_path=None,
                data_path="data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet")
    (dst / "meta").mkdir(parents=True)
    (dst / "meta" / "info.json").write_text(json.dumps(info))
    data = pd.concat([pd.read_parquet(f) for f in sorted((src / "data").glob("*/*.parquet"))], ignore_index=True)
    rows = pd.concat([pd.read_parquet(f) for f in sorted((src / "meta" / "episodes").glob("*/*.parquet"))])
    (dst / "data" / "chunk-000").mkdir(parents=True)
    episodes, stats = [], []
    for ep in range(meta.total_episodes):
        data[data["episode_index"] == ep].to_parquet(dst / "data" / "chunk-000" / f"episode_{ep:06d}.parquet")
        row = rows[rows["episode_index"] == ep].iloc[0].to_dict()
        episodes.append({"episode_index": ep, "tasks": _plain(row["tasks"]), "length": int(row["length"])})
        ep_stats: dict = {}
        for key, value in row.items():
            if key.startswith("stats/"):
                feature, stat = key[len("stats/"):].rsplit("/", 1)
                ep_stats.setdefault(feature, {})[stat] = _plain(value)
        stats.append({"episode_index": ep, "stats": ep_stats})
    tasks = [{"task_index": int(i), "task": t} for t, i in meta.tasks["task_index"].items()]
    for name, rows in (("episodes", episodes), ("episodes_stats", stats), ("tasks", tasks)):
        (dst / "meta" / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_convert_v21_converts_in_place_and_checks(tmp_path, converted, capsys):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    from groot_ros.cli import main

    report, _ = converted
    old = tmp_path / "kuavo_v21"
    _downgrade_to_v21(report.root, old)
    assert main(["convert-v21", str(old)]) == 0
    out = capsys.readouterr().out
    assert "2 episodes" in out and "observation.state" in out and "lerobot-dataset-viz" in out
    assert (tmp_path / "kuavo_v21_old" / "meta" / "episodes.jsonl").is_file()
    new, ref = LeRobotDataset("local/new", root=old), LeRobotDataset("local/ref", root=report.root)
    assert new.num_frames == ref.num_frames
    np.testing.assert_array_equal(new[5]["observation.images.cam_head"], ref[5]["observation.images.cam_head"])
    assert main(["convert-v21", str(old)]) == 2  # now v3.0
    assert "already v3.0" in capsys.readouterr().err


# The users' naming, written out from their configs/config.py rather than taken from our layouts, so a rename on
# our side that drifts from theirs fails here.
THEIR_STATE = [f"arm_joint_{i}" for i in range(1, 15)] + ["left_claw_state", "right_claw_state", "com_z_position",
                                                          "com_pitch_eular"]
THEIR_ACTION = [f"arm_joint_{i}" for i in range(1, 15)] + ["left_claw_position", "right_claw_position", "cmd_pose_z",
                                                           "cmd_pose_pitch"]


def _their_dataset(root, like: dict, cameras=("cam_head", "cam_left", "cam_right")):
    """One short episode written by LeRobot itself with the users' keys and names; fps, robot type and image
    size as `like` (a recording's properties, not its naming)."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    shape = next(f["shape"] for k, f in like["features"].items() if k.startswith("observation.images."))
    features = {"observation.state": {"dtype": "float32", "shape": (18,), "names": THEIR_STATE},
                "action": {"dtype": "float32", "shape": (18,), "names": THEIR_ACTION},
                **{f"observation.images.{c}": {"dtype": "image", "shape": tuple(shape),
                                               "names": ["height", "width", "channels"]} for c in cameras}}
    dataset = LeRobotDataset.create(repo_id="kuavo/1120_depalletize", fps=like["fps"], root=root, features=features,
                                    robot_type=like["robot_type"], use_videos=False)
    for _ in range(3):
        dataset.add_frame({"observation.state": np.zeros(18, np.float32), "action": np.zeros(18, np.float32),
                           **{f"observation.images.{c}": np.zeros(shape, np.uint8) for c in cameras},
                           "task": "Depalletize the box"})
    dataset.save_episode()
    dataset.finalize()
    return root


def test_a_default_named_dataset_merges_with_theirs_through_lerobot(converted, tmp_path):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    from groot_ros.tools.bag2lerobot import ConversionError, merge_datasets

    report, _ = converted
    info = json.loads((report.root / "meta" / "info.json").read_text())
    theirs = _their_dataset(tmp_path / "theirs", info)
    merged = LeRobotDataset("local/merged", root=merge_datasets([report.root, theirs], tmp_path / "merged"))
    assert merged.meta.total_episodes == 3 and merged.meta.features["action"]["names"] == THEIR_ACTION
    # what the old default camera names did: LeRobot refuses, the features differ
    old = _their_dataset(tmp_path / "old_names", info, cameras=("head_cam_h", "wrist_cam_l", "wrist_cam_r"))
    with pytest.raises(ConversionError, match="Same features is expected"):
        merge_datasets([report.root, old], tmp_path / "refused")
