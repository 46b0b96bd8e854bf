"""The latest-sample store: a complete observation, or per-stream problems the node can log and hold on."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image

from groot_ros.ros import messages as km
from groot_ros.core.images import encode_jpeg, encode_rgb8
from groot_ros.core.layout import load_layout
from groot_ros.core.store import ObservationStore

RED = np.full((48, 64, 3), (200, 30, 30), np.uint8)


def joints(q_fill: float = 0.1, n: int = 28) -> km.sensorsData:
    msg = km.sensorsData()
    msg.header.stamp.secs = 5
    msg.joint_data.joint_q = [q_fill] * n
    return msg


def claws(position=(10.0, 90.0)) -> km.lejuClawState:
    msg = km.lejuClawState()
    msg.data.position = list(position)
    return msg


def torso(z: float = 0.8, pitch: float = 0.1) -> km.mpc_observation:
    msg = km.mpc_observation()
    value = [0.0] * 40
    value[8], value[10] = z, pitch
    msg.state.value = value
    return msg


@pytest.fixture
def layout():
    return load_layout("depalletize", "4_pro", "sim")


def fill(store: ObservationStore, t: float, **overrides) -> None:
    msgs = {"joints": joints(), "claws": claws(), "torso": torso(),
            "head": Image(**encode_rgb8(RED)), "wrist_left": Image(**encode_rgb8(RED)),
            "wrist_right": Image(**encode_rgb8(RED))}
    msgs.update(overrides)
    for name, msg in msgs.items():
        store.update(name, msg, t)


def test_fresh_streams_build_an_observation(layout):
    store = ObservationStore(layout, expected_image_size={"head": (48, 64)})
    fill(store, 10.0)
    result = store.build_observation(10.05, "pick the box")
    assert result.ok and result.summary() == "ok"
    obs = result.observation
    np.testing.assert_allclose(obs.state, [0.1] * 14 + [10.0, 90.0, 0.8, 0.1], rtol=1e-6)
    assert set(obs.images) == set(layout.camera_keys)
    assert obs.images["observation.images.cam_head"][0, 0].tolist() == [200, 30, 30]
    assert obs.task == "pick the box" and obs.stamp == 10.05
    assert obs.meta["header_stamps"]["joints"] == 5.0 and math.isclose(obs.meta["ages"]["claws"], 0.05)


def test_missing_and_stale_streams_say_by_how_much(layout):
    store = ObservationStore(layout)
    fill(store, 10.0)
    store.update("joints", joints(), 10.0)
    store.update("claws", claws(), 10.45)
    result = store.build_observation(10.5, "t")
    assert not result.ok
    by_source = {p.source: p for p in result.problems}
    stale = by_source["joints"]
    limit = layout.streams["joints"].max_age
    assert stale.kind == "stale" and math.isclose(stale.age, 0.5) and stale.limit == limit
    assert str(stale) == f"joints (/sensors_data_raw): stale: last message 0.500 s old, limit {limit:.3f} s"
    assert "claws" not in by_source  # 0.05 s old, limit 0.5 s
    assert {"torso", "head", "wrist_left", "wrist_right"} <= set(by_source)

    empty = ObservationStore(layout).build_observation(0.0, "t")
    assert {p.kind for p in empty.problems} == {"missing"} and len(empty.problems) == 6


def test_nan_state_names_the_dims(layout):
    store = ObservationStore(layout)
    q = joints()
    q.joint_data.joint_q[13] = float("nan")  # arm index 1
    fill(store, 1.0, joints=q, torso=torso(pitch=float("inf")))
    result = store.build_observation(1.0, "t")
    kinds = {(p.source, p.kind): p.detail for p in result.problems}
    assert kinds[("joints", "nonfinite")] == "J_q_1=nan"
    assert kinds[("torso", "nonfinite")] == "Com_z_pitch_1=inf"
    assert result.observation is None


def test_wrong_joint_count(layout):
    store = ObservationStore(layout)
    fill(store, 1.0, joints=joints(n=20))
    (problem,) = store.build_observation(1.0, "t").problems
    assert problem.kind == "joint_count" and "20 joints, robot '4_pro' has 28" in problem.detail


def test_bgr8_camera_arrives_as_rgb(layout):
    store = ObservationStore(layout)
    fill(store, 1.0, head=Image(**dict(encode_rgb8(RED[..., ::-1].copy()), encoding="bgr8")))
    obs = store.build_observation(1.0, "t").observation
    assert obs.images["observation.images.cam_head"][5, 5].tolist() == [200, 30, 30]


def test_corrupt_jpeg_and_wrong_size_are_reported_per_camera(layout):
    store = ObservationStore(layout, expected_image_size={"wrist_right": (96, 128)})
    broken = CompressedImage(format="jpeg", data=encode_jpeg(RED)[:30])
    fill(store, 1.0, wrist_left=broken)
    problems = {p.source: p for p in store.build_observation(1.0, "t").problems}
    assert set(problems) == {"wrist_left", "wrist_right"}
    assert problems["wrist_left"].kind == "image" and "cannot decode 30 bytes as jpeg" in problems["wrist_left"].detail
    assert "expected 128x96" in problems["wrist_right"].detail

    store.update("wrist_left", CompressedImage(format="jpeg", data=encode_jpeg(RED)), 1.0)
    store.update("wrist_right", Image(**encode_rgb8(np.zeros((96, 128, 3), np.uint8))), 1.0)
    assert store.build_observation(1.0, "t").ok


def test_rotate_180_from_the_config(layout, tmp_path):
    import yaml

    from groot_ros.core.paths import config_dir

    topics = yaml.safe_load(open(config_dir() / "topics" / "sim.yaml"))
    topics["cameras"]["head"]["rotate_180"] = True
    (tmp_path / "rot.yaml").write_text(yaml.safe_dump(topics))
    rotated = ObservationStore(load_layout("depalletize", "4_pro", str(tmp_path / "rot.yaml")))
    img = RED.copy()
    img[0, 0] = (0, 255, 0)
    fill(rotated, 1.0, head=Image(**encode_rgb8(img)))
    out = rotated.build_observation(1.0, "t").observation.images["observation.images.cam_head"]
    assert out[-1, -1].tolist() == [0, 255, 0]


def test_unknown_names_are_refused(layout):
    with pytest.raises(KeyError, match="neither a used stream"):
        ObservationStore(layout).update("chest", Image(), 0.0)
    with pytest.raises(ValueError, match="unknown cameras"):
        ObservationStore(layout, expected_image_size={"chest": (1, 1)})
