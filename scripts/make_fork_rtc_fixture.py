"""Writes test/fixtures/fork_rtc/: what our users' fork's RTC (dev branch) does with a prefix, from its own code.

Development only, never in CI: it runs the fork's model code, so its `src/` must come first on PYTHONPATH, over
our venv's stock LeRobot 0.4.2 (same torch and transformers), as scripts/make_fork_fixtures.py does:

    git -C <fork git dir> archive dev src | tar -x -C /tmp/fork_dev
    PYTHONPATH=/tmp/fork_dev/src scripts/in-env python scripts/make_fork_rtc_fixture.py \\
        --commit $(git -C <fork git dir> rev-parse dev)

On the dev branch's tiny checkpoint (test/fixtures/fork_heads/dev_shared_xattn, the branch's default head) and
the first recorded observation, with a prefix (another seed's chunk, three rows on; three frozen rows) and noise
seed 0, it records:
- "as run": what their eval/eval.py does (policy.config.rtc_config = their RTCConfig: execution horizon 16, max
  guidance weight 1.0, EXP; init_rtc_processor(); predict_action_chunk(..., inference_delay, prev_chunk_left_over)),
  next to the same call without a prefix, and whether the model then has RTC on and a processor;
- "wired": their action head's get_action called as their GR00TN15.get_action calls it, but given the prefix
  keywords and an RTC processor (debug tracker on), i.e. what their RTC loop computes once the prefix reaches it:
  the time each denoising step hands LeRobot's RTC module, the guidance weight it gets, and the chunk.
test/test_fork_rtc.py reads the numbers; our code never imports theirs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "test" / "fixtures"
SOURCE = FIXTURES / "fork_heads" / "dev_shared_xattn"
OUT = FIXTURES / "fork_rtc"
DELAY = 3
PREFIX_SEED, NOISE_SEED = 7, 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--commit", required=True, help="the fork commit whose src/ is on PYTHONPATH")
    args = ap.parse_args()

    import lerobot
    import torch

    if "fork" not in lerobot.__file__ and "humanoid_groot" not in lerobot.__file__:
        raise SystemExit(f"lerobot comes from {lerobot.__file__}: put the fork's src/ first on PYTHONPATH")
    from lerobot.configs.policies import PreTrainedConfig
    from lerobot.configs.types import RTCAttentionSchedule
    from lerobot.policies.groot.processor_groot import make_groot_pre_post_processors
    from lerobot.policies.rtc.configuration_rtc import RTCConfig
    from lerobot.policies.rtc.modeling_rtc import RTCProcessor
    from safetensors.torch import load_model

    from groot_ros.core.layout import load_layout
    from groot_ros.policy.assets import stage_processor_dir
    from groot_ros.policy.attention import choose_attention
    from groot_ros.policy.runtime import build_groot_policy
    from groot_ros.policy.tiny import default_stats

    ckpt = SOURCE / "pretrained_model"
    processor_dir = stage_processor_dir(FIXTURES / "fork_heads" / "eagle_assets")
    config = PreTrainedConfig.from_pretrained(str(ckpt))
    config.device, config.tokenizer_assets_repo = "cpu", str(processor_dir)
    policy = build_groot_policy(FIXTURES / "fork_heads" / "base_model" / "config.json", processor_dir,
                                choose_attention("cpu"), config)
    missing, unexpected = load_model(policy, str(ckpt / "model.safetensors"), strict=False, device="cpu")
    if missing or unexpected:
        raise SystemExit(f"fixture weights do not fit the fork's model: {missing} {unexpected}")
    policy.eval()
    stats = default_stats(load_layout("arms_claws", "5_wheel", "sim"))
    pre, _ = make_groot_pre_post_processors(
        config, {k: {s: torch.as_tensor(v) for s, v in d.items()} for k, d in stats.items()})
    data = np.load(SOURCE / "expected.npz")
    batch = {"observation.state": torch.as_tensor(data["case0.state"]), "task": str(data["task"]),
             **{k[len("case0."):]: torch.from_numpy(data[k].copy()).permute(2, 0, 1) for k in data.files
                if k.startswith("case0.observation.images.")}}
    inputs = pre(batch)

    def chunk(**kwargs):
        torch.manual_seed(kwargs.pop("seed"))
        with torch.no_grad():
            return policy.predict_action_chunk(inputs, **kwargs)[0].float()

    prefix = chunk(seed=PREFIX_SEED)[DELAY:]  # normalized, 13 rows: the plan, three rows on
    rtc = RTCConfig(enabled=True, execution_horizon=16, max_guidance_weight=1.0,
                    prefix_attention_schedule=RTCAttentionSchedule.EXP, debug=True)
    plain = chunk(seed=NOISE_SEED)
    policy.config.rtc_config = rtc  # what eval/eval.py does
    policy.init_rtc_processor()
    model = policy._groot_model
    head = model.action_head
    as_run = chunk(seed=NOISE_SEED, inference_delay=DELAY, prev_chunk_left_over=prefix)
    as_run_state = {"model_rtc_enabled": bool(model._rtc_enabled()),
                    "action_head_has_rtc_processor": head.rtc_processor is not None}

    head.rtc_processor = RTCProcessor(rtc)  # wired: the prefix and a processor reach their RTC loop
    groot_inputs = {k: v for k, v in inputs.items() if k in {"state", "state_mask", "embodiment_id"}
                    or k.startswith("eagle_")}
    torch.manual_seed(NOISE_SEED)
    with torch.no_grad():
        backbone_inputs, action_inputs = model.prepare_input(groot_inputs)
        out = head.get_action(model.backbone(backbone_inputs), action_inputs, rtc_enabled=True,
                              inference_delay=DELAY, prev_chunk_left_over=prefix[None], execution_horizon=16)
    wired = out["action_pred"][0, :, : prefix.shape[1]].float()
    steps = head.rtc_processor.get_all_debug_steps()

    OUT.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT / "chunks.npz", prefix=prefix.numpy(), plain=plain.numpy(), as_run=as_run.numpy(),
                        wired=wired.numpy())
    (OUT / "SOURCE.json").write_text(json.dumps({
        "fork": "KKXiaoKang/humanoid_groot", "branch": "dev", "commit": args.commit,
        "checkpoint": "test/fixtures/fork_heads/dev_shared_xattn (case 0 observation)",
        "rtc_config": {"execution_horizon": 16, "max_guidance_weight": 1.0, "prefix_attention_schedule": "EXP"},
        "inference_delay": DELAY, "prefix_seed": PREFIX_SEED, "noise_seed": NOISE_SEED,
        "as_run": as_run_state,
        "wired_steps": [{"time": float(s.time), "guidance_weight": float(s.guidance_weight)} for s in steps],
    }, indent=2) + "\n")
    print(json.dumps(as_run_state), [(float(s.time), float(s.guidance_weight)) for s in steps])
    print("as run == plain:", bool(torch.equal(as_run, plain)),
          "| frozen rows, wired vs prefix (max abs):", float((wired[:DELAY] - prefix[:DELAY]).abs().max()),
          "| plain vs prefix:", float((plain[:DELAY] - prefix[:DELAY]).abs().max()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
