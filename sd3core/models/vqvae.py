"""Image tokenizer: a convolutional auto-encoder with a finite-scalar-quantised bottleneck (FSQ).

An (B, 3, S, S) image in [0, 1] becomes a (B, S/f, S/f) grid of integer tokens (f = 2**len(channels),
8 for the default: 64 px -> 8 x 8 = 64 tokens) and back. World renders (128 px) are area-downsampled
to ``image_size`` first: at 128 px the convolutions cost too much to train on 2 CPU cores.
FSQ rounds each of ``len(levels)`` latent channels to one of ``levels[i]`` values, so the code book is
the product of the levels (8*5*5*5 = 1000), with no code-book parameters to collapse.

The reconstruction loss weighs each pixel by ``1 + OBJECT_WEIGHT * o``, ``o`` the share of the pixel
that objects cover (their instance masks, grown by a pixel so that outlines count): sky and ground
fill most of an image, and an unweighted loss lets the codes spend themselves there while small
objects blur beyond recognition.

A run can retrain the decoder alone (``frozen_encoder``, started with ``--init vqvae.pt``): the codes
of every image stay as they were, so the image diffusion trained on them still fits, while the
decoder may grow (``decoder_channels``, ``decoder_blocks``) and learn with a perceptual loss,
``reader_loss``: how far the shipped detector's features of the reconstruction lie from those of the
render where objects are, the way LPIPS uses a trained network's features.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

OBJECT_WEIGHT = 8.0   # extra loss weight of object pixels over background ones (see the docstring)


@dataclass
class Config:
    image_size: int = 64                               # pixels per side of the input image
    channels: tuple[int, ...] = (32, 64, 128)          # feature width after each stride-2 stage
    blocks: tuple[int, ...] = (1, 1, 1)                # residual blocks per stage, encoder and decoder
    levels: tuple[int, ...] = (8, 5, 5, 5)             # FSQ levels per latent channel
    decoder_channels: tuple[int, ...] = ()             # the decoder's widths, stage by stage as ``channels``
                                                       # (empty: ``channels``)
    decoder_blocks: tuple[int, ...] = ()               # the decoder's blocks per stage (empty: ``blocks``)
    frozen_encoder: bool = False                       # training: only the decoder learns, the codes stay
    reader_weight: float = 0.0                         # training: weight of ``reader_loss`` (0: not computed)


class ResBlock(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(nn.GroupNorm(8, width), nn.SiLU(), nn.Conv2d(width, width, 3, padding=1),
                                  nn.GroupNorm(8, width), nn.SiLU(), nn.Conv2d(width, width, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def index_digits(index: torch.Tensor, levels: tuple[int, ...]) -> list[torch.Tensor]:
    """(...) int64 code indices -> one (...) tensor of digits per channel, digit i in 0 .. levels[i]-1
    (index = d0 + l0 * (d1 + l1 * (d2 + ...)), the order ``FSQ.to_index`` writes)."""
    digits = []
    for level in levels:
        digits.append(index % level)
        index = torch.div(index, level, rounding_mode="floor")
    return digits


class FSQ(nn.Module):
    """Finite scalar quantisation (Mentzer et al. 2023) with a straight-through gradient.

    Channel i takes the ``levels[i]`` integer values -L//2 .. (L-1)//2 (an even L is offset by a
    half so that all L values are reachable), scaled by 1 / (L//2) into [-1, 1].
    """

    def __init__(self, levels: tuple[int, ...]):
        super().__init__()
        lv = torch.tensor(levels, dtype=torch.float32).view(1, -1, 1, 1)
        offset = (lv % 2 == 0).float() * 0.5
        self.register_buffer("half_range", (lv - 1) / 2, persistent=False)
        self.register_buffer("offset", offset, persistent=False)
        self.register_buffer("shift", torch.atanh(offset / ((lv - 1) / 2)), persistent=False)
        self.register_buffer("half_width", torch.div(lv, 2, rounding_mode="floor"), persistent=False)
        basis = np.cumprod([1] + list(levels[:-1]))
        self.register_buffer("basis", torch.tensor(basis).view(1, -1, 1, 1), persistent=False)
        self.levels = tuple(levels)
        self.codebook_size = int(np.prod(levels))

    def quantise(self, z: torch.Tensor) -> torch.Tensor:
        """(B, D, h, w) latents -> same shape, each channel on its grid in [-1, 1]."""
        bounded = torch.tanh(z + self.shift) * self.half_range - self.offset
        return (bounded + (bounded.round() - bounded).detach()) / self.half_width

    def to_index(self, q: torch.Tensor) -> torch.Tensor:
        """(B, D, h, w) quantised latents -> (B, h, w) int64 code indices."""
        digits = (q * self.half_width + self.half_width).round().long()
        return (digits * self.basis).sum(1)

    def from_index(self, index: torch.Tensor) -> torch.Tensor:
        """(B, h, w) code indices -> (B, D, h, w) quantised latents."""
        digits = torch.stack(index_digits(index, self.levels), 1)
        return (digits.float() - self.half_width) / self.half_width


class VQVAE(nn.Module):
    def __init__(self, config: Config):
        super().__init__()
        self.config = config
        c, blocks = config.channels, config.blocks
        if len(blocks) != len(c):
            raise ValueError(f"blocks {blocks} must give one count per stage of channels {c}")
        dc, dblocks = config.decoder_channels or c, config.decoder_blocks or blocks
        if len(dc) != len(c) or len(dblocks) != len(c):
            raise ValueError(f"decoder_channels {dc} and decoder_blocks {dblocks} must give one value per "
                             f"stage of channels {c}")
        down = [nn.Conv2d(3, c[0], 4, stride=2, padding=1)]
        for i in range(len(c)):
            down += [ResBlock(c[i]) for _ in range(blocks[i])]
            if i + 1 < len(c):
                down += [nn.Conv2d(c[i], c[i + 1], 4, stride=2, padding=1)]
        self.encoder = nn.Sequential(*down, nn.GroupNorm(8, c[-1]), nn.SiLU(),
                                     nn.Conv2d(c[-1], len(config.levels), 1))
        up = [nn.Conv2d(len(config.levels), dc[-1], 3, padding=1)]
        for i in reversed(range(len(dc))):
            up += [ResBlock(dc[i]) for _ in range(dblocks[i])]
            if i > 0:
                up += [nn.ConvTranspose2d(dc[i], dc[i - 1], 4, stride=2, padding=1)]
        self.decoder = nn.Sequential(*up, nn.GroupNorm(8, dc[0]), nn.SiLU(),
                                     nn.ConvTranspose2d(dc[0], 3, 4, stride=2, padding=1))
        self.fsq = FSQ(config.levels)
        self.encoder.requires_grad_(not config.frozen_encoder)

    @property
    def grid(self) -> int:
        """Tokens per side of the grid."""
        return self.config.image_size // 2 ** len(self.config.channels)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) images in [0, 1] -> reconstructions, same shape (training path)."""
        return self.decoder(self.fsq.quantise(self.encoder(images * 2 - 1))) / 2 + 0.5

    @torch.no_grad()
    def tokenize(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) images in [0, 1] -> (B, h, w) int64 code indices (unpruned)."""
        return self.fsq.to_index(self.fsq.quantise(self.encoder(images * 2 - 1)))

    @torch.no_grad()
    def detokenize(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, h, w) code indices -> (B, 3, S, S) images in [0, 1]."""
        return (self.decoder(self.fsq.from_index(tokens)) / 2 + 0.5).clamp(0, 1)


def build(config: Config) -> VQVAE:
    return VQVAE(config)


def object_cover(mask: np.ndarray, size: int) -> torch.Tensor:
    """(N, H, W) int instance masks (-1: no object) -> (N, 1, size, size) float in [0, 1]: the share
    of each pixel that objects cover, after growing them by one pixel of the mask."""
    objects = torch.from_numpy(np.ascontiguousarray(mask) >= 0).float()[:, None]
    grown = F.max_pool2d(objects, 3, stride=1, padding=1)
    return grown if grown.shape[-1] == size else F.interpolate(grown, size=(size, size), mode="area")


def load_data(data_dir: str, split: str, limit: int = 0, config: Config | None = None):
    """World scenes of ``split`` as {"image": (3, S, S) float in [0, 1], "objects": (1, S, S) float
    in [0, 1] (``object_cover``)} samples; S is ``config.image_size`` (default: ``Config()``). With a
    ``reader_weight``, each sample also holds its "render": (3, H, W) uint8, as the world drew it."""
    from ..images import to_model_images
    from ..world.build import load_split
    config = config or Config()
    arrays, _ = load_split(data_dir, split, ("rgb", "mask"))
    n = min(limit, len(arrays["rgb"])) if limit else len(arrays["rgb"])
    chunks = range(0, n, 1000)
    images = torch.cat([to_model_images(arrays["rgb"][i:min(n, i + 1000)], config.image_size) for i in chunks])
    cover = torch.cat([object_cover(arrays["mask"][i:min(n, i + 1000)], config.image_size) for i in chunks])
    samples = [{"image": image, "objects": objects} for image, objects in zip(images, cover)]
    if config.reader_weight:
        renders = torch.from_numpy(np.ascontiguousarray(arrays["rgb"][:n])).permute(0, 3, 1, 2)
        for sample, render in zip(samples, renders):
            sample["render"] = render
    return samples


def checkpoints_read(config: Config) -> tuple[str, ...]:
    """The shipped checkpoints a run with ``config`` reads (recorded in its manifest entry)."""
    return ("detector.pt",) if config.reader_weight else ()


@lru_cache(maxsize=1)
def shipped_reader() -> nn.Module:
    """The shipped detector, frozen, in eval mode: the perceptual network of ``reader_loss``."""
    from ..checkpoints import load_checkpoint
    from . import detector
    state = load_checkpoint("detector.pt")
    reader = detector.build(detector.Config(**state["config"]))
    reader.load_state_dict(state["state_dict"])
    return reader.eval().requires_grad_(False)


def reader_loss(recon: torch.Tensor, render: torch.Tensor, objects: torch.Tensor) -> torch.Tensor:
    """(B, 3, S, S) reconstructions in [0, 1], (B, 3, H, W) uint8 renders and (B, 1, S, S) object
    cover (``object_cover``) -> () the mean over the shipped detector's stages of the squared distance
    between its features of the reconstruction (upsampled to the detector's input size, as
    ``Engine.detect`` does) and of the render, where objects are: each feature cell weighted by the
    share objects cover of it, each stage normalised by the render features' weighted mean square.
    Only objects count: matched on the background too, the features push the decoder to draw a
    lattice of texture over sky and ground."""
    reader = shipped_reader().to(recon.device)
    size = reader.config.image_size
    with torch.no_grad():
        target = reader.stage_features(F.interpolate(render.float() / 255, size=(size, size), mode="area"))
    seen = reader.stage_features(F.interpolate(recon, size=(size, size), mode="bilinear", align_corners=False))
    total = 0.0
    for a, b in zip(seen, target):
        weight = F.interpolate(objects, size=b.shape[-2:], mode="bilinear", align_corners=False)
        total = total + (weight * (a - b) ** 2).sum() / (weight * b ** 2).sum().clamp_min(1e-6)
    return total / len(seen)


def loss(model: nn.Module, batch: dict) -> tuple[torch.Tensor, dict]:
    """L1 + MSE reconstruction loss, pixels weighted by ``1 + OBJECT_WEIGHT * objects`` (weights
    normalised to mean 1 per batch), plus ``reader_weight`` times ``reader_loss``; logs the
    unweighted PSNR in dB."""
    config = (model.module if hasattr(model, "module") else model).config
    recon = model(batch["image"])
    weight = 1 + OBJECT_WEIGHT * batch["objects"]
    weight = weight / weight.mean()
    error = recon - batch["image"]
    total = (weight * (error.abs() + error ** 2)).mean()
    mse = (error ** 2).mean().detach()
    logs = {"psnr": float(10 * torch.log10(1 / mse.clamp_min(1e-10)))}
    if config.reader_weight:
        reading = reader_loss(recon.float(), batch["render"], batch["objects"])
        total = total + config.reader_weight * reading
        logs["reader"] = reading.item()
    return total, logs


def psnr_db(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(B, ...) images in [0, 1] -> (B,) peak signal-to-noise ratio in dB."""
    mse = ((a - b) ** 2).flatten(1).mean(1).clamp_min(1e-10)
    return 10 * torch.log10(1 / mse)


@torch.no_grad()
def evaluate(model: VQVAE, data_dir: str, split: str, limit: int) -> dict:
    """Mean PSNR of reconstructions through the token grid, and the share of codes in use."""
    data = load_data(data_dir, split, limit, model.config)
    device = next(model.parameters()).device
    psnrs, used = [], torch.zeros(model.fsq.codebook_size, dtype=torch.bool)
    for start in range(0, len(data), 64):
        images = torch.stack([data[i]["image"] for i in range(start, min(len(data), start + 64))]).to(device)
        tokens = model.tokenize(images)
        used[tokens.flatten().cpu()] = True
        psnrs.append(psnr_db(model.detokenize(tokens), images).cpu())
    return {"psnr_db": round(float(torch.cat(psnrs).mean()), 3),
            "codes_used_fraction": round(float(used.float().mean()), 4)}
