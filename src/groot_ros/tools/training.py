"""Fine-tune GR00T N1.5 with LeRobot's own trainer (`lerobot-train`), offline, on CPU or GPUs.

`lerobot-train --policy.type=groot` builds the model from base weights (`--policy.base_model_path`) and the
vendored Eagle code, which forces flash-attention: without flash_attn (CPU, or a GPU box without it) the build
fails. So we run LeRobot's training function in this process, inside `policy.attention.attention_override` with
the implementation `choose_attention` picks; with flash_attn on CUDA nothing changes. Several GPUs: the same
command under `accelerate launch`, each process doing the same. The exact command is printed before it runs.

`make_tiny_base_model` writes base weights of the tiny GR00T architecture (tiny_checkpoint's config and
tokenizer) so the whole path (train, resume, load in the runtime, eval-dataset) runs on a laptop CPU.

What a run saves names no path of this machine (`portable_checkpoints`): a checkpoint's config keeps LeRobot's hub
ids, the run's train_config.json names its dataset relative to the run directory, and a local base model's
config and local Eagle assets are copied beside each pretrained_model/ (not the base weights: inference does not
need them). A resume passes this machine's paths again on the command line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from groot_ros.core.layout import Layout
from groot_ros.policy.assets import BASE_MODEL_DIRNAME, EAGLE_ASSETS_DIRNAME
from groot_ros.policy.tiny import TinyCheckpoint

DEFAULT_BASE_MODEL = "nvidia/GR00T-N1.5-3B"
# Peak learning rate for the tiny model: GrootConfig's 1e-4 suits fine-tuning a pretrained 3B model; a tiny
# model trained from its starting weights for ~1000 steps needs 30x that (docs/tiny_training.md).
TINY_LR = 3e-3
LAST_CHECKPOINT = Path("checkpoints") / "last" / "pretrained_model"  # in a run directory: the last saved policy
TRAIN_CONFIG = LAST_CHECKPOINT / "train_config.json"


class TrainingError(ValueError):
    """The training run cannot start as asked; the message says why and what to do."""


@dataclass(frozen=True)
class TrainOptions:
    dataset_root: Path
    output_dir: Path
    base_model: str = DEFAULT_BASE_MODEL  # hub id (must be in the local HF cache offline) or a local directory
    eagle_assets: Path | None = None  # local Eagle tokenizer/processor assets; None: LeRobot's default repo
    batch_size: int = 8
    steps: int = 40_000
    save_freq: int = 4_000
    log_freq: int = 200
    num_workers: int = 4
    device: str = "auto"  # auto: cuda when available
    resume: bool = False
    num_gpus: int = 1
    wandb: bool = False
    job_name: str | None = None
    seed: int = 1000
    extra: tuple[str, ...] = field(default=())  # passed to lerobot-train as they are


def fan_in_init(model: Any) -> None:
    """Re-draws the action head's embodiment-specific linear weights with std 1/sqrt(fan_in).

    GR00T draws them with a fixed std of 0.02, sized for its 1024/1536-wide action head. At the tiny widths
    (32) every such layer shrinks its input about 7x: the state and the noisy action trajectory reach the DiT
    with std ~0.005, below the 0.02 position embedding, so the flow-matching head barely sees what it has to
    denoise and training stalls (docs/tiny_training.md). Same architecture, only the starting weights differ.
    """
    import torch
    from lerobot.policies.groot.action_head.flow_matching_action_head import CategorySpecificLinear

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, CategorySpecificLinear):
                module.W.normal_(0.0, module.W.shape[1] ** -0.5)  # W: (categories, fan_in, fan_out)


def make_tiny_base_model(out: str | Path, seed: int = 0, head_width: int = 32) -> TinyCheckpoint:
    """OUT/base_model (config.json + model.safetensors of a tiny GR00T N1.5) and OUT/eagle_assets/."""
    import torch
    from lerobot.policies.groot.groot_n1 import GR00TN15, GR00TN15Config

    from groot_ros.policy.assets import stage_processor_dir
    from groot_ros.policy.attention import attention_override
    from groot_ros.policy.tiny import tiny_base_config, write_eagle_assets

    tiny = TinyCheckpoint(Path(out).resolve())  # base_model/ and eagle_assets/; no pretrained_model/ here
    vocab = write_eagle_assets(tiny.eagle_assets)
    raw = tiny_base_config(vocab, head_width)
    saved_backbone = raw["backbone_cfg"]
    # LeRobot's EagleBackbone reads its assets from HF_LEROBOT_HOME / tokenizer_assets_repo: an absolute path is
    # used as it is, and the staged copy already holds the vendored Eagle code it would copy in. The saved config
    # leaves it out (a path of this machine); training sets it again (backbone_assets).
    raw["backbone_cfg"] = dict(saved_backbone, tokenizer_assets_repo=str(stage_processor_dir(tiny.eagle_assets)))
    torch.manual_seed(seed)
    with attention_override("sdpa"):
        model = GR00TN15(GR00TN15Config(**raw), local_model_path=str(tiny.base_model))
    fan_in_init(model)
    model.config.backbone_cfg = saved_backbone
    model.save_pretrained(str(tiny.base_model))
    return tiny


def base_weights_file(base_config: Path) -> Path:
    """The base weights beside a base config: a checkpoint's own base_model/ holds the config only, so the
    untrained baseline needs the base model directory the run started from (`base_model`, or --base-config)."""
    weights = base_config.parent / "model.safetensors"
    if not weights.is_file():
        raise TrainingError(f"no base weights beside {base_config} (a checkpoint carries the base config only): "
                            "give the base model directory the run was trained from (base_model=DIR; "
                            "eval-dataset: --base-config DIR/config.json)")
    return weights


def untrained_runtime(checkpoint: Path, layout: Layout, base_model: Path | None = None) -> Any:
    """The checkpoint's GrootRuntime with the base weights it was fine-tuned from: the honest untrained baseline.

    Same config, normalization statistics and inference path as the trained checkpoint; only the training is
    missing (a freshly built random model would also differ in its initialisation). The weights are those beside
    the base config the runtime loads (`base_model`'s when given).
    """
    from safetensors.torch import load_file

    from groot_ros.policy.runtime import GrootRuntime

    runtime = GrootRuntime.load(checkpoint, layout, base_config=base_model)
    base = base_weights_file(Path(runtime.base_config)).parent
    missing, unexpected = runtime.policy._groot_model.load_state_dict(
        load_file(str(base / "model.safetensors")), strict=False)
    untied = [k for k in missing if not k.endswith("lm_head.weight")]  # lm_head is tied to embed_tokens
    if untied or unexpected:
        raise TrainingError(f"{base} does not match {checkpoint}: missing {untied}, unexpected {unexpected}")
    return runtime


def write_untrained_checkpoint(checkpoint: Path, out: Path, base_model: Path | None = None) -> Path:
    """A copy of `checkpoint` with the base weights it was fine-tuned from (what untrained_runtime loads), for
    a node to run: the untrained closed-loop baseline with the same config, statistics and processors."""
    import shutil

    from safetensors.torch import load_file, save_file

    from groot_ros.policy.assets import find_base_config

    config = json.loads((checkpoint / "config.json").read_text())
    base = base_weights_file(find_base_config(checkpoint, base_model, config.get("base_model_path"))).parent
    base_weights = load_file(str(base / "model.safetensors"))
    trained = load_file(str(checkpoint / "model.safetensors"))
    shutil.copytree(checkpoint, out, dirs_exist_ok=True)
    weights, used = {}, set()
    for key, value in trained.items():
        plain = key.split(".", 1)[1] if key not in base_weights and "." in key else key
        if plain in base_weights:
            used.add(plain)
        weights[key] = base_weights.get(plain, value).contiguous()
    # embed_tokens is tied to lm_head: safetensors keeps one of the pair
    unused = sorted(k for k in set(base_weights) - used if not k.endswith("embed_tokens.weight"))
    if unused:
        raise TrainingError(f"{base} does not match {checkpoint}: base keys {unused[:5]} have no place")
    save_file(weights, str(out / "model.safetensors"), metadata={"format": "pt"})
    return out


def demo_train_options(dataset_root: Path, output_dir: Path, base: TinyCheckpoint, *, steps: int = 1500,
                       batch_size: int = 8, seed: int = 0) -> TrainOptions:
    """A CPU run of the tiny model that learns within minutes (make demo, the learning test).

    Only the learning rate departs from LeRobot's GR00T preset: its warm-up and cosine decay already shrink to
    `steps` (5 % warm-up), and the frozen backbone is kept, as in a real fine-tune.
    """
    return TrainOptions(dataset_root=dataset_root, output_dir=output_dir, base_model=str(base.base_model),
                        eagle_assets=base.eagle_assets, batch_size=batch_size, steps=steps, save_freq=steps,
                        log_freq=_log_freq(steps), num_workers=0, device="cpu", seed=seed,
                        extra=(f"--policy.optimizer_lr={TINY_LR}",))


def _log_freq(steps: int, points: int = 30) -> int:
    """A divisor of `steps` giving about `points` loss lines, so the last one is at the final step (LeRobot logs
    every log_freq steps only)."""
    return min((d for d in range(1, steps + 1) if steps % d == 0), key=lambda d: abs(steps // d - points))


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def lerobot_args(options: TrainOptions, layout: Layout) -> list[str]:
    """The lerobot-train arguments for this run. A resume reads the rest from the run's train_config.json, which
    holds no path of this machine: the run directory, dataset, base model and Eagle assets are given again."""
    out = options.output_dir.resolve()
    common = [f"--steps={options.steps}", f"--save_freq={options.save_freq}", f"--log_freq={options.log_freq}",
              f"--num_workers={options.num_workers}", f"--batch_size={options.batch_size}"]
    base = options.base_model
    if Path(base).expanduser().exists():
        base = str(Path(base).expanduser().resolve())  # absolute: LeRobot then skips the hub
    paths = [f"--output_dir={out}", f"--dataset.root={options.dataset_root.resolve()}",
             f"--policy.base_model_path={base}"]
    if options.eagle_assets is not None:
        from groot_ros.policy.assets import missing_eagle_assets, stage_processor_dir

        missing = missing_eagle_assets(options.eagle_assets)
        if missing:
            raise TrainingError(f"Eagle assets in {options.eagle_assets} lack {', '.join(missing)}")
        paths.append(f"--policy.tokenizer_assets_repo={stage_processor_dir(options.eagle_assets.resolve())}")
    if options.resume:
        return [f"--config_path={out / TRAIN_CONFIG}", "--resume=true", *paths, *common, *options.extra]
    device = resolve_device(options.device)
    return [
        f"--dataset.repo_id=local/{options.dataset_root.resolve().name}",
        "--policy.type=groot",
        f"--policy.embodiment_tag={layout.embodiment_tag}",
        f"--policy.chunk_size={layout.chunk_size}",
        f"--policy.n_action_steps={layout.chunk_size}",
        f"--policy.device={device}",
        f"--policy.use_bf16={'true' if device.startswith('cuda') else 'false'}",
        "--policy.push_to_hub=false",
        f"--job_name={options.job_name or out.name}",
        f"--wandb.enable={'true' if options.wandb else 'false'}",
        f"--seed={options.seed}",
        *paths,
        *common,
        *options.extra,
    ]


def saved_dataset_root(output_dir: Path) -> Path | None:
    """The dataset a run was trained on, from its last train_config.json (saved relative to the run directory;
    runs saved before that hold it absolute); None when the run has no train_config.json."""
    config = output_dir / TRAIN_CONFIG
    if not config.is_file():
        return None
    root = Path(json.loads(config.read_text())["dataset"]["root"])
    return root if root.is_absolute() else (output_dir / root).resolve()


def check_options(options: TrainOptions, layout: Layout) -> None:
    """Problems LeRobot would only report deep inside its start-up, or not at all."""
    problems = []
    out = options.output_dir
    if options.resume and not (out / TRAIN_CONFIG).is_file():
        problems.append(f"RESUME: no {out / TRAIN_CONFIG}; train without resume first (or check --output-dir)")
    last = out / TRAIN_CONFIG.parent.parent
    local_base = Path(options.base_model).expanduser().is_dir()
    if options.resume and (last / BASE_MODEL_DIRNAME).is_dir() and not local_base:
        problems.append(f"RESUME: {out} was trained from a local base model ({last / BASE_MODEL_DIRNAME} holds its "
                        "config only): give the same --base-model directory (and --eagle-assets) again")
    if options.resume and (last / EAGLE_ASSETS_DIRNAME).is_dir() and options.eagle_assets is None:
        problems.append(f"RESUME: {out} was trained with local Eagle assets: give --eagle-assets again "
                        f"(e.g. {last / EAGLE_ASSETS_DIRNAME})")
    if not options.resume and out.exists():
        problems.append(f"{out} already exists: resume it (--resume / RESUME=true) or choose a new --output-dir")
    if not options.resume:
        from groot_ros.tools.eval_dataset import EvalError, dataset_problems, open_dataset

        try:
            meta = open_dataset(options.dataset_root).meta
            problems += dataset_problems(layout, meta.features, meta.camera_keys)
        except EvalError as exc:
            problems.append(str(exc))
    for name in ("batch_size", "steps", "save_freq", "num_gpus"):
        if getattr(options, name) < 1:
            problems.append(f"{name} must be at least 1, got {getattr(options, name)}")
    if problems:
        raise TrainingError("cannot start training:\n  - " + "\n  - ".join(problems))


def launch_command(options: TrainOptions, layout: Layout) -> list[str]:
    """What runs: this module's in-process trainer, under `accelerate launch` for several GPUs."""
    args = lerobot_args(options, layout)
    if options.num_gpus > 1:
        return ["accelerate", "launch", "--multi_gpu", f"--num_processes={options.num_gpus}",
                "-m", "groot_ros.tools.training", *args]
    return [sys.executable, "-m", "groot_ros.tools.training", *args]


@contextlib.contextmanager
def eagle_assets_kept() -> Iterator[None]:
    """Processors loaded from a checkpoint (on resume) keep the run's `tokenizer_assets_repo`.

    LeRobot 0.4.2 does not save it in the processor JSON, so a resumed run would look for the Eagle assets
    under the default hub name; we set it back on the Eagle steps from the policy config.
    """
    from lerobot.scripts import lerobot_train

    original = lerobot_train.make_pre_post_processors

    def with_assets(policy_cfg: Any, *args: Any, **kwargs: Any) -> Any:
        pre, post = original(policy_cfg, *args, **kwargs)
        for step in pre.steps:
            if hasattr(step, "tokenizer_assets_repo"):
                step.tokenizer_assets_repo = policy_cfg.tokenizer_assets_repo
        return pre, post

    lerobot_train.make_pre_post_processors = with_assets
    try:
        yield
    finally:
        lerobot_train.make_pre_post_processors = original


@contextlib.contextmanager
def backbone_assets(tokenizer_assets_repo: str | None) -> Iterator[None]:
    """The GR00T backbone LeRobot builds reads the run's Eagle assets (`--policy.tokenizer_assets_repo`).

    LeRobot builds the Eagle backbone from the base config's backbone_cfg.tokenizer_assets_repo (default: its hub
    repo under HF_LEROBOT_HOME), not from the policy's; a base config that named a local directory would carry
    this machine's path, so the run sets it here instead. The model's own config is not saved in checkpoints.
    """
    if tokenizer_assets_repo is None:
        yield
        return
    from lerobot.policies.groot.groot_n1 import GR00TN15

    original = GR00TN15.__init__

    def with_assets(self: Any, config: Any, *args: Any, **kwargs: Any) -> None:
        config.backbone_cfg = dict(config.backbone_cfg, tokenizer_assets_repo=tokenizer_assets_repo)
        original(self, config, *args, **kwargs)

    GR00TN15.__init__ = with_assets
    try:
        yield
    finally:
        GR00TN15.__init__ = original


def _hub_default(name: str) -> str:
    from lerobot.policies.groot.configuration_groot import GrootConfig

    return GrootConfig.__dataclass_fields__[name].default


def place_local_assets(checkpoint_dir: Path, base_model_path: str, tokenizer_assets_repo: str) -> None:
    """base_model/config.json and eagle_assets/ beside pretrained_model/, from the run's local directories (a
    hub id is left to the hub cache): the checkpoint's config names hub ids, so a copy loads with what it holds."""
    import shutil

    if Path(base_model_path).is_absolute():
        (checkpoint_dir / BASE_MODEL_DIRNAME).mkdir(exist_ok=True)
        shutil.copy2(Path(base_model_path) / "config.json", checkpoint_dir / BASE_MODEL_DIRNAME / "config.json")
    if Path(tokenizer_assets_repo).is_absolute():  # a staged copy: the assets plus LeRobot's vendored Eagle code
        shutil.copytree(tokenizer_assets_repo, checkpoint_dir / EAGLE_ASSETS_DIRNAME, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("*.py", "__pycache__", ".complete"))


def portable_fields(cfg: Any, policy: Any) -> list[tuple[Any, str, Any]]:
    """(object, field, value to save) for each path of this machine LeRobot would write into a checkpoint.

    The policy config (config.json, and train_config.json's policy) gets GrootConfig's hub ids for a local base
    model and Eagle assets (copied beside it instead: place_local_assets) and no pretrained_path (a resumed
    run's); train_config.json gets the output directory as "." and the dataset root relative to it: LeRobot
    resolves both against the working directory, so `lerobot-train --config_path=... --resume=true` run from the
    run directory finds them, and groot_ros (policy/matching.py) looks for the dataset from the checkpoint's
    parents.
    """
    out = Path(cfg.output_dir).resolve()
    fields: list[tuple[Any, str, Any]] = [(cfg, "output_dir", Path(".")), (cfg, "checkpoint_path", None)]
    if cfg.dataset.root is not None:
        fields.append((cfg.dataset, "root", os.path.relpath(Path(cfg.dataset.root).resolve(), out)))
    for config in {id(c): c for c in (cfg.policy, policy.config)}.values():  # usually one object
        fields.append((config, "pretrained_path", None))
        for name in ("base_model_path", "tokenizer_assets_repo"):
            if Path(getattr(config, name)).is_absolute():
                fields.append((config, name, _hub_default(name)))
    return fields


@contextlib.contextmanager
def portable_checkpoints() -> Iterator[None]:
    """Each checkpoint LeRobot saves during this run names no path of this machine (portable_fields): the values
    are swapped in while LeRobot writes it and set back for the rest of the run."""
    from lerobot.scripts import lerobot_train

    original = lerobot_train.save_checkpoint

    def portable_save(checkpoint_dir: Path, step: int, cfg: Any, policy: Any, *args: Any, **kwargs: Any) -> None:
        fields = portable_fields(cfg, policy)
        kept = [getattr(obj, name) for obj, name, _ in fields]
        local = (cfg.policy.base_model_path, cfg.policy.tokenizer_assets_repo)
        for obj, name, value in fields:
            setattr(obj, name, value)
        try:
            original(checkpoint_dir, step, cfg, policy, *args, **kwargs)
        finally:
            for (obj, name, _), value in zip(fields, kept):
                setattr(obj, name, value)
        place_local_assets(Path(checkpoint_dir), *local)

    lerobot_train.save_checkpoint = portable_save
    try:
        yield
    finally:
        lerobot_train.save_checkpoint = original


def run_lerobot_train(args: Sequence[str], device: str) -> None:
    """LeRobot's `lerobot-train` main, in this process, with the attention the device can run."""
    from lerobot.scripts.lerobot_train import train

    from groot_ros.policy.attention import attention_override, choose_attention

    implementation = choose_attention(resolve_device(device)).implementation
    assets = _arg_values(args).get("policy.tokenizer_assets_repo")
    saved_argv, root = sys.argv, logging.getLogger()
    saved_logging = (root.level, list(root.handlers))  # LeRobot's init_logging replaces the root handlers
    sys.argv = ["lerobot-train", *args]  # LeRobot's config parser reads sys.argv
    try:
        with attention_override(implementation), eagle_assets_kept(), backbone_assets(assets), portable_checkpoints():
            train()
    finally:
        sys.argv = saved_argv
        root.setLevel(saved_logging[0])
        root.handlers[:] = saved_logging[1]


def _arg_values(args: Sequence[str]) -> dict[str, str]:
    return dict(a[2:].split("=", 1) for a in args if a.startswith("--") and "=" in a)


def _device_of(args: Sequence[str]) -> str:
    """The device a lerobot-train argument list trains on (from its train_config.json on resume)."""
    values = _arg_values(args)
    if "policy.device" in values:
        return values["policy.device"]
    if "config_path" in values:
        return json.loads(Path(values["config_path"]).read_text())["policy"].get("device") or "auto"
    return "auto"


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m groot_ros.tools.training <lerobot-train args>`: what each (accelerate) process runs."""
    args = list(sys.argv[1:] if argv is None else argv)
    run_lerobot_train(args, _device_of(args))
    return 0


def command_line(command: Sequence[str]) -> str:
    return " ".join(shlex.quote(c) for c in command)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The `train` subcommand's options (defaults: the seed project's train_groot.sh)."""
    d = TrainOptions(Path(), Path())
    p.add_argument("--dataset-root", help="local LeRobot v3.0 dataset (e.g. from bag2lerobot)")
    p.add_argument("--output-dir", required=True, help="training run directory (checkpoints/<step>/pretrained_model)")
    p.add_argument("--base-model", default=d.base_model,
                   help="GR00T N1.5 base weights: a local directory, or a hub id already in the local HF cache")
    p.add_argument("--eagle-assets", type=Path, help="local Eagle tokenizer/processor assets directory")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--steps", type=int, default=d.steps, help="total steps (on resume: train on up to this)")
    p.add_argument("--save-freq", type=int, default=d.save_freq)
    p.add_argument("--log-freq", type=int, default=d.log_freq)
    p.add_argument("--num-workers", type=int, default=d.num_workers)
    p.add_argument("--device", default=d.device, help="auto, cpu or cuda")
    p.add_argument("--resume", action="store_true", help="continue from OUTPUT_DIR/checkpoints/last")
    p.add_argument("--num-gpus", type=int, default=d.num_gpus, help=">1: accelerate launch --multi_gpu")
    p.add_argument("--wandb", action="store_true", help="log to Weights & Biases (off by default)")
    p.add_argument("--job-name")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--dry-run", action="store_true", help="print the command and exit")
    p.add_argument("extra", nargs="*", help="after --: more lerobot-train arguments, e.g. -- --policy.tune_visual=true")


def options_from_args(args: argparse.Namespace) -> TrainOptions:
    if not args.resume and not args.dataset_root:
        raise TrainingError("--dataset-root is required (except with --resume)")
    dataset_root = Path(args.dataset_root) if args.dataset_root else saved_dataset_root(Path(args.output_dir))
    return TrainOptions(
        dataset_root=dataset_root or Path("."), output_dir=Path(args.output_dir), base_model=args.base_model,
        eagle_assets=args.eagle_assets, batch_size=args.batch_size, steps=args.steps, save_freq=args.save_freq,
        log_freq=args.log_freq, num_workers=args.num_workers, device=args.device, resume=args.resume,
        num_gpus=args.num_gpus, wandb=args.wandb, job_name=args.job_name, seed=args.seed, extra=tuple(args.extra))


def train(options: TrainOptions, layout: Layout, dry_run: bool = False) -> list[str]:
    """Checks, prints and runs the training command; returns it."""
    import subprocess

    check_options(options, layout)
    command = launch_command(options, layout)
    print(f"[train] {command_line(command)}", flush=True)
    if dry_run:
        return command
    if options.num_gpus > 1:
        subprocess.run(command, check=True)
    else:
        run_lerobot_train(command[3:], options.device)
    return command


if __name__ == "__main__":
    sys.exit(main())
