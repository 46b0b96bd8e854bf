"""`python -m groot_ros serve`: one loaded policy behind a websocket, speaking openpi's protocol (policy/wire.py).

Why this shape: the robot PC runs the 100 Hz loop, the model wants a GPU that is often another machine, and the
existing ways of splitting them pickle frames over an open port or block the robot on a dead server. Here:
- openpi's frames (msgpack-numpy, metadata on connect, an error as a text frame, /healthz), so openpi-client's
  WebsocketClientPolicy works unchanged; nothing from the wire is unpickled or torch-loaded;
- every request is checked against the served policy before the model sees it; a bad one gets a text-frame error
  and the connection stays usable, and no client can stall another (each connection is its own coroutine; the
  model runs on one worker thread, requests in arrival order);
- loopback unless told otherwise, an api key (openpi's `Authorization: Api-Key KEY` header) when given, a frame
  size limit (websockets closes an oversized frame with 1009 and the reason), a handshake deadline.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import http
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from groot_ros.policy.base import ChunkPolicy, Prediction
from groot_ros.policy.wire import Request, ServerMetadata, WireError, decode_request, encode_reply, pack

log = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"  # loopback: another machine reaches it only when told (--host 0.0.0.0)
    port: int = 8000  # 0: any free port (tests)
    api_key: str = ""  # "": no key asked
    max_frame_bytes: int = 16 << 20  # three raw 480x640 cameras are 2.8 MB
    handshake_timeout_s: float = 5.0  # a client that connects and does not finish the handshake is dropped
    ping_timeout_s: float = 20.0  # a client that stops answering pings is dropped


def checkpoint_sha256(checkpoint: Path) -> str:
    """The checkpoint's identity: sha256 over its top-level files' names and bytes (weights, config, processors);
    the same run copied to another machine has the same one."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(checkpoint).iterdir() if p.is_file()):
        digest.update(path.name.encode() + b"\0")
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()


class PolicyServer:
    """Serves one ChunkPolicy. `run` is the asyncio entry point; ServerThread runs it beside other work."""

    def __init__(self, policy: ChunkPolicy, metadata: ServerMetadata, config: ServerConfig = ServerConfig()):
        self.policy = policy
        self.metadata = metadata
        self.config = config
        self.served = 0  # replies with a chunk
        self.refused = 0  # error replies
        self._metadata_frame = pack(metadata.to_wire())
        self._model = ThreadPoolExecutor(max_workers=1, thread_name_prefix="groot_serve_model")

    # -- HTTP side: /healthz and the api key, before the websocket handshake -----------------------------------

    def _process_request(self, connection: Any, request: Any) -> Any:
        if request.path == "/healthz":
            return connection.respond(http.HTTPStatus.OK, "OK\n")
        if self.config.api_key:
            given = request.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Api-Key {self.config.api_key}".encode()):
                log.warning("refused %s: %s api key", connection.remote_address, "wrong" if given else "no")
                return connection.respond(http.HTTPStatus.UNAUTHORIZED,
                                          "this policy server needs its api key (header 'Authorization: Api-Key "
                                          "KEY')\n")
        return None

    # -- one connection -------------------------------------------------------------------------------------

    def _predict(self, request: Request, received: float) -> tuple[Prediction, float, float]:
        started = time.perf_counter()
        kwargs: dict[str, Any] = {"seed": request.seed}
        if request.prefix is not None:  # only when sent: engines without real-time chunking take no prefix
            kwargs["prefix"] = request.prefix
        prediction = self.policy.predict(request.observation, **kwargs)
        return prediction, (started - received) * 1e3, (time.perf_counter() - started) * 1e3

    async def _handle(self, ws: Any) -> None:
        from websockets.exceptions import ConnectionClosed

        peer = ws.remote_address
        log.info("client %s connected", peer)
        loop = asyncio.get_running_loop()
        try:
            await ws.send(self._metadata_frame)
            async for frame in ws:
                received = time.perf_counter()
                try:
                    request = decode_request(frame, self.metadata.spec)
                except WireError as exc:
                    self.refused += 1
                    await ws.send(f"error: {exc}")
                    continue
                decoded = time.perf_counter()
                try:
                    prediction, queue_ms, infer_ms = await loop.run_in_executor(
                        self._model, self._predict, request, decoded)
                except Exception as exc:  # noqa: BLE001 - the client gets the reason; the server goes on
                    self.refused += 1
                    log.warning("request from %s failed: %s: %s", peer, type(exc).__name__, exc)
                    await ws.send(f"error: {type(exc).__name__}: {exc}")
                    continue
                timing = {"decode_ms": (decoded - received) * 1e3, "queue_ms": queue_ms, "infer_ms": infer_ms}
                await ws.send(encode_reply(prediction.chunk, prediction.normalized, timing, request.request_id,
                                           request.observation.stamp))
                self.served += 1
        except ConnectionClosed as exc:
            log.info("client %s gone: %s", peer, exc)
        finally:
            log.info("client %s disconnected", peer)

    # -- the server -----------------------------------------------------------------------------------------

    async def run(self, started: Callable[[int], None] = lambda _port: None,
                  stop: asyncio.Event | None = None) -> None:
        """Serves until `stop` is set (forever without one); `started(port)` once it accepts connections."""
        from websockets.asyncio.server import serve

        c = self.config
        if c.host not in LOOPBACK and not c.api_key:
            log.warning("serving on %s without --api-key: anyone who reaches port %d can use this GPU", c.host, c.port)
        async with serve(self._handle, c.host, c.port, process_request=self._process_request, compression=None,
                         max_size=c.max_frame_bytes, open_timeout=c.handshake_timeout_s,
                         ping_timeout=c.ping_timeout_s) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            started(port)
            await (stop.wait() if stop is not None else asyncio.Future())

    def close(self) -> None:
        self._model.shutdown(wait=False, cancel_futures=True)


class ServerThread:
    """A PolicyServer on its own event loop thread (tests, the bench): `url` once started, `stop()` ends it."""

    def __init__(self, server: PolicyServer):
        self.server = server
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="groot_serve", daemon=True)

    def _main(self) -> None:
        async def main() -> None:
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            await self.server.run(self._started, self._stop)

        try:
            asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 - reported by start()
            self._error = exc
            self._ready.set()

    def _started(self, port: int) -> None:
        self.port = port
        self._ready.set()

    @property
    def url(self) -> str:
        return f"ws://{self.server.config.host}:{self.port}"

    def start(self, timeout_s: float = 10.0) -> ServerThread:
        self._thread.start()
        if not self._ready.wait(timeout_s) or self._error is not None:
            raise RuntimeError(f"policy server did not start: {self._error!r}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(5.0)
        self.server.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *_exc: Any) -> None:
        self.stop()


def served_metadata(choice: Any, policy: ChunkPolicy, task: str, engine: str, max_frame_bytes: int) -> ServerMetadata:
    """The metadata frame for a checkpoint loaded with the layout policy/matching.py chose (a LayoutChoice)."""
    from groot_ros import __version__

    layout, inputs = choice.layout, choice.inputs
    return ServerMetadata(
        checkpoint=str(inputs.path), checkpoint_sha256=checkpoint_sha256(inputs.path), layout=layout.name,
        state=tuple((c.name, c.dim) for c in layout.state), action=tuple((c.name, c.dim) for c in layout.action),
        state_names=tuple(layout.state_feature_names), action_names=tuple(layout.action_feature_names),
        cameras={key: tuple(inputs.image_sizes.get(key, (0, 0))) for key in policy.expects.camera_keys},
        chunk_size=policy.expects.chunk_size, model_step_s=float(layout.model_action_dt), default_task=task,
        head=inputs.head, engine=engine, version=__version__, max_frame_bytes=max_frame_bytes)
