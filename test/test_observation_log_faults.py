"""A disk error in the observation log (issue 23) drops the logging with a warning for /diagnostics; inference and
commanding go on, and no truncated .npz is left behind. In simulated time (test_runner's Rig), with a real
ENOSPC: the log's file-in-progress is a link to /dev/full."""

from __future__ import annotations

import os

from groot_ros.core.observation_log import PARTIAL, ObservationLog, read_entry
from test_runner import Rig


def test_a_full_disk_drops_the_observation_log_and_nothing_else(tmp_path):
    rig = Rig()
    rig.runner.obs_log = ObservationLog(tmp_path)
    rig.runner.start()
    rig.run(1.0)
    logged = sorted(tmp_path.glob("chunk_*.npz"))
    assert logged and rig.runner.status().warnings == ()
    os.symlink("/dev/full", tmp_path / PARTIAL)  # the next write hits "No space left on device"
    chunks = rig.runner.status().chunks
    rig.run(3.0)
    status = rig.runner.status()
    assert status.state == "running" and status.worker_error == "", status
    assert status.chunks > chunks + 1, "inference must go on"
    assert len(status.warnings) == 1 and "observation log off since chunk" in status.warnings[0]
    assert "No space left on device" in status.warnings[0], status.warnings
    assert any(level == "error" and "observation log off" in msg for level, msg in rig.logs)
    files = sorted(tmp_path.iterdir())
    assert files == logged, "no partial file and nothing written after the error"
    for path in files:
        read_entry(path)  # every .npz left is complete
    from groot_ros.ros.diagnostics import snapshot_of

    assert snapshot_of(status, False, 1.0).warnings == status.warnings  # what /diagnostics' "warnings" shows
