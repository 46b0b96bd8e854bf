#!/usr/bin/env bash
# Fine-tune GR00T N1.5 on a LeRobot v3.0 dataset with lerobot-train (through `python -m groot_ros train`).
# Settings come from the environment; the defaults are the seed project's (batch 8, 40k steps):
#   DATASET_ROOT=/data/kuavo_depalletize scripts/train_groot.sh
#   RESUME=true scripts/train_groot.sh             # continue OUTPUT_DIR from checkpoints/last (STEPS: new total)
#   NUM_GPUS=4 scripts/train_groot.sh              # accelerate launch --multi_gpu --num_processes=4
# Anything after the script name goes to `python -m groot_ros train` (e.g. `-- --policy.tune_visual=true`).
# The exact command is printed before it runs; DRY_RUN=true prints it and stops.
set -euo pipefail
here="$(dirname "$(readlink -f "$0")")"

DATASET_ROOT="${DATASET_ROOT:-}"
OUTPUT_DIR="${OUTPUT_DIR:-outputs/train/groot_depalletize}"
BASE_MODEL="${BASE_MODEL:-nvidia/GR00T-N1.5-3B}"   # a local directory, or a hub id already in the HF cache
EAGLE_ASSETS="${EAGLE_ASSETS:-}"                   # local Eagle tokenizer/processor assets (default: LeRobot's)
LAYOUT="${LAYOUT:-depalletize}"
ROBOT="${ROBOT:-4_pro}"
BATCH_SIZE="${BATCH_SIZE:-8}"
STEPS="${STEPS:-40000}"
SAVE_FREQ="${SAVE_FREQ:-4000}"
LOG_FREQ="${LOG_FREQ:-200}"
NUM_WORKERS="${NUM_WORKERS:-4}"
DEVICE="${DEVICE:-auto}"
RESUME="${RESUME:-false}"
NUM_GPUS="${NUM_GPUS:-1}"
WANDB="${WANDB:-false}"
DRY_RUN="${DRY_RUN:-false}"
# The project environment when it is set up (scripts/in-env), else the active Python.
if [ -z "${PYTHON:-}" ]; then
  if "$here/in-env" true 2>/dev/null; then PYTHON="$here/in-env python"; else PYTHON=python; fi
fi

args=(--layout "$LAYOUT" --robot "$ROBOT" --output-dir "$OUTPUT_DIR" --base-model "$BASE_MODEL"
      --batch-size "$BATCH_SIZE" --steps "$STEPS" --save-freq "$SAVE_FREQ" --log-freq "$LOG_FREQ"
      --num-workers "$NUM_WORKERS" --device "$DEVICE" --num-gpus "$NUM_GPUS")
[ -n "$DATASET_ROOT" ] && args+=(--dataset-root "$DATASET_ROOT")
[ -n "$EAGLE_ASSETS" ] && args+=(--eagle-assets "$EAGLE_ASSETS")
[ "$RESUME" = true ] && args+=(--resume)
[ "$WANDB" = true ] && args+=(--wandb)
[ "$DRY_RUN" = true ] && args+=(--dry-run)

# shellcheck disable=SC2086 - PYTHON may be "scripts/in-env python"
exec $PYTHON -m groot_ros train "${args[@]}" "$@"
