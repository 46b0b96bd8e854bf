"""The policy server and its robot side, without ROS: openpi's frames, bad input answered while another client is
served, the api key, /healthz, and the RemotePolicy's holds (late reply, closed connection, unreachable server,
reconnection, stale replies). The tiny checkpoint, served by the real server on loopback."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request

import msgpack
import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from groot_ros.core.prefix import ChunkPrefix
from groot_ros.policy.checkpoint import CheckpointError
from groot_ros.policy.matching import choose_layout
from groot_ros.policy.remote import RemotePolicy, RemotePolicyError, fetch_metadata, remote_inputs
from groot_ros.policy.server import PolicyServer, ServerConfig, ServerThread, served_metadata
from groot_ros.policy.tiny import synthetic_observation
from groot_ros.policy.wire import (ServerMetadata, WireError, WireSpec, decode_reply, decode_request,
                                   encode_request, pack, unpack)


def small_obs(layout, seed=0):
    """The synthetic observation at the tiny model's 224x224: what the node sends (it decodes to the model's size)."""
    obs = synthetic_observation(layout, seed=seed)
    return type(obs)(state=obs.state, images={k: v[:224, :224].copy() for k, v in obs.images.items()}, task=obs.task,
                     stamp=12.5)


@pytest.fixture(scope="module")
def metadata(tiny_checkpoint, tiny_runtime):
    choice = choose_layout(tiny_checkpoint.pretrained_model, "4_pro", "sim")
    return served_metadata(choice, tiny_runtime, "Depalletize the box", "cpu/float32, test", 4 << 20)


@pytest.fixture(scope="module")
def served(tiny_runtime, metadata):
    with ServerThread(PolicyServer(tiny_runtime, metadata, ServerConfig(port=0, max_frame_bytes=4 << 20,
                                                                        handshake_timeout_s=1.0))) as thread:
        yield thread


def raw_client(url, **kw):
    conn = connect(url, compression=None, max_size=None, legacy=True, **kw)
    return conn, unpack(conn.recv(timeout=5))


# -- the codec -------------------------------------------------------------------------------------------------


def test_arrays_travel_as_openpi_packs_them():
    """openpi_client.msgpack_numpy's layout: a map with b"__ndarray__", b"data", b"dtype", b"shape"."""
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    raw = msgpack.unpackb(pack({"a": a, "s": np.int64(3)}), raw=False)
    assert raw["a"] == {b"__ndarray__": True, b"data": a.tobytes(), b"dtype": "<f4", b"shape": [2, 3]}
    assert raw["s"] == {b"__npgeneric__": True, b"data": 3, b"dtype": "<i8"}
    back = unpack(pack({"a": a, "s": np.int64(3)}))
    np.testing.assert_array_equal(back["a"], a)
    assert back["s"] == 3 and back["s"].dtype == np.int64


@pytest.mark.parametrize("bad, says", [
    ({b"__ndarray__": True, b"data": b"\0" * 7, b"dtype": "<f4", b"shape": [2]}, "needs 8 bytes"),
    ({b"__ndarray__": True, b"data": b"\0" * 8, b"dtype": "|O", b"shape": [1]}, "refused"),
    ({b"__ndarray__": True, b"data": b"", b"dtype": "<f4", b"shape": [-1]}, "non-negative"),
    ({b"__ndarray__": True, b"data": b"", b"dtype": "not a dtype", b"shape": [0]}, "numpy dtype"),
])
def test_the_decoder_trusts_nothing(bad, says):
    with pytest.raises(WireError, match=says):
        unpack(msgpack.packb({"x": bad}, use_bin_type=True))


def test_a_request_round_trips_with_the_prefix(metadata, depalletize_layout):
    obs = small_obs(depalletize_layout)
    prefix = ChunkPrefix(np.ones((5, 18), np.float32), 2)
    for quality in (0, 90):
        request = decode_request(encode_request(obs, seed=3, request_id=7, prefix=prefix, jpeg_quality=quality),
                                 metadata.spec)
        assert (request.seed, request.request_id, request.prefix.delay_steps) == (3, 7, 2)
        np.testing.assert_array_equal(request.prefix.actions, prefix.actions)
        np.testing.assert_allclose(request.observation.state, obs.state.astype(np.float32))
        assert request.observation.stamp == 12.5 and request.observation.task == obs.task
        for key, img in obs.images.items():
            got = request.observation.images[key]
            assert got.shape == img.shape and (quality or np.array_equal(got, img))


def test_compressed_images_are_measured_before_they_are_decoded():
    import cv2

    from groot_ros.core.images import compressed_size

    img = np.zeros((30, 50, 3), np.uint8)
    for ext in (".jpg", ".png"):
        assert compressed_size(cv2.imencode(ext, img)[1].tobytes()) == (30, 50)
    bomb = bytearray(cv2.imencode(".png", img)[1].tobytes())
    bomb[16:24] = (20000).to_bytes(4, "big") * 2  # the header claims 20000 x 20000
    spec = WireSpec(1, 1, ("observation.images.cam_head",))
    frame = pack({"observation.state": np.zeros(1, np.float32), "observation.images.cam_head": bytes(bomb)})
    with pytest.raises(WireError, match=r"at most 4096 pixels a side \(header says \(20000, 20000\)\)"):
        decode_request(frame, spec)


def test_a_request_without_a_task_gets_the_servers_default(metadata, depalletize_layout):
    frame = unpack(encode_request(small_obs(depalletize_layout)))
    del frame["task"]
    assert decode_request(pack(frame), metadata.spec).observation.task == "Depalletize the box"


def test_metadata_round_trips_and_feeds_the_layout_choice(metadata, depalletize_layout):
    back = ServerMetadata.from_wire(unpack(pack(metadata.to_wire())))
    assert back == metadata and len(back.checkpoint_sha256) == 64
    choice = choose_layout(remote_inputs(back, "ws://test"), "4_pro", "sim")
    assert choice.layout.name == depalletize_layout.name and "policy server ws://test" in choice.how


# -- the server ------------------------------------------------------------------------------------------------


def test_our_client_gets_a_chunk_and_the_same_seed_repeats_in_process(served, tiny_runtime, depalletize_layout):
    conn, meta = raw_client(served.url)
    assert meta["layout"] == "depalletize" and meta["chunk_size"] == 16 and meta["cameras"]
    obs = small_obs(depalletize_layout)
    conn.send(encode_request(obs, seed=5, request_id="r1"))
    reply = decode_reply(conn.recv(timeout=30), 16, 18)
    assert reply.request_id == "r1" and reply.observation_stamp == 12.5
    assert {"queue_ms", "infer_ms", "decode_ms"} <= set(reply.server_timing)
    np.testing.assert_allclose(reply.actions, tiny_runtime.predict_chunk(obs, seed=5), rtol=1e-5, atol=1e-5)
    conn.close()


def test_a_prefix_sent_reaches_the_engine(served, tiny_runtime, depalletize_layout):
    """Real-time chunking through the server: the chunk keeps the prefix's delay rows, as in process."""
    obs = small_obs(depalletize_layout)
    plan = tiny_runtime.predict_chunk(obs, seed=1).astype(np.float32)
    prefix = ChunkPrefix(plan[2:12], 3)
    conn, _ = raw_client(served.url)
    conn.send(encode_request(obs, seed=4, request_id=9, prefix=prefix))
    reply = decode_reply(conn.recv(timeout=30), 16, 18)
    np.testing.assert_allclose(reply.actions[:3], prefix.actions[:3], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(reply.actions, tiny_runtime.predict_chunk(obs, seed=4, prefix=prefix), rtol=1e-5,
                               atol=1e-4)
    conn.close()


BAD_FRAMES = {
    "not msgpack": b"\xc1\xc1\xc1",
    "a text frame": "hello",
    "not a map": pack([1, 2, 3]),
    "unknown key": None,  # built from a good request below
    "missing camera": None,
    "state of the wrong length": None,
    "float64 state": None,
    "NaN in the state": None,
    "image not uint8 HxWx3": None,
    "JPEG bytes that are no image": None,
    "array bytes short of its shape": None,
    "prefix of the wrong width": None,
}


def bad_frame(kind, obs, good):
    if BAD_FRAMES[kind] is not None:
        return BAD_FRAMES[kind]
    frame = msgpack.unpackb(good, raw=False)
    key = next(k for k in frame if k.startswith("observation.images."))
    state = obs.state.astype(np.float32)
    if kind == "unknown key":
        frame["observation.images_extra"] = 1
    elif kind == "missing camera":
        del frame[key]
    elif kind == "state of the wrong length":
        return encode_request(type(obs)(state[:-1], obs.images, obs.task))
    elif kind == "float64 state":
        return pack({**unpack(good), "observation.state": state.astype(np.float64)})
    elif kind == "NaN in the state":
        state[3] = np.nan
        return pack({**unpack(good), "observation.state": state})
    elif kind == "image not uint8 HxWx3":
        return pack({**unpack(good), key: np.zeros((224, 224), np.float32)})
    elif kind == "JPEG bytes that are no image":
        frame[key] = b"\xff\xd8 not a jpeg"
    elif kind == "array bytes short of its shape":
        frame["observation.state"][b"data"] = frame["observation.state"][b"data"][:-4]
    elif kind == "prefix of the wrong width":
        return pack({**unpack(good), "prefix.actions": np.zeros((4, 17), np.float32), "prefix.delay_steps": 1})
    return msgpack.packb(frame, use_bin_type=True)


def test_bad_frames_get_error_replies_while_another_client_is_served(served, depalletize_layout):
    obs = small_obs(depalletize_layout)
    good = encode_request(obs, seed=1, request_id=0)
    bad, _ = raw_client(served.url)
    other, _ = raw_client(served.url)
    refused = served.server.refused
    for i, kind in enumerate(BAD_FRAMES):
        bad.send(bad_frame(kind, obs, good))
        answer = bad.recv(timeout=30)
        assert isinstance(answer, str) and answer.startswith("error: "), f"{kind}: {answer!r}"
        other.send(encode_request(obs, seed=1, request_id=i))  # the other robot keeps getting chunks
        assert decode_reply(other.recv(timeout=30), 16, 18).request_id == i, kind
    assert served.server.refused - refused == len(BAD_FRAMES)
    bad.send(good)  # the connection that sent them is still served
    assert decode_reply(bad.recv(timeout=30), 16, 18).request_id == 0
    # an oversized frame: websockets closes that connection with 1009 and the reason; the other is unaffected
    bad.send(b"\0" * (5 << 20))
    with pytest.raises(ConnectionClosed) as closed:
        bad.recv(timeout=30)
    assert closed.value.rcvd.code == 1009
    # a slow client: connects and never finishes the handshake; dropped after the handshake deadline
    slow = socket.create_connection(("127.0.0.1", served.port))
    slow.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
    other.send(encode_request(obs, request_id="after"))
    assert decode_reply(other.recv(timeout=30), 16, 18).request_id == "after"
    slow.settimeout(10)
    assert slow.recv(100) == b""  # the server closed it
    other.close()


def test_healthz_and_the_api_key(tiny_runtime, metadata, depalletize_layout):
    config = ServerConfig(port=0, api_key="s3cret")
    with ServerThread(PolicyServer(tiny_runtime, metadata, config)) as served:
        with urllib.request.urlopen(f"http://127.0.0.1:{served.port}/healthz", timeout=5) as r:
            assert r.status == 200 and r.read() == b"OK\n"
        for headers in (None, {"Authorization": "Api-Key wrong"}):
            with pytest.raises(InvalidStatus) as refused:
                raw_client(served.url, additional_headers=headers)
            assert refused.value.response.status_code == 401
        with pytest.raises(CheckpointError, match="HTTP 401"):
            fetch_metadata(served.url)
        conn, meta = raw_client(served.url, additional_headers={"Authorization": "Api-Key s3cret"})
        assert meta["checkpoint_sha256"] == metadata.checkpoint_sha256
        conn.close()


# -- the robot side ---------------------------------------------------------------------------------------------


class Gate:
    """A ChunkPolicy stand-in for the server's model whose calls can be made slow: the deadline path."""

    def __init__(self, runtime):
        self.runtime, self.delay_s = runtime, 0.0

    @property
    def expects(self):
        return self.runtime.expects

    def predict(self, obs, seed=None):
        time.sleep(self.delay_s)
        return self.runtime.predict(obs, seed)


def test_remote_policy_holds_on_late_closed_and_unreachable_then_reconnects(tiny_runtime, metadata,
                                                                            depalletize_layout):
    gate = Gate(tiny_runtime)
    server = ServerThread(PolicyServer(gate, metadata, ServerConfig(port=0))).start()
    url, port = server.url, server.port
    lines: list[str] = []
    remote = RemotePolicy(url, depalletize_layout, timeout_s=0.5, backoff_s=(0.05, 0.2), log=lines.append)
    obs = small_obs(depalletize_layout)
    try:
        np.testing.assert_allclose(remote.predict_chunk(obs, seed=2), tiny_runtime.predict_chunk(obs, seed=2),
                                   rtol=1e-5, atol=1e-5)
        gate.delay_s = 1.0  # late: the call raises at its deadline, naming the server and the wait
        with pytest.raises(RemotePolicyError, match=rf"policy server {url}: no reply within 500 ms"):
            remote.predict_chunk(obs)
        gate.delay_s, remote.timeout_s = 0.0, 30.0  # the late reply comes before the next one: dropped, not executed
        chunk = remote.predict_chunk(obs, seed=3)
        assert remote.stale_replies == 1
        np.testing.assert_allclose(chunk, tiny_runtime.predict_chunk(obs, seed=3), rtol=1e-5, atol=1e-5)
        server.stop()  # closed connection, then unreachable: raised at once, naming the server
        with pytest.raises(RemotePolicyError, match=rf"policy server {url} (lost|unreachable)"):
            remote.predict_chunk(obs)
        with pytest.raises(RemotePolicyError, match=rf"policy server {url} unreachable for"):  # raised at once
            remote.predict_chunk(obs)
        assert remote.problem().startswith(f"policy server {url} unreachable for")  # the node holds on it
        server = ServerThread(PolicyServer(gate, metadata, ServerConfig(port=port))).start()
        deadline = time.monotonic() + 20
        while not remote.connected and time.monotonic() < deadline:
            time.sleep(0.05)
        assert remote.connected and remote.problem() == "" and any("answers again" in line for line in lines)
        assert remote.predict_chunk(obs).shape == (16, 18)
    finally:
        remote.close()
        server.stop()


def test_a_server_that_does_not_fit_the_robot_stops_the_start(tiny_runtime, metadata, depalletize_layout):
    from dataclasses import replace

    wrong = replace(metadata, cameras={"observation.images.cam_head": (224, 224)})
    with ServerThread(PolicyServer(tiny_runtime, wrong, ServerConfig(port=0))) as served:
        with pytest.raises(CheckpointError, match=r"does not fit this robot:\n  - cameras: the server's"):
            RemotePolicy(served.url, depalletize_layout, timeout_s=1.0)
    with pytest.raises(CheckpointError, match=r"policy server ws://127.0.0.1:9 cannot be reached"):
        RemotePolicy("ws://127.0.0.1:9", depalletize_layout, timeout_s=1.0, connect_timeout_s=1.0)


def test_bench_server_times_every_row(tiny_checkpoint, tmp_path):
    from groot_ros.bench.server import ServerBenchConfig, format_server_report, run_server_bench

    report = run_server_bench(ServerBenchConfig(checkpoint=tiny_checkpoint.pretrained_model, workdir=tmp_path,
                                                calls=2, warmup=0))
    assert [(r["images"], r["wire"]) for r in report["rows"]] == [
        ("3 x 224x224", "raw"), ("3 x 224x224", "JPEG q90"), ("3 x 480x640", "raw"), ("3 x 480x640", "JPEG q90")]
    assert all(r["overhead_p50"] > 0 and r["frame_kb"] > 0 for r in report["rows"])
    assert len(report["two_robots"]) == 2
    assert "| 3 x 480x640 | JPEG q90 |" in format_server_report(report)
