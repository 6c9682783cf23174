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
