"""Runs every rostest file in test/rostest through `rostest groot_ros <file>`, so `make test` ends in one
pytest summary. rostest starts its own master on a free port; results go to a temporary folder."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow]
ROSTESTS = sorted((Path(__file__).resolve().parent / "rostest").glob("*.test"))


def test_the_rostest_folder_is_not_empty():
    """A parametrization over nothing would skip silently."""
    assert ROSTESTS, "no .test files in test/rostest"


@pytest.mark.parametrize("test_file", ROSTESTS, ids=[p.stem for p in ROSTESTS])
def test_rostest_passes(test_file, tmp_path):
    env = dict(os.environ, ROS_LOG_DIR=str(tmp_path / "log"))
    env.pop("ROS_MASTER_URI", None)  # the roscore fixture's master must not leak /use_sim_time and friends
    done = subprocess.run(["rostest", "--results-base-dir", str(tmp_path / "results"), "groot_ros", test_file.name],
                          env=env, capture_output=True, text=True, timeout=600)
    reports = "\n".join(p.read_text()[-4000:] for p in (tmp_path / "results").rglob("rosunit-*.xml"))
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-2000:]}\n{reports}"
