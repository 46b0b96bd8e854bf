"""The model on a server, the node on the robot: `python -m groot_ros serve` (its own process) + the node with
policy_server:= + the stand-in, closed loop; the server killed mid-run holds naming it with no command outside the
envelope; restarted, `~resume` brings chunks back."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request

import pytest
import yaml

from conftest import _free_port, call
from groot_ros.sim.launcher import wait_until
from test_faults import _envelope_violations

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def serve(checkpoint, port: int, log) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "groot_ros", "serve", "--checkpoint", str(checkpoint),
                             "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def healthy() -> bool:
        assert proc.poll() is None, f"the server exited with {proc.returncode}"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    wait_until(healthy, 60, "the policy server's /healthz")
    return proc


def test_server_killed_holds_then_resume_brings_chunks_back(node_on_standin, tiny_checkpoint, depalletize_layout,
                                                            tmp_path):
    node = node_on_standin
    port = _free_port()
    url = f"ws://127.0.0.1:{port}"
    (tmp_path / "exec.yaml").write_text(yaml.safe_dump({"watchdog": {"auto_resume": False}}))
    log = open(tmp_path / "server.log", "w")
    server = serve(tiny_checkpoint.pretrained_model, port, log)
    try:
        node.start("sim_depalletize.launch", "seed:=0", f"policy_server:={url}",
                   f"execution_overrides:={tmp_path / 'exec.yaml'}", sim=None)
        node.wait_for(lambda s: s.state == "running" and s.chunks >= 3, 90, "chunks from the server")
        assert node.rospy.get_param("/groot_policy/resolved")["layout"] == "depalletize"
        with node.rec.lock:
            n0 = len(node.rec.arm)
        server.send_signal(signal.SIGKILL)
        server.wait(10)
        held = node.wait_for(lambda s: s.state == "holding" and f"policy server {url}" in s.reason, 10,
                             "a hold naming the server")
        time.sleep(1.0)  # the held pose keeps going out
        with node.rec.lock:
            window = list(node.rec.arm[n0:])
        bad, step = _envelope_violations(window, depalletize_layout)
        assert bad == 0 and len(window) > 50, (bad, step, len(window))
        assert node.rec.latest_status().state == "holding"  # no chunks while the server is gone

        server = serve(tiny_checkpoint.pretrained_model, port, log)


        def resumed() -> bool:  # a ~resume before the node has reconnected (backoff up to 2 s) holds again at once
            call(node.rospy, "/groot_policy/resume")
            try:
                node.wait_for(lambda s: s.state == "running" and s.chunks > held.chunks, 3, "a chunk after ~resume")
                return True
            except TimeoutError:
                return False

        wait_until(resumed, 40, "~resume bringing chunks back", node.watched)
        node.wait_for(lambda s: s.state == "running" and s.chunks >= held.chunks + 3, 30, "chunks back")
        with node.rec.lock:
            window = list(node.rec.arm[n0:])
        bad, step = _envelope_violations(window, depalletize_layout)
        assert bad == 0, (bad, step)
        print(f"hold reason: {held.reason}; largest arm step {step:.4f} rad over {len(window)} commands")
        assert node.stop_node() == 0, (node.folder / "launch.log").read_text()[-3000:]
    finally:
        server.kill()
        server.wait(10)
        log.close()
