"""The Engine: loads each shipped model once (lazily), picks the device, and runs the arrows of the
SD3 data flow that exist so far — ``parse`` (text → TSG), ``tokenize`` / ``detokenize`` (image ⇄
VQ tokens), ``detect`` (image → VSG with depth), ``lift_to_3d`` (TSG or VSG → 3DSG),
``clip_score`` (image–caption agreement).

Images cross the API as (H, W, 3) uint8 sRGB numpy arrays; the Engine owns resizing and tensors.
"""
from __future__ import annotations

import os
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

from .checkpoints import CHECKPOINT_DIR, load_checkpoint
from .graph import SceneGraph
from .images import to_model_images, to_uint8_images

MAX_IMAGE_PIXELS = 4096 * 4096  # larger images are refused before any work
MAX_SAMPLES = 16                 # most samples one call may ask for


def pick_device() -> torch.device:
    """``SD3_DEVICE`` if set, else cuda, then mps, then cpu."""
    if os.environ.get("SD3_DEVICE"):
        return torch.device(os.environ["SD3_DEVICE"])
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def check_image(image: np.ndarray) -> np.ndarray:
    """Return ``image`` as (H, W, 3) uint8, or raise ValueError saying what was expected."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image: got {type(image).__name__}, expected an (H, W, 3) uint8 numpy array")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"image: got shape {image.shape}, expected (H, W, 3)")
    if image.shape[0] * image.shape[1] > MAX_IMAGE_PIXELS:
        raise ValueError(f"image: {image.shape[1]}x{image.shape[0]} pixels is over the limit of "
                         f"{MAX_IMAGE_PIXELS:,} pixels")
    if image.dtype != np.uint8:
        raise ValueError(f"image: got dtype {image.dtype}, expected uint8 (0-255)")
    return image[:, :, :3]


class Engine:
    """One per process. Models load on first use from ``checkpoint_dir`` (sha256-verified)."""

    def __init__(self, checkpoint_dir: str | Path = CHECKPOINT_DIR, device: str | torch.device | None = None):
        self.checkpoint_dir = Path(checkpoint_dir)
        self.device = torch.device(device) if device is not None else pick_device()
        self._models: dict[str, torch.nn.Module] = {}

    def model(self, stage: str) -> torch.nn.Module:
        """The trained model of ``stage`` ("vqvae", …), loaded once, in eval mode on the device."""
        if stage not in self._models:
            from .train import stage_module
            module = stage_module(stage)
            state = load_checkpoint(f"{stage}.pt", self.checkpoint_dir)
            model = module.build(module.Config(**state["config"]))
            model.load_state_dict(state["state_dict"])
            self._models[stage] = model.to(self.device).eval()
        return self._models[stage]

    def _autocast(self):
        return torch.autocast("cuda", dtype=torch.bfloat16) if self.device.type == "cuda" else nullcontext()

    def _batch(self, images: list[np.ndarray], size: int) -> torch.Tensor:
        """Checked (H, W, 3) uint8 images → (B, 3, size, size) float batch on the device."""
        if not images:
            raise ValueError("images: got an empty list, expected at least one image")
        return torch.cat([to_model_images(check_image(im)[None], size) for im in images]).to(self.device)

    def parse(self, text: str) -> SceneGraph:
        """Sentence → TSG (rules over spaCy; no checkpoint)."""
        from .textparse import parse_text
        return parse_text(text)

    def tokenize(self, images: list[np.ndarray]) -> torch.Tensor:
        """(H, W, 3) uint8 images → (B, h, w) int64 VQ tokens (images resized to the tokenizer's size)."""
        vq = self.model("vqvae")
        with torch.inference_mode(), self._autocast():
            return vq.tokenize(self._batch(images, vq.config.image_size)).cpu()

    def detokenize(self, tokens: torch.Tensor) -> list[np.ndarray]:
        """(B, h, w) int64 VQ tokens → list of (S, S, 3) uint8 images."""
        vq = self.model("vqvae")
        if tokens.ndim != 3 or tokens.shape[1:] != (vq.grid, vq.grid):
            raise ValueError(f"tokens: got shape {tuple(tokens.shape)}, expected (B, {vq.grid}, {vq.grid})")
        if int(tokens.min()) < 0 or int(tokens.max()) >= vq.fsq.codebook_size:
            raise ValueError(f"tokens: values must lie in 0..{vq.fsq.codebook_size - 1}")
        with torch.inference_mode(), self._autocast():
            return to_uint8_images(vq.detokenize(tokens.to(self.device)))

    def detect(self, images: list[np.ndarray], threshold: float | None = None) -> list:
        """(H, W, 3) uint8 images → ``detector.Detections`` (VSG, depth in metres, scores) each.

        ``threshold`` is the lowest heatmap score kept (default: the detector's operating point).
        """
        from .models.detector import DETECT_THRESHOLD, detect
        model = self.model("detector")
        with torch.inference_mode(), self._autocast():
            return detect(model, self._batch(images, model.config.image_size),
                          DETECT_THRESHOLD if threshold is None else threshold)

    def clip_score(self, images: list[np.ndarray], texts: list[str]) -> list[float]:
        """CLIP score (100 × max(cos, 0)) of each image with its caption, by the project's CLIP."""
        from .models.clip import clip_score, input_size
        model = self.model("clip")
        if len(images) != len(texts):
            raise ValueError(f"texts: got {len(texts)} captions for {len(images)} images, expected one each")
        with torch.inference_mode(), self._autocast():
            return clip_score(model, self._batch(images, input_size(model)), texts).float().cpu().tolist()

    def lift_to_3d(self, graph: SceneGraph, steps: int | None = None, seed: int = 0,
                   temperature: float | None = None) -> SceneGraph:
        """TSG or VSG → one 3DSG sampled by the graph diffusion (``lift_to_3d_samples`` with n = 1)."""
        return self.lift_to_3d_samples(graph, 1, steps, seed, temperature)[0]

    def lift_to_3d_samples(self, graph: SceneGraph, n: int, steps: int | None = None, seed: int = 0,
                           temperature: float | None = None) -> list[SceneGraph]:
        """TSG or VSG → ``n`` 3DSGs, drawn in one batch from ``seed`` (same seed, same graphs).

        Each keeps the input's objects and adds position and size (camera frame, metres) and every
        nine-predicate relation; relations a TSG states hold in each. ``steps`` and ``temperature``
        (0-2; 0: most likely positions, more: more varied scenes) default to the studio's,
        ``graph_diffusion.DEFAULT_STEPS`` and ``POSITION_TEMPERATURE``. An empty graph gives empty
        3DSGs. Raises ValueError for an unknown label, contradictory stated relations, more objects
        than the lifter takes, or ``n`` / ``steps`` / ``temperature`` out of range.
        """
        from .models.graph_diffusion import DEFAULT_STEPS, POSITION_TEMPERATURE, lift
        steps = DEFAULT_STEPS if steps is None else steps
        temperature = POSITION_TEMPERATURE if temperature is None else temperature
        if not 0 <= temperature <= 2:
            raise ValueError(f"temperature: got {temperature}, expected 0 to 2")
        if not isinstance(graph, SceneGraph):
            raise ValueError(f"graph: got {type(graph).__name__}, expected a SceneGraph "
                             "(SceneGraph.from_dict / from_json read the JSON format)")
        if not 1 <= n <= MAX_SAMPLES:
            raise ValueError(f"n: got {n}, expected 1 to {MAX_SAMPLES} samples")
        if not 1 <= steps <= 1000:
            raise ValueError(f"steps: got {steps}, expected 1 to 1000")
        model = self.model("graph_diffusion")
        generator = torch.Generator(device=self.device).manual_seed(seed)
        with torch.inference_mode():
            return lift(model, [graph] * n, steps, generator, temperature)
