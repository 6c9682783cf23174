"""Shipped checkpoints: self-describing files, a manifest with checksums, and safe loading.

A checkpoint file is ``torch.save({"config": dict, "state_dict": dict}, path)``: the model is rebuilt
from its config (plain values) and loaded with ``torch.load(weights_only=True)``. Weights are trained
in float32 and stored in float16 (``stored_weights``; half the file size, and ``load_state_dict``
casts them back); training measures its final metrics on the stored weights. Every shipped file
has an entry in ``checkpoints/manifest.json``::

    {"checkpoints": {"vqvae.pt": {"sha256": "…", "size": 123, "command": "python -m sd3core train vqvae …",
                                  "data": {"split": "train", "n": 20000, "first_seed": 0},
                                  "seed": 0, "wall_time_s": 1800.0, "metrics": {"psnr_db": 26.3}}}}

Loading checks the sha256 first; a missing or altered file raises an error naming the file and the
command that rebuilds it.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch

CHECKPOINT_DIR = Path(__file__).resolve().parent.parent / "checkpoints"
MANIFEST_NAME = "manifest.json"
STORAGE_DTYPE = torch.float16


def sha256_of(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(directory: str | Path = CHECKPOINT_DIR) -> dict[str, dict]:
    """name -> manifest entry; an absent manifest is an empty one."""
    path = Path(directory) / MANIFEST_NAME
    return json.loads(path.read_text())["checkpoints"] if path.exists() else {}


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def stored_weights(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The weights as a checkpoint stores them: on the CPU, floating tensors in ``STORAGE_DTYPE``,
    the rest (integer buffers) unchanged."""
    return {k: v.detach().cpu().to(STORAGE_DTYPE if v.is_floating_point() else v.dtype)
            for k, v in state_dict.items()}


def save_checkpoint(path: str | Path, config: dict, state_dict: dict[str, torch.Tensor]) -> Path:
    """Write ``{"config", "state_dict"}`` to ``path`` atomically (temporary name, then rename), the
    weights as ``stored_weights`` gives them."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"config": config, "state_dict": stored_weights(state_dict)}, tmp)
    os.replace(tmp, path)
    return path


def record_checkpoint(name: str, entry: dict[str, Any], directory: str | Path = CHECKPOINT_DIR) -> dict:
    """Add or replace ``name``'s manifest entry, with the file's sha256 and size filled in."""
    directory = Path(directory)
    entries = read_manifest(directory)
    path = directory / name
    entries[name] = {**entry, "sha256": sha256_of(path), "size": path.stat().st_size}
    body = json.dumps({"checkpoints": dict(sorted(entries.items()))}, indent=1) + "\n"
    _write_atomic(directory / MANIFEST_NAME, body.encode())
    return entries[name]


def load_checkpoint(name: str, directory: str | Path = CHECKPOINT_DIR) -> dict:
    """Verify ``name`` against the manifest and load it: ``{"config": dict, "state_dict": dict}``.

    Raises FileNotFoundError (file or manifest entry missing) or ValueError (checksum differs), each
    naming the file and the command that rebuilds it.
    """
    directory = Path(directory)
    entry = read_manifest(directory).get(name)
    path = directory / name
    if entry is None:
        raise FileNotFoundError(f"{path}: not listed in {directory / MANIFEST_NAME}; "
                                f"train it with `python -m sd3core train ...` and record it")
    rebuild = f"rebuild it with: {entry['command']}"
    if not path.exists():
        raise FileNotFoundError(f"{path}: checkpoint missing; {rebuild}")
    if sha256_of(path) != entry["sha256"]:
        raise ValueError(f"{path}: sha256 differs from the manifest (corrupt or replaced); {rebuild}")
    return torch.load(path, map_location="cpu", weights_only=True)
