#!/usr/bin/env bash
# Re-resolves requirements.in in a scratch venv and writes requirements.lock (needs the network's PyPI).
set -euo pipefail
source "$(dirname "$(readlink -f "$0")")/env.sh"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
"$GROOT_PYTHON" -m venv --system-site-packages "$scratch/venv"
"$scratch/venv/bin/python" -m pip install -q --upgrade pip
"$scratch/venv/bin/python" -m pip install -q -r "$GROOT_ROOT/requirements.in"
{ echo "# Exact versions of every package in the groot_ros venv (Python 3.11, Linux x86_64)."
  echo "# Installed with --no-deps by scripts/setup.sh; regenerate from requirements.in with scripts/lock.sh."
  "$scratch/venv/bin/python" -m pip freeze --local --all | grep -v '^-e' | sort -f; } > "$GROOT_ROOT/requirements.lock"
echo "wrote $GROOT_ROOT/requirements.lock"
