"""Which attention kernels SigLIP and Qwen3 are built with: flash-attn where it can run, SDPA elsewhere.

LeRobot's vendored Eagle code hard-codes flash_attention_2 for SigLIP and its config defaults to it for the LLM,
so without flash-attn (every CPU, many GPUs) the backbone cannot even be built. transformers resolves the choice
in the private PreTrainedModel._check_and_adjust_attn_implementation; while a model is built, and only then, we
redirect flash-attention requests there to the chosen implementation. Because that hook is private, the override
refuses a transformers release it was not written for, and `verify_attention` checks the built model afterwards.
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
from dataclasses import dataclass
from typing import Any, Iterator

# Written against the private hook as it is in these releases (LeRobot 0.4.2 pins transformers < 5).
SUPPORTED_TRANSFORMERS = ("4.57",)
HOOK = "_check_and_adjust_attn_implementation"
HOOK_PARAMETERS = ("self", "attn_implementation", "is_init_check")


class AttentionError(RuntimeError):
    """The attention choice cannot be applied or was not honoured by the built model."""


@dataclass(frozen=True)
class AttentionChoice:
    implementation: str  # "flash_attention_2" or "sdpa"
    reason: str


def choose_attention(device: str, requested: str = "auto") -> AttentionChoice:
    """flash-attn when importable on CUDA, SDPA otherwise; an explicit request is honoured if it can run."""
    has_flash = importlib.util.find_spec("flash_attn") is not None
    on_cuda = device.startswith("cuda")
    if requested == "sdpa":
        return AttentionChoice("sdpa", "requested")
    if requested == "flash_attention_2":
        if not (has_flash and on_cuda):
            raise ValueError("attention 'flash_attention_2' needs the flash_attn package and a CUDA device")
        return AttentionChoice("flash_attention_2", "requested")
    if requested != "auto":
        raise ValueError(f"attention must be auto, sdpa or flash_attention_2, got '{requested}'")
    if has_flash and on_cuda:
        return AttentionChoice("flash_attention_2", "flash_attn importable and device is CUDA")
    why = "flash_attn not installed" if not has_flash else "device is not CUDA"
    return AttentionChoice("sdpa", why)


def check_transformers(version: str, hook: Any) -> None:
    """Raises AttentionError unless `version` and the hook's signature are ones this module was written for."""
    if not any(version == v or version.startswith(v + ".") for v in SUPPORTED_TRANSFORMERS):
        raise AttentionError(
            f"transformers {version} is not one groot_ros's attention override was written for "
            f"({', '.join(v + '.x' for v in SUPPORTED_TRANSFORMERS)}); install the locked version (make setup)")
    if hook is None:
        raise AttentionError(f"transformers {version} has no PreTrainedModel.{HOOK}")
    params = tuple(inspect.signature(hook).parameters)
    if params != HOOK_PARAMETERS:
        raise AttentionError(f"transformers {version}: PreTrainedModel.{HOOK}{params} differs from {HOOK_PARAMETERS}")


@contextlib.contextmanager
def attention_override(implementation: str) -> Iterator[None]:
    """While the block runs (a model build), every flash-attention request becomes `implementation`."""
    import transformers
    from transformers import modeling_utils

    original = getattr(modeling_utils.PreTrainedModel, HOOK, None)
    check_transformers(transformers.__version__, original)

    def redirected(self, attn_implementation, is_init_check=False):
        if attn_implementation is not None and str(attn_implementation).startswith("flash_attention"):
            attn_implementation = implementation
        return original(self, attn_implementation, is_init_check)

    setattr(modeling_utils.PreTrainedModel, HOOK, redirected)
    try:
        yield
    finally:
        setattr(modeling_utils.PreTrainedModel, HOOK, original)


EAGLE = "backbone.eagle_model"  # the Eagle VL wrapper, SigLIP and Qwen3; GR00T's own DiT uses diffusers attention


def built_attention(model: Any) -> dict[str, str]:
    """The attention implementation each transformers sub-model of the Eagle backbone was built with."""
    from transformers import PreTrainedModel

    return {name: str(module.config._attn_implementation) for name, module in model.named_modules()
            if EAGLE in name and isinstance(module, PreTrainedModel)}


def verify_attention(model: Any, implementation: str) -> dict[str, str]:
    """Raises AttentionError unless SigLIP, Qwen3 and the Eagle wrapper were all built with `implementation`."""
    built = built_attention(model)
    found = {part for part in ("vision_model", "language_model") if any(name.endswith(part) for name in built)}
    if found != {"vision_model", "language_model"}:
        raise AttentionError(f"cannot find SigLIP and Qwen3 under {EAGLE} to check their attention (found {sorted(built)})")
    wrong = {name: impl for name, impl in built.items() if impl != implementation}
    if wrong:
        raise AttentionError(f"model built with {wrong} instead of {implementation}: the attention override did not "
                             "reach every sub-model")
    return built
