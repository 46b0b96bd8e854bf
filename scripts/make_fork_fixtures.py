"""Writes test/fixtures/fork_heads/: tiny checkpoints saved by our users' fork, and the chunks the fork predicts.

Development only, never in CI: it runs the fork's own model code (KKXiaoKang/humanoid_groot), so its `src/` must
come first on PYTHONPATH, over our venv's stock LeRobot 0.4.2 (same torch and transformers):

    git -C <fork git dir> archive main src | tar -x -C /tmp/fork_main   # and `dev` into /tmp/fork_dev
    PYTHONPATH=/tmp/fork_main/src scripts/in-env python scripts/make_fork_fixtures.py --branch main \\
        --commit $(git -C <fork git dir> rev-parse main)
    PYTHONPATH=/tmp/fork_dev/src scripts/in-env python scripts/make_fork_fixtures.py --branch dev \\
        --commit $(git -C <fork git dir> rev-parse dev)

For each head variant of the branch it builds the fork's GrootPolicy from one plain tiny base config (which
does not name the variant: the fork's own defaults, or the variant's switches set while building only, as a
user who edits the fork's head defaults would), saves it with the fork's save path and processors, and records
the normalized chunks the fork's `predict_action_chunk` returns for fixed observations and noise seeds.
test/test_fork_heads.py checks that groot_ros, on stock LeRobot, reproduces them.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).resolve().parents[1] / "test" / "fixtures" / "fork_heads"
CAMERAS = ("observation.images.cam_head", "observation.images.cam_left", "observation.images.cam_right")
TASK = "Depalletize the box"
IMAGE = 56
HEAD_WIDTH = 16  # smaller than the tests' tiny model: four checkpoints are committed
# (variant directory, base-config switches of the fork's head used while building); {} = the branch's default
VARIANTS = {
    "main": {"main_multi": {}},
    "dev": {"dev_shared_xattn": {}, "dev_shared": {"use_cross_attention_arms": False},
            "dev_split": {"use_shared_arm_features": False}},
}
# (observation seed, noise seed) per recorded case
CASES = ((0, 0), (1, 7), (2, 123))


def observation(seed: int, layout, stats: dict) -> dict:
    rng = np.random.default_rng(seed)
    lo, hi = stats["observation.state"]["min"], stats["observation.state"]["max"]
    state = (lo + rng.uniform(0.1, 0.9, lo.shape) * (hi - lo)).astype(np.float32)
    return {"state": state, **{k: rng.integers(0, 256, (IMAGE, IMAGE, 3), dtype=np.uint8) for k in CAMERAS}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--branch", choices=sorted(VARIANTS), required=True)
    ap.add_argument("--commit", required=True, help="the fork commit whose src/ is on PYTHONPATH")
    args = ap.parse_args()

    import lerobot
    import torch

    if "humanoid_groot" not in lerobot.__file__ and "fork" not in lerobot.__file__:
        raise SystemExit(f"lerobot comes from {lerobot.__file__}: put the fork's src/ first on PYTHONPATH")
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.groot.configuration_groot import GrootConfig
    from lerobot.policies.groot.processor_groot import make_groot_pre_post_processors

    from groot_ros.core.layout import load_layout
    from groot_ros.policy.assets import stage_processor_dir
    from groot_ros.policy.attention import choose_attention
    from groot_ros.policy.runtime import build_groot_policy
    from groot_ros.policy.tiny import default_stats, tiny_base_config, write_eagle_assets

    layout = load_layout("arms_claws", "5_wheel", "sim")
    stats = default_stats(layout)
    assets = FIXTURES / "eagle_assets"
    base = FIXTURES / "base_model" / "config.json"
    if not base.is_file():
        vocab = write_eagle_assets(assets)
        base.parent.mkdir(parents=True, exist_ok=True)
        base.write_text(json.dumps(tiny_base_config(vocab, head_width=HEAD_WIDTH), indent=2, sort_keys=True) + "\n")
    processor_dir = stage_processor_dir(assets)
    for name, switches in VARIANTS[args.branch].items():
        out = FIXTURES / name
        raw = json.loads(base.read_text())
        raw["action_head_cfg"].update(switches)
        with tempfile.TemporaryDirectory() as tmp:
            built_from = Path(tmp) / "config.json"
            built_from.write_text(json.dumps(raw))
            config = GrootConfig(
                input_features={"observation.state": PolicyFeature(FeatureType.STATE, (16,)),
                                **{k: PolicyFeature(FeatureType.VISUAL, (3, IMAGE, IMAGE)) for k in CAMERAS}},
                output_features={"action": PolicyFeature(FeatureType.ACTION, (16,))},
                chunk_size=16, n_action_steps=16, embodiment_tag="new_embodiment", device="cpu", use_bf16=False,
                push_to_hub=False, tokenizer_assets_repo=str(processor_dir))
            torch.manual_seed(0)
            policy = build_groot_policy(built_from, processor_dir, choose_attention("cpu"), config)
        policy.eval()
        pre, post = make_groot_pre_post_processors(
            config, {k: {s: torch.as_tensor(v) for s, v in d.items()} for k, d in stats.items()})
        recorded: dict[str, np.ndarray] = {}
        for i, (obs_seed, noise_seed) in enumerate(CASES):
            obs = observation(obs_seed, layout, stats)
            batch = {"observation.state": torch.as_tensor(obs["state"]), "task": TASK,
                     **{k: torch.from_numpy(obs[k].copy()).permute(2, 0, 1) for k in CAMERAS}}
            inputs = pre(batch)
            torch.manual_seed(noise_seed)
            with torch.no_grad():
                chunk = policy.predict_action_chunk(inputs)[0].float().numpy()
            recorded.update({f"case{i}.{k}": v for k, v in obs.items()})
            recorded[f"case{i}.noise_seed"] = np.array(noise_seed)
            recorded[f"case{i}.normalized"] = chunk
        # What a user's checkpoint carries: LeRobot's hub ids, no path of this machine.
        defaults = GrootConfig()
        config.tokenizer_assets_repo, config.base_model_path = defaults.tokenizer_assets_repo, defaults.base_model_path
        policy.save_pretrained(str(out / "pretrained_model"))
        pre.save_pretrained(str(out / "pretrained_model"))
        post.save_pretrained(str(out / "pretrained_model"))
        np.savez_compressed(out / "expected.npz", task=np.array(TASK), **recorded)
        (out / "SOURCE.json").write_text(json.dumps({
            "fork": "KKXiaoKang/humanoid_groot", "branch": args.branch, "commit": args.commit,
            "head_switches_while_building": switches, "cases": [list(c) for c in CASES],
            "head_weights": sorted(k for k in policy.state_dict() if "decoder" in k or "task_log_sigma" in k)},
            indent=2) + "\n")
        print(f"{name}: {out} ({sum(p.numel() for p in policy.parameters()):,} parameters)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
