#!/usr/bin/env bash
# Regenerates the checked-in test bags (test/bags): 2 scripted demonstration episodes of 12 s on the stand-in
# sim, real Kuavo topic names and types (jpeg cameras at 96x128, lz4 chunks). The rostest replay case and the
# offline round-trip test read them; re-run after changing the sim, the demonstrator or the topics.
set -eo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
rm -f test/bags/episode_*.bag test/bags/tasks.json test/bags/episodes.json
scripts/in-env python -m groot_ros record-demos --out test/bags --episodes 2 --seconds 12 --seed 0 \
    --topics real --image-size 96 128 "$@"
du -ch test/bags/*.bag | tail -1
