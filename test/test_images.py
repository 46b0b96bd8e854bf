"""Image decoding: every accepted frame comes out as uint8 RGB, everything else is an ImageError."""

from __future__ import annotations

import numpy as np
import pytest

from groot_ros.core.images import (ImageError, check_size, decode_compressed, decode_message, decode_raw, encode_jpeg,
                              encode_png, encode_rgb8)


def scene(h: int = 24, w: int = 32) -> np.ndarray:
    """A left-right red/blue split with a green top row: colour order and orientation both show."""
    img = np.zeros((h, w, 3), np.uint8)
    img[:, : w // 2] = (220, 20, 20)
    img[:, w // 2:] = (20, 20, 220)
    img[0] = (20, 220, 20)
    return img


def test_rgb8_and_bgr8_decode_to_the_same_rgb():
    img = scene()
    rgb = decode_raw("rgb8", 24, 32, 96, img.tobytes())
    bgr = decode_raw("bgr8", 24, 32, 96, img[..., ::-1].tobytes())
    np.testing.assert_array_equal(rgb, img)
    np.testing.assert_array_equal(bgr, img)
    assert rgb.dtype == np.uint8 and rgb.flags.c_contiguous


def test_row_padding_and_mono8():
    img = scene()
    padded = np.zeros((24, 100), np.uint8)
    padded[:, :96] = img.reshape(24, 96)
    np.testing.assert_array_equal(decode_raw("rgb8", 24, 32, 100, padded.tobytes()), img)
    mono = decode_raw("mono8", 2, 2, 2, bytes([0, 50, 100, 255]))
    assert mono.shape == (2, 2, 3) and mono[1, 1].tolist() == [255, 255, 255]


@pytest.mark.parametrize("encoding,step,data,match", [
    ("rgb8", 96, b"\0" * 10, "10 bytes, expected"),
    ("16UC1", 64, b"\0" * 64 * 24, "unsupported encoding '16UC1'"),
    ("rgb8", 10, b"\0" * 240, "step 10 < 96"),
])
def test_bad_raw_images_are_errors(encoding, step, data, match):
    with pytest.raises(ImageError, match=match):
        decode_raw(encoding, 24, 32, step, data)


def test_jpeg_and_png_round_trip_in_rgb_order():
    img = scene()
    np.testing.assert_array_equal(decode_compressed("png", encode_png(img)), img)
    jpeg = decode_compressed("rgb8; jpeg compressed bgr8", encode_jpeg(img, quality=95))
    assert np.abs(jpeg[4:].astype(int) - img[4:]).mean() < 6  # chroma subsampling smears the 1-px top row
    assert jpeg[12, 4, 0] > 150 and jpeg[12, 28, 2] > 150  # red stays left, blue right


def test_corrupt_jpeg_is_an_error():
    data = bytearray(encode_jpeg(scene()))
    with pytest.raises(ImageError, match="cannot decode"):
        decode_compressed("jpeg", bytes(data[:20]))
    with pytest.raises(ImageError, match="unsupported compressed format"):
        decode_compressed("16UC1; compressedDepth", bytes(data))
    with pytest.raises(ImageError, match="empty"):
        decode_compressed("jpeg", b"")


def test_rotation_and_size_check():
    img = scene()
    rotated = decode_raw("rgb8", 24, 32, 96, img.tobytes(), rotate_180=True)
    np.testing.assert_array_equal(rotated, img[::-1, ::-1])
    assert rotated[-1, 0].tolist() == [20, 220, 20]
    check_size(img, (24, 32))
    check_size(img, None)
    with pytest.raises(ImageError, match="size 32x24, expected 64x48"):
        check_size(img, (48, 64))


def test_decode_message_takes_either_ros_message():
    from sensor_msgs.msg import CompressedImage, Image

    img = scene()
    raw = Image(**encode_rgb8(img))
    np.testing.assert_array_equal(decode_message(raw), img)
    np.testing.assert_array_equal(decode_message(CompressedImage(format="png", data=encode_png(img))), img)
    with pytest.raises(ImageError, match="neither"):
        decode_message(object())


def test_jpeg_is_decoded_no_larger_than_the_model_needs():
    """ObservationStore(decode_size=...) decodes compressed frames at 1/2, 1/4, 1/8 when that still covers it."""
    import types

    from groot_ros.core.images import encode_jpeg, reduction_for
    from groot_ros.core.layout import load_layout
    from groot_ros.core.store import ObservationStore

    assert [reduction_for((480, 640), hw) for hw in ((56, 56), (224, 224), (240, 320), (480, 640), None)] == \
        [8, 2, 2, 1, 1]
    layout = load_layout("arms_claws", "4_pro", "real")
    store = ObservationStore(layout, decode_size={"head": (224, 224)})
    img = np.zeros((480, 640, 3), np.uint8)
    img[:, 320:] = (200, 30, 30)
    shapes = []
    for k in range(2):  # the first frame teaches the store the camera's full size
        store.update("head", types.SimpleNamespace(format="jpeg", data=encode_jpeg(img), header=None), float(k))
        shapes.append(store._image("head", store.latest("head")).shape)
    assert shapes == [(480, 640, 3), (240, 320, 3)]
