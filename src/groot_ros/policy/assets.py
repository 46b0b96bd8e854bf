"""Finding everything a GR00T checkpoint needs on local disk, without a model hub.

LeRobot's GR00T path downloads the 3B base model and the Eagle tokenizer/processor assets when it builds a
policy. We build the model from a local GR00T N1.5 *config* instead (no base weights: the fine-tuned
model.safetensors replaces every weight) and point the Eagle processor at a local assets directory. A missing
file is an error that names it and says where to put it, never a download attempt.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
from pathlib import Path

# The files LeRobot's ensure_eagle_cache_ready() would otherwise fetch from the hub.
EAGLE_ASSET_FILES = (
    "vocab.json",
    "merges.txt",
    "added_tokens.json",
    "chat_template.json",
    "special_tokens_map.json",
    "config.json",
    "generation_config.json",
    "preprocessor_config.json",
    "processor_config.json",
    "tokenizer_config.json",
)
BASE_MODEL_DIRNAME = "base_model"
EAGLE_ASSETS_DIRNAME = "eagle_assets"
HUB_BASE_REPO = "nvidia/GR00T-N1.5-3B"
HUB_EAGLE_REPO = "lerobot/eagle2hg-processor-groot-n1p5"


class AssetError(FileNotFoundError):
    """A local file the model needs is missing; the message says which and how to provide it."""


def _hf_home() -> Path:
    return Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface"))


def _hf_lerobot_home() -> Path:
    return Path(os.environ.get("HF_LEROBOT_HOME", _hf_home() / "lerobot"))


def _beside(checkpoint: Path, name: str) -> list[Path]:
    """A pretrained_model/ directory, its parent and the training run's root may each hold the asset dirs."""
    return [checkpoint / name, checkpoint.parent / name, checkpoint.parent.parent / name]


def base_config_candidates(checkpoint: Path, explicit: str | Path | None, base_model_path: str | None) -> list[Path]:
    if explicit:
        path = Path(explicit)
        return [path / "config.json" if path.is_dir() or path.suffix != ".json" else path]
    candidates = [p / "config.json" for p in _beside(checkpoint, BASE_MODEL_DIRNAME)]
    if os.environ.get("GROOT_BASE_CONFIG"):
        candidates.insert(0, Path(os.environ["GROOT_BASE_CONFIG"]))
    if base_model_path and Path(base_model_path).is_absolute():
        candidates.append(Path(base_model_path) / "config.json")
    snapshots = _hf_home() / "hub" / f"models--{HUB_BASE_REPO.replace('/', '--')}" / "snapshots"
    candidates += sorted(snapshots.glob("*/config.json"))
    return candidates


def eagle_assets_candidates(checkpoint: Path, explicit: str | Path | None, assets_repo: str | None) -> list[Path]:
    if explicit:
        return [Path(explicit)]
    candidates = _beside(checkpoint, EAGLE_ASSETS_DIRNAME)
    if os.environ.get("GROOT_EAGLE_ASSETS"):
        candidates.insert(0, Path(os.environ["GROOT_EAGLE_ASSETS"]))
    if assets_repo and Path(assets_repo).is_absolute():
        candidates.append(Path(assets_repo))
    candidates.append(_hf_lerobot_home() / (assets_repo or HUB_EAGLE_REPO))
    return candidates


def find_base_config(checkpoint: Path, explicit: str | Path | None, base_model_path: str | None) -> Path:
    candidates = base_config_candidates(checkpoint, explicit, base_model_path)
    for path in candidates:
        if path.is_file():
            return path
    raise AssetError(
        "GR00T N1.5 base model config (config.json with backbone_cfg and action_head_cfg) not found; looked at:\n    "
        + "\n    ".join(str(p) for p in candidates)
        + f"\n  Provide it with --base-config PATH (or the groot_base_config parameter), put it in "
        f"{checkpoint.parent / BASE_MODEL_DIRNAME}/config.json, or copy the config.json of {HUB_BASE_REPO} "
        "into the local Hugging Face cache. Only the config is needed, not the base weights."
    )


def missing_eagle_assets(directory: Path) -> list[str]:
    return [name for name in EAGLE_ASSET_FILES if not (directory / name).is_file()]


def find_eagle_assets(checkpoint: Path, explicit: str | Path | None, assets_repo: str | None) -> Path:
    """The first existing candidate directory is the one used: an incomplete one is an error, not skipped."""
    candidates = eagle_assets_candidates(checkpoint, explicit, assets_repo)
    how = (f"A complete directory holds: {', '.join(EAGLE_ASSET_FILES)}. Provide it with --eagle-assets DIR "
           f"(or the groot_eagle_assets parameter), or copy the files of {HUB_EAGLE_REPO} into "
           f"{_hf_lerobot_home() / HUB_EAGLE_REPO} on a machine with hub access and bring them over.")
    for path in candidates:
        if path.is_dir():
            missing = missing_eagle_assets(path)
            if missing:
                raise AssetError(f"Eagle tokenizer/processor assets in {path} are incomplete: missing "
                                 f"{', '.join(missing)}.\n  {how}")
            return path
    raise AssetError("Eagle tokenizer/processor assets not found; looked at:\n    "
                     + "\n    ".join(str(p) for p in candidates) + f"\n  {how}")


def _vendored_eagle_dir() -> Path:
    spec = importlib.util.find_spec("lerobot.policies.groot")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("lerobot with GR00T support (lerobot==0.4.2) is not installed in this environment")
    return Path(list(spec.submodule_search_locations)[0]) / "eagle2_hg_model"


def _cache_root() -> Path:
    return Path(os.environ.get("GROOT_ROS_CACHE", Path.home() / ".cache" / "groot_ros"))


def stage_processor_dir(assets: Path) -> Path:
    """A directory holding the user's Eagle assets plus LeRobot's vendored Eagle code, as LeRobot expects.

    LeRobot copies its vendored code into the assets directory on every model build; staging a copy keyed by
    the assets' content keeps the user's directory untouched (it may be read-only) and makes that copy a no-op.
    """
    vendor = _vendored_eagle_dir()
    digest = hashlib.sha256()
    for name in EAGLE_ASSET_FILES:
        digest.update(name.encode() + (assets / name).read_bytes())
    for path in sorted(vendor.glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    staged = _cache_root() / "eagle_processor" / digest.hexdigest()[:16]
    if not (staged / ".complete").exists():
        tmp = staged.with_name(staged.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(assets, tmp, ignore=shutil.ignore_patterns("__pycache__"))
        for path in vendor.glob("*.py"):
            shutil.copy2(path, tmp / path.name)
        (tmp / ".complete").touch()
        shutil.rmtree(staged, ignore_errors=True)
        tmp.rename(staged)
    return staged
