"""The robot side of the policy server: a ChunkPolicy whose model runs on another machine (policy/server.py).

Because it is a ChunkPolicy, the node's control loop, safety envelope and state machine are unchanged: the model
call happens on the node's inference worker, never on the control thread. What a network adds, it turns into
the failures the runner already holds on (a raising model call: "inference failed: ..."), each naming the server:
- a reply not back `timeout_s` after the call: raised then, one control period before the watchdog's
  max_inference_latency_s, so the hold names the server and the latency rather than only a number;
- a closed connection or an unreachable server: raised at once; a background thread reconnects with backoff,
  and checks the server still serves the checkpoint the node started with, so `~resume` works once it answers;
- a reply to an earlier request (it came after its deadline) is dropped, never executed.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from groot_ros.core.images import resize_area
from groot_ros.core.layout import Layout
from groot_ros.core.observation import Observation
from groot_ros.core.prefix import ChunkPrefix
from groot_ros.policy.base import ChunkPolicy, PolicyInputs, Prediction, PredictTimings
from groot_ros.policy.checkpoint import CheckpointError
from groot_ros.policy.wire import ServerMetadata, WireError, decode_reply, encode_request, unpack

API_KEY_ENV = "GROOT_POLICY_SERVER_KEY"  # the key stays out of the ROS parameter server and the launch files


class RemotePolicyError(RuntimeError):
    """The server did not answer in time, closed the connection, cannot be reached, or answered wrongly."""


def _connect(url: str, api_key: str, timeout_s: float) -> tuple[Any, ServerMetadata]:
    """(connection, metadata): websockets' blocking client, the metadata frame read within `timeout_s`."""
    from websockets.sync.client import connect

    headers = {"Authorization": f"Api-Key {api_key}"} if api_key else None
    conn = connect(url, additional_headers=headers, open_timeout=timeout_s, compression=None, max_size=64 << 20,
                   close_timeout=0.5, legacy=True)
    try:
        metadata = ServerMetadata.from_wire(unpack(conn.recv(timeout=timeout_s)))
    except BaseException:
        conn.close()
        raise
    return conn, metadata


def _why(exc: BaseException) -> str:
    from websockets.exceptions import InvalidStatus

    if isinstance(exc, InvalidStatus):
        return f"HTTP {exc.response.status_code}: {bytes(exc.response.body or b'').decode(errors='replace').strip()}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def fetch_metadata(url: str, api_key: str = "", timeout_s: float = 10.0) -> ServerMetadata:
    """What the server serves (start-up: the layout is chosen from it as from a checkpoint)."""
    try:
        conn, metadata = _connect(url, api_key, timeout_s)
    except WireError as exc:
        raise CheckpointError(f"policy server {url}: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - refused, timed out, unauthorized: one line naming the server
        raise CheckpointError(f"policy server {url} cannot be reached: {_why(exc)}") from exc
    conn.close()
    return metadata


def metadata_problems(metadata: ServerMetadata, layout: Layout) -> list[str]:
    """The server's policy against the robot's layout and cameras, as a local checkpoint is checked."""
    problems = []
    for side, theirs, ours in (("state", metadata.state, layout.state), ("action", metadata.action, layout.action)):
        mine = tuple((c.name, c.dim) for c in ours)
        if tuple(theirs) != mine:
            problems.append(f"{side}: the server's {' + '.join(f'{n} {d}' for n, d in theirs)}, this robot's "
                            f"layout '{layout.name}' {' + '.join(f'{n} {d}' for n, d in mine)}")
    if sorted(metadata.cameras) != sorted(layout.camera_keys):
        problems.append(f"cameras: the server's {sorted(metadata.cameras)}, this robot's {sorted(layout.camera_keys)}")
    return problems


class RemotePolicy(ChunkPolicy):
    """predict() sends one request and waits at most `timeout_s` for its reply; it never retries in the call."""

    name = "policy server"

    def __init__(self, url: str, layout: Layout, *, timeout_s: float, api_key: str = "", jpeg_quality: int = 0,
                 connect_timeout_s: float = 5.0, backoff_s: tuple[float, float] = (0.2, 2.0),
                 log: Callable[[str], None] = lambda _line: None):
        self.url = url
        self.layout = layout
        self.timeout_s = timeout_s
        self.api_key = api_key
        self.jpeg_quality = jpeg_quality
        self.connect_timeout_s = connect_timeout_s
        self.backoff_s = backoff_s
        self.log = log
        self.stale_replies = 0  # replies to earlier requests, dropped
        self.last_latency_s: float | None = None
        self._ids = itertools.count(1)
        self._lock = threading.Lock()  # guards _conn, _down_since, _down_why
        self._wake = threading.Event()
        self._closed = threading.Event()
        conn, self.metadata = self._open()  # start-up: an unreachable server is an error now, not a hold later
        problems = metadata_problems(self.metadata, layout)
        if problems:
            conn.close()
            raise CheckpointError(f"policy server {url} (checkpoint {self.metadata.checkpoint} there) does not fit "
                                  "this robot:\n  - " + "\n  - ".join(problems))
        self._conn: Any = conn
        self._down_since: float | None = None
        self._down_why = ""
        self._reconnector = threading.Thread(target=self._reconnect_loop, name="groot_policy_server_reconnect",
                                             daemon=True)
        self._reconnector.start()

    def _open(self) -> tuple[Any, ServerMetadata]:
        try:
            return _connect(self.url, self.api_key, self.connect_timeout_s)
        except WireError as exc:
            raise CheckpointError(f"policy server {self.url}: {exc}") from exc
        except Exception as exc:  # noqa: BLE001
            raise CheckpointError(f"policy server {self.url} cannot be reached: {_why(exc)}") from exc

    @property
    def expects(self) -> PolicyInputs:
        m = self.metadata
        return PolicyInputs(m.state_dim, m.action_dim, tuple(m.cameras), m.chunk_size)

    @property
    def connected(self) -> bool:
        with self._lock:
            return self._conn is not None

    def problem(self) -> str:
        """Why no chunk can come now ("" when connected): the node holds on it like on a stale input, and
        ~resume (or auto_resume) waits until the server answers again."""
        with self._lock:
            if self._conn is not None:
                return ""
            return (f"policy server {self.url} unreachable for {time.monotonic() - self._down_since:.1f} s "
                    f"({self._down_why}); reconnecting")

    # -- the call -------------------------------------------------------------------------------------------

    def predict(self, obs: Observation, seed: int | None = None, prefix: ChunkPrefix | None = None) -> Prediction:
        with self._lock:
            conn = self._conn
        if conn is None:
            raise RemotePolicyError(self.problem() or f"policy server {self.url}: reconnected meanwhile")
        request_id = next(self._ids)
        t0 = time.perf_counter()
        deadline = t0 + self.timeout_s
        # at the size the model takes, as the server's engine would resize them: the same input, a smaller frame
        sizes = self.metadata.cameras
        obs = dataclasses.replace(obs, images={k: img if img.shape[:2] == tuple(sizes.get(k, img.shape[:2]))
                                                else resize_area(img, sizes[k]) for k, img in obs.images.items()})
        try:
            conn.send(encode_request(obs, seed=seed, request_id=request_id, prefix=prefix,
                                     jpeg_quality=self.jpeg_quality))
            while True:
                left = deadline - time.perf_counter()
                if left <= 0:
                    raise TimeoutError
                reply = decode_reply(conn.recv(timeout=left), self.metadata.chunk_size, self.metadata.action_dim)
                if reply.request_id == request_id:
                    break
                self.stale_replies += 1  # the reply to a request that missed its deadline: never executed
        except TimeoutError:
            raise RemotePolicyError(f"policy server {self.url}: no reply within {self.timeout_s * 1e3:.0f} ms "
                                    f"(request {request_id}; last reply took "
                                    + (f"{self.last_latency_s * 1e3:.0f} ms)" if self.last_latency_s else "-)")) from None
        except WireError as exc:
            raise RemotePolicyError(f"policy server {self.url}: {exc}") from exc
        except Exception as exc:  # noqa: BLE001 - closed, reset: reconnect in the background, hold now
            self._lost(conn, _why(exc))
            raise RemotePolicyError(f"policy server {self.url} lost after {(time.perf_counter() - t0) * 1e3:.0f} ms "
                                    f"({_why(exc)}); reconnecting") from exc
        total = time.perf_counter() - t0
        self.last_latency_s = total
        server_ms = reply.server_timing.get("infer_ms", 0.0) + reply.server_timing.get("queue_ms", 0.0)
        stages = {"server": server_ms, "network": max(total * 1e3 - server_ms, 0.0)}
        normalized = reply.normalized if reply.normalized is not None else np.full_like(reply.actions, np.nan)
        return Prediction(normalized, reply.actions.astype(np.float64), PredictTimings(stages))

    # -- connection upkeep ----------------------------------------------------------------------------------

    def _lost(self, conn: Any, why: str) -> None:
        with self._lock:
            if self._conn is conn:
                self._conn, self._down_since, self._down_why = None, time.monotonic(), why
        conn.close()
        self.log(f"policy server {self.url} lost ({why}); reconnecting")
        self._wake.set()

    def _reconnect_loop(self) -> None:
        wait = self.backoff_s[0]
        while not self._closed.is_set():
            if self.connected:
                self._wake.wait(1.0)
                self._wake.clear()
                wait = self.backoff_s[0]
                continue
            try:
                conn, metadata = _connect(self.url, self.api_key, self.connect_timeout_s)
            except Exception as exc:  # noqa: BLE001 - still down: try again later
                with self._lock:
                    self._down_why = _why(exc)
                self._closed.wait(wait)
                wait = min(wait * 2, self.backoff_s[1])
                continue
            if metadata.checkpoint_sha256 != self.metadata.checkpoint_sha256 or metadata_problems(metadata,
                                                                                                 self.layout):
                conn.close()
                with self._lock:
                    self._down_why = (f"it now serves checkpoint {metadata.checkpoint} ({metadata.checkpoint_sha256[:12]}),"
                                      f" the node started with {self.metadata.checkpoint_sha256[:12]}: restart the node")
                self._closed.wait(self.backoff_s[1])
                continue
            with self._lock:
                self._conn, self._down_since = conn, None
            self.log(f"policy server {self.url} answers again (~resume to continue)")

    def close(self) -> None:
        self._closed.set()
        self._wake.set()
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def remote_inputs(metadata: ServerMetadata, url: str):
    """The server's metadata as the CheckpointInputs policy/matching.py chooses a layout from."""
    from groot_ros.policy.matching import CheckpointInputs, TrainingData

    data = TrainingData(None, None, metadata.state_names, metadata.action_names, (metadata.default_task,),
                        f"policy server {url}")
    return CheckpointInputs(Path(metadata.checkpoint), metadata.state_dim, metadata.action_dim,
                            tuple(sorted(metadata.cameras)), data, dict(metadata.cameras), metadata.head)
