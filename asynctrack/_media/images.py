"""log_image: numpy arrays and PIL images with MLflow 3.18's dtype and range rules, and the file
names of an image series (``key``/``step``) that MLflow's UI reads."""

from __future__ import annotations

import re
import uuid
import warnings
from typing import Any

from .._extras import require
from ..exceptions import INVALID_PARAMETER_VALUE, MlflowException

COMPRESSED_IMAGE_SIZE = 256
LOGGED_IMAGES_TAG = "mlflow.loggedImages"
_KEY_RE = re.compile(r"^[a-zA-Z0-9_\-./ ]+$")
_KINDS = {"b": "bool", "i": "signed integer", "u": "unsigned integer", "f": "floating"}


class InvalidImageType(MlflowException, TypeError):
    """Wrong image object or dtype (MLflow raises TypeError)."""


class InvalidImageValue(MlflowException, ValueError):
    """Wrong shape, channel count, pixel range or key (MLflow raises ValueError)."""


def _pil():
    return require("PIL.Image", "images", "Logging an image", "Pillow")


def to_pil(image: Any) -> Any:
    """A PIL image from a numpy array or a PIL image (or anything with ``to_pil()``)."""
    if type(image).__module__ == "numpy" and type(image).__name__ == "ndarray":
        return array_to_pil(image)
    if hasattr(image, "to_pil") and callable(image.to_pil):  # mlflow.Image
        return image.to_pil()
    pil_image = _pil()
    if isinstance(image, pil_image.Image):
        return image
    raise InvalidImageType(
        f"Unsupported image object type: {type(image)}. `image` must be one of numpy.ndarray, "
        "PIL.Image.Image, and mlflow.Image.",
        INVALID_PARAMETER_VALUE,
    )


def array_to_pil(image: Any) -> Any:
    """MLflow's convert_to_pil_image: bool/int/float arrays, 2-D or H×W×{1,3,4}; integers must
    lie in [0, 255]; floats in [0, 1] (else min-max rescaled, with a warning)."""
    np = require("numpy", "images", "Logging a numpy image")
    pil_image = _pil()
    if image.dtype.kind not in _KINDS:
        raise InvalidImageType(
            f"Invalid array data type: '{image.dtype}'. Must be one of {list(_KINDS.values())}",
            INVALID_PARAMETER_VALUE,
        )
    if image.ndim not in (2, 3):
        raise InvalidImageValue(
            f"`image` must be a 2D or 3D array but got image shape: {image.shape}",
            INVALID_PARAMETER_VALUE,
        )
    if image.ndim == 3 and image.shape[2] not in (1, 3, 4):
        raise InvalidImageValue(
            f"Invalid channel length: {image.shape[2]}. Must be one of [1, 3, 4]",
            INVALID_PARAMETER_VALUE,
        )
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    is_int = np.issubdtype(image.dtype, np.integer)
    high = 255 if is_int else 1
    if image.size and (image.min() < 0 or image.max() > high):
        if is_int:
            raise InvalidImageValue(
                "Integer pixel values out of acceptable range [0, 255]. Found minimum value "
                f"{image.min()} and maximum value {image.max()}. Ensure all pixel values are "
                "within the specified range.",
                INVALID_PARAMETER_VALUE,
            )
        warnings.warn(
            "Float pixel values out of acceptable range [0.0, 1.0]. Found minimum value "
            f"{image.min()} and maximum value {image.max()}. Rescaling values to [0.0, 1.0] "
            "with min/max scaler.",
            stacklevel=3,
        )
        image = (image - image.min()) / (image.max() - image.min())
    if not is_int:
        image = image * 255
    return pil_image.fromarray(image.astype(np.uint8))


def compress(image: Any, max_size: int = COMPRESSED_IMAGE_SIZE) -> Any:
    """MLflow's thumbnail: the longer side scaled to ``max_size``, aspect ratio kept."""
    width, height = image.size
    if width > height:
        new_width, new_height = max_size, int(height * (max_size / width))
    else:
        new_width, new_height = int(width * (max_size / height)), max_size
    return image.resize((new_width, new_height))


def check_save_extension(artifact_file: str) -> None:
    """Refuse an extension Pillow cannot write, before anything is created."""
    import os

    ext = os.path.splitext(artifact_file)[1].lower()
    pil_image = _pil()
    pil_image.init()
    if ext not in pil_image.registered_extensions():
        raise InvalidImageValue(
            f"unknown file extension: {ext} (artifact_file '{artifact_file}'); use one Pillow "
            "can write, such as .png or .jpg",
            INVALID_PARAMETER_VALUE,
        )


def check_key(key: str) -> None:
    if not _KEY_RE.match(key):
        raise InvalidImageValue(
            "The `key` parameter may only contain alphanumerics, underscores (_), dashes (-), "
            "periods (.), spaces ( ), and slashes (/)."
            f"The provided key `{key}` contains invalid characters.",
            INVALID_PARAMETER_VALUE,
        )


def series_paths(key: str, step: int, timestamp: int) -> tuple[str, str]:
    """The full-size PNG and the compressed WebP of one step of an image series."""
    sanitized = key.replace("/", "~")
    base = f"images/{sanitized}+step+{step}+timestamp+{timestamp}+{uuid.uuid4()}"
    return f"{base}.png", f"{base}+compressed.webp"
