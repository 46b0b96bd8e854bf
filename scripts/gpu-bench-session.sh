#!/usr/bin/env bash
# The GPU figures of docs/inference_speed.md, taken on a machine with a CUDA GPU and no network and no ROS (how
# issue 15's figures were taken): its own torch, plus the locked wheels of what it lacks, carried in WHEELS.
#   scripts/gpu-bench-session.sh STEP...   steps: env ckpt main ablation compile node server fp32 profile
# Environment: WHEELS (dir of .whl, default .whl), SRC (a copy of this repo's src/ and config/, default .),
# OUT (results, default artifacts/gpu), WORK (the random-weight checkpoint, default /tmp/groot_bench),
# SIZE/DEVICE (default full/cuda), DEADLINE (epoch seconds: steps that cannot start 60 s before it are skipped), ITERS (default 50).
# On a machine with this repo's venv, run `scripts/in-env python -m groot_ros bench-policy ...` instead.
set -uo pipefail
WHEELS=${WHEELS:-.whl} SRC=$(cd "${SRC:-.}" && pwd) OUT=${OUT:-artifacts/gpu} WORK=${WORK:-/tmp/groot_bench}
ITERS=${ITERS:-50} SIZE=${SIZE:-full} DEVICE=${DEVICE:-cuda} DEADLINE=${DEADLINE:-$(( $(date +%s) + 3600 ))}
mkdir -p "$OUT" "$WORK"
if [ ! -f /tmp/site/.done ] && ls "$WHEELS"/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    "$WHEELS"/*.whl && touch /tmp/site/.done || exit 1
fi
# The av stand-in (scripts/gpu_stubs) only where PyAV is missing: lerobot imports it at module level, inference
# never uses it.
export PYTHONPATH="$SRC/src:/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
python3 -c 'import av' 2>/dev/null || export PYTHONPATH="$PYTHONPATH:$SRC/scripts/gpu_stubs"
export GROOT_ROS_ROOT="$SRC" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
LOG="$OUT/log.txt"
BENCH=(python3 -m groot_ros bench-policy --size "$SIZE" --device "$DEVICE" --workdir "$WORK")

step() {  # step NAME COMMAND...: runs it with the time left, logs it, never stops the session
  local name=$1; shift
  local left=$(( DEADLINE - $(date +%s) - 10 ))
  if [ "$left" -lt 60 ]; then echo "=== $name: skipped, ${left}s left" | tee -a "$LOG"; return; fi
  echo "=== $name ($(date -u +%T), ${left}s left): $*" | tee -a "$LOG"
  local t0=$(date +%s)
  timeout "$left" "$@" 2>&1 | grep --line-buffered -v "use_fast" | tee -a "$LOG"
  echo "=== $name: exit ${PIPESTATUS[0]} after $(( $(date +%s) - t0 ))s" | tee -a "$LOG"
}

for s in "$@"; do
  case $s in
    env) step env bash -c 'nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv; python3 -c "import torch, transformers, lerobot, diffusers; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0), transformers.__version__, lerobot.__version__ if hasattr(lerobot, \"__version__\") else \"lerobot\", diffusers.__version__)"';;
    ckpt) step ckpt python3 -c "
import time; t=time.time()
from groot_ros.bench.policy import BenchConfig, prepare_checkpoint
from groot_ros.core.layout import load_layout
from pathlib import Path
print(prepare_checkpoint(BenchConfig(size='$SIZE', workdir=Path('$WORK')), load_layout('depalletize', '4_pro', 'sim')), f'{time.time()-t:.0f} s')";;
    main) step main "${BENCH[@]}" --dtype bfloat16 --iters "$ITERS" --warmup 5 --also cuda_graphs --profile 5 --json "$OUT/main.json";;
    ablation) step ablation "${BENCH[@]}" --dtype bfloat16 --iters "$ITERS" --warmup 3 --ablation --json "$OUT/ablation.json";;
    compile) step compile "${BENCH[@]}" --dtype bfloat16 --iters "$ITERS" --warmup 3 --compile --also cuda_graphs --profile 5 --json "$OUT/compile.json";;
    node) step node python3 -m groot_ros bench-node-path --size "$SIZE" --device "$DEVICE" --dtype bfloat16 --workdir "$WORK" --chunks 200 --json "$OUT/node.json";;
    server) step server-eager python3 -m groot_ros bench-server --size "$SIZE" --device "$DEVICE" --dtype bfloat16 --fast --workdir "$WORK" --calls "$ITERS" --json "$OUT/server_eager.json"
            step server-graphs python3 -m groot_ros bench-server --size "$SIZE" --device "$DEVICE" --dtype bfloat16 --cuda-graphs --workdir "$WORK" --calls "$ITERS" --json "$OUT/server_graphs.json";;
    fp32) step fp32 "${BENCH[@]}" --dtype float32 --iters 20 --warmup 3 --json "$OUT/fp32.json";;
    *) echo "unknown step $s" >&2;;
  esac
done
