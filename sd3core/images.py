"""Images between numpy (what callers hold) and tensors (what models read)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def to_model_images(rgb: np.ndarray, size: int) -> torch.Tensor:
    """(N, H, W, 3) uint8 sRGB -> (N, 3, size, size) float in [0, 1].

    Downsampling averages over the covered pixels ("area"); upsampling is bilinear.
    """
    images = torch.from_numpy(np.ascontiguousarray(rgb)).permute(0, 3, 1, 2).float() / 255
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    mode = "area" if images.shape[-1] > size else "bilinear"
    resized = F.interpolate(images, size=(size, size), mode=mode,
                            **({"align_corners": False} if mode == "bilinear" else {}))
    return resized.clamp(0, 1)


def to_uint8_images(images: torch.Tensor) -> list[np.ndarray]:
    """(N, 3, S, S) float in [0, 1] -> list of (S, S, 3) uint8 sRGB arrays."""
    return list((images.float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() * 255).round().astype(np.uint8))


def read_image(source, max_pixels: int) -> np.ndarray:
    """An image file (path or binary file object) -> (H, W, 3) uint8 sRGB.

    Raises ValueError when it is not an image PIL can read, or has more than ``max_pixels`` pixels
    (checked from the header, before the pixels are decoded).
    """
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(source) as image:
            if image.width * image.height > max_pixels:
                raise ValueError(f"image: {image.width}x{image.height} pixels is over the limit of {max_pixels:,} pixels")
            return np.array(image.convert("RGB"))  # a writable copy
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as err:
        raise ValueError(f"image: not a readable image file ({err})") from None


def save_png(image: np.ndarray, path) -> None:
    """Write an (H, W, 3) uint8 image as PNG, atomically (a temporary file, then renamed)."""
    import os
    from pathlib import Path

    from PIL import Image
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    Image.fromarray(image).save(tmp, format="PNG")
    os.replace(tmp, path)
