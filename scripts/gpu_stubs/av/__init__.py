"""Stand-in for PyAV (too large to carry to the GPU machine): lerobot.configs imports lerobot.datasets.video_utils,
which imports av at module level and reads av.logging levels in default arguments; inference never decodes
video. Every other attribute raises ImportError, so libraries that probe for PyAV (torchvision.io) treat it as
absent."""

from types import SimpleNamespace

logging = SimpleNamespace(PANIC=0, FATAL=8, ERROR=16, WARNING=24, INFO=32, VERBOSE=40, DEBUG=48, TRACE=56,
                          set_level=lambda level: None, get_level=lambda: None)


def __getattr__(name):
    raise ImportError(f"PyAV stand-in: av.{name} is not available (video decoding is not used for inference)")
