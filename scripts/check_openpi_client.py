"""openpi's own client against `python -m groot_ros serve`, by hand, in a scratch venv (openpi-client 0.1.2 pins
numpy < 2, so it cannot share groot_ros's lock; docs/policy_server.md has the commands):
    python3 -m venv /tmp/openpi_venv && /tmp/openpi_venv/bin/pip install openpi-client==0.1.2 typing_extensions
    /tmp/openpi_venv/bin/python scripts/check_openpi_client.py [--port 8000 --api-key KEY]
It gets the metadata, one chunk, and checks that a bad request raises (openpi's client raises on a text frame)."""

import argparse

import numpy as np
from openpi_client.websocket_client_policy import WebsocketClientPolicy

parser = argparse.ArgumentParser()
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=8000)
parser.add_argument("--api-key", default=None)
args = parser.parse_args()

client = WebsocketClientPolicy(args.host, args.port, api_key=args.api_key)
meta = client.get_server_metadata()
print("metadata:", {k: meta[k] for k in ("protocol", "layout", "chunk_size", "cameras", "default_task")})
rng = np.random.default_rng(0)
obs = {"observation.state": np.zeros(sum(d for _, d in meta["state"]), np.float32), "task": meta["default_task"],
       "seed": 0, "request_id": 1}
for key, (h, w) in meta["cameras"].items():
    obs[key] = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
reply = client.infer(obs)
assert reply["actions"].shape == (meta["chunk_size"], sum(d for _, d in meta["action"])), reply["actions"].shape
print("actions", reply["actions"].shape, reply["actions"].dtype, "request_id", reply["request_id"],
      "server_timing", {k: round(v, 2) for k, v in reply["server_timing"].items()})
try:
    client.infer({"observation.state": np.zeros(3, np.float32)})
    raise SystemExit("a bad request did not raise")
except RuntimeError as exc:
    print("a bad request raises:", str(exc).splitlines()[1][:120])
print("openpi-client: OK")
