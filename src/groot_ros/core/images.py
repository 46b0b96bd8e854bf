"""Camera images to and from the bytes of sensor_msgs/Image and CompressedImage, without ROS.

The model was trained on RGB frames; a bgr8 topic fed through unchanged swaps red and blue, which looks
plausible to a human and is silently wrong for the policy. So every frame goes through here, comes out
uint8 RGB HxWx3, and anything we cannot vouch for raises ImageError naming what is wrong.
Decoding uses OpenCV (in the venv and in Debian's python3-opencv alike).
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

# Raw encodings we accept: channels and how to reach RGB from them.
RAW_ENCODINGS = {
    "rgb8": (3, None),
    "bgr8": (3, cv2.COLOR_BGR2RGB),
    "rgba8": (4, cv2.COLOR_RGBA2RGB),
    "bgra8": (4, cv2.COLOR_BGRA2RGB),
    "mono8": (1, cv2.COLOR_GRAY2RGB),
}


class ImageError(ValueError):
    """A frame that must not reach the model: the message says why."""


def decode_raw(encoding: str, height: int, width: int, step: int, data: bytes,
               rotate_180: bool = False) -> np.ndarray:
    """sensor_msgs/Image fields -> uint8 RGB (H, W, 3); honours row padding (step > width * channels)."""
    if encoding not in RAW_ENCODINGS:
        raise ImageError(f"unsupported encoding '{encoding}' (supported: {sorted(RAW_ENCODINGS)})")
    channels, conversion = RAW_ENCODINGS[encoding]
    row = width * channels
    if height <= 0 or width <= 0 or step < row:
        raise ImageError(f"bad geometry: {width}x{height}, step {step} < {row} bytes per row")
    if len(data) != step * height:
        raise ImageError(f"{encoding} {width}x{height}: {len(data)} bytes, expected step*height = {step * height}")
    buf = np.frombuffer(data, dtype=np.uint8).reshape(height, step)[:, :row]
    img = buf.reshape(height, width, channels)
    if conversion is not None:
        img = cv2.cvtColor(np.ascontiguousarray(img), conversion)
    return _finish(img, rotate_180)


# cv2.imdecode flags that decode at 1/2, 1/4, 1/8 size: a JPEG is then decoded from its DCT blocks directly,
# several times faster than a full decode followed by a resize.
REDUCED = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
           8: cv2.IMREAD_REDUCED_COLOR_8}


def reduction_for(source_hw: tuple[int, int], wanted_hw: tuple[int, int] | None) -> int:
    """The largest decode reduction (1, 2, 4, 8) that still leaves at least wanted_hw pixels (None: 1)."""
    if wanted_hw is None:
        return 1
    return max(f for f in REDUCED if source_hw[0] // f >= wanted_hw[0] and source_hw[1] // f >= wanted_hw[1]
               or f == 1)


def decode_compressed(fmt: str, data: bytes, rotate_180: bool = False, reduce: int = 1) -> np.ndarray:
    """sensor_msgs/CompressedImage (jpeg or png, image_transport's "rgb8; jpeg compressed bgr8" too);
    reduce: decode at 1/reduce size (1, 2, 4 or 8)."""
    kind = fmt.lower()
    if "compresseddepth" in kind or not any(k in kind for k in ("jpeg", "jpg", "png")):
        raise ImageError(f"unsupported compressed format '{fmt}' (expected jpeg or png)")
    if not data:
        raise ImageError(f"empty {fmt} payload")
    bgr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), REDUCED[reduce])
    if bgr is None:
        raise ImageError(f"cannot decode {len(data)} bytes as {fmt}")
    return _finish(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), rotate_180)


def decode_message(msg: Any, rotate_180: bool = False, reduce: int = 1) -> np.ndarray:
    """Either image message (or any object with the same fields) -> uint8 RGB (H, W, 3); `reduce` applies to
    compressed frames (a raw frame costs no decoding: the model's resize does the rest)."""
    if hasattr(msg, "encoding"):
        return decode_raw(msg.encoding, msg.height, msg.width, msg.step, bytes(msg.data), rotate_180)
    if hasattr(msg, "format"):
        return decode_compressed(msg.format, bytes(msg.data), rotate_180, reduce)
    raise ImageError(f"{type(msg).__name__} is neither sensor_msgs/Image nor sensor_msgs/CompressedImage")


def compressed_size(data: bytes) -> tuple[int, int] | None:
    """(height, width) from a PNG's IHDR or a JPEG's start-of-frame header, without decoding; None if neither.
    Lets a receiver refuse a small file that claims gigabytes of pixels before it decodes it."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return int.from_bytes(data[20:24], "big"), int.from_bytes(data[16:20], "big")
    i = 2 if data[:2] == b"\xff\xd8" else len(data)
    while i + 9 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # SOFn: precision, height, width
            return int.from_bytes(data[i + 5:i + 7], "big"), int.from_bytes(data[i + 7:i + 9], "big")
        i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
    return None


def resize_area(img: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """The image at (height, width) by area averaging (what a model trained on that size gets); a writable copy
    either way (ROS message buffers are read-only). A zero size keeps the image's own."""
    h, w = int(hw[0]), int(hw[1])
    if h > 0 and w > 0 and img.shape[:2] != (h, w):
        return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
    return np.array(img, copy=True)


def check_size(img: np.ndarray, expected_hw: tuple[int, int] | None) -> None:
    """Raises ImageError when a frame is not the (height, width) the checkpoint expects (None: any)."""
    if expected_hw is not None and img.shape[:2] != tuple(expected_hw):
        raise ImageError(f"size {img.shape[1]}x{img.shape[0]}, expected {expected_hw[1]}x{expected_hw[0]} (WxH)")


# A frame may be up to this much smaller than the model's input per side (a 48x64 camera for a 56x56 model is
# fine); beyond it, the resize would invent the picture (a 1x1 frame becomes a flat colour the model never saw).
MAX_UPSCALE = 2.0


def check_not_tiny(frame_hw: tuple[int, int], model_hw: tuple[int, int] | None) -> None:
    """Raises ImageError when a frame is more than MAX_UPSCALE times smaller than the model's input (None: any)."""
    if model_hw is not None and (frame_hw[0] * MAX_UPSCALE < model_hw[0] or frame_hw[1] * MAX_UPSCALE < model_hw[1]):
        raise ImageError(f"frame {frame_hw[1]}x{frame_hw[0]} is far smaller than the model's input "
                         f"{model_hw[1]}x{model_hw[0]} (WxH; more than {MAX_UPSCALE:g}x upscaling)")


def encode_rgb8(img: np.ndarray) -> dict[str, Any]:
    """uint8 RGB (H, W, 3) -> the fields of a sensor_msgs/Image (rgb8, no row padding)."""
    img = _as_rgb(img)
    h, w = img.shape[:2]
    return {"encoding": "rgb8", "height": h, "width": w, "step": 3 * w, "is_bigendian": 0, "data": img.tobytes()}


def encode_jpeg(img: np.ndarray, quality: int = 90) -> bytes:
    """uint8 RGB (H, W, 3) -> JPEG bytes for a CompressedImage with format "jpeg"."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(_as_rgb(img), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ImageError("JPEG encoding failed")
    return buf.tobytes()


def encode_png(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(_as_rgb(img), cv2.COLOR_RGB2BGR))
    if not ok:
        raise ImageError("PNG encoding failed")
    return buf.tobytes()


def _as_rgb(img: np.ndarray) -> np.ndarray:
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ImageError(f"expected uint8 RGB (H, W, 3), got {img.dtype} {img.shape}")
    return np.ascontiguousarray(img)


def _finish(img: np.ndarray, rotate_180: bool) -> np.ndarray:
    if rotate_180:
        img = img[::-1, ::-1]
    return np.ascontiguousarray(img)
