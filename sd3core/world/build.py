"""Build data sets of the synthetic world: rendered images with gold 3DSG, VSG and captions.

A split is a disjoint range of scene seeds (``SPLIT_SEEDS``); scene ``i`` of a split has seed
``SPLIT_SEEDS[split] + i``, so the same (split, i) always gives byte-identical data, whatever the
number of workers or shards. A data set directory holds, per shard ``k`` of ``shard_size`` scenes:

- ``{split}-{k:05d}.rgb.npy``   (N, S, S, 3) uint8 sRGB images
- ``{split}-{k:05d}.depth.npy`` (N, S, S) float16 camera-space depth in metres, inf for sky
- ``{split}-{k:05d}.mask.npy``  (N, S, S) int8 instance masks, body index or -1
- ``{split}-{k:05d}.jsonl``     one JSON record a scene: seed, index, graph3d, vsg, captions
  (each caption ``{"text", "tsg"}``), graphs in the DESIGN.md format
and ``{split}.meta.json`` with the build parameters. Every file is written to a temporary name and
renamed when complete, so an interrupted build never leaves a half-written shard.
"""
from __future__ import annotations

import json
import os
from multiprocessing import get_context
from pathlib import Path
from typing import Iterator

import numpy as np
from tqdm import tqdm

from .describe import describe_many
from .gold import scene_to_3dsg, scene_to_vsg
from .render import keep_freed_memory, render
from .sample import sample_scene

SPLIT_SEEDS = {"train": 0, "val": 1_000_000_000, "test": 2_000_000_000}
SPLIT_SIZE = 1_000_000_000  # seeds per split: a split holds at most this many scenes
CAPTIONS_PER_SCENE = 5


def scene_seed(split: str, index: int) -> int:
    """The seed of scene ``index`` of ``split``; raises ValueError for an unknown split or index."""
    if split not in SPLIT_SEEDS:
        raise ValueError(f"split: got {split!r}, expected one of {', '.join(SPLIT_SEEDS)}")
    if not 0 <= index < SPLIT_SIZE:
        raise ValueError(f"index: got {index}, expected 0 to {SPLIT_SIZE - 1}")
    return SPLIT_SEEDS[split] + index


def make_example(seed: int, size: int = 128) -> dict:
    """Sample, render and describe one scene: arrays ``rgb``/``depth``/``mask`` and ``record``."""
    scene = sample_scene(seed)
    image = render(scene, size=size)
    graph3d = scene_to_3dsg(scene)
    captions = describe_many(graph3d, np.random.default_rng([seed, 1]), CAPTIONS_PER_SCENE)
    record = {"seed": seed, "graph3d": graph3d.to_dict(),
              "vsg": scene_to_vsg(scene, image.mask).to_dict(),
              "captions": [{"text": text, "tsg": tsg.to_dict()} for text, tsg in captions]}
    return {"rgb": image.rgb, "depth": image.depth.astype(np.float16),
            "mask": image.mask.astype(np.int8), "record": record}


def _make_example_args(args: tuple[int, int]) -> dict:
    return make_example(*args)


def _save_atomic(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        write(f)
    os.replace(tmp, path)


def _write_shard(out: Path, stem: str, examples: list[dict], first_index: int) -> None:
    for key in ("rgb", "depth", "mask"):
        stacked = np.stack([e[key] for e in examples])
        _save_atomic(out / f"{stem}.{key}.npy", lambda f: np.save(f, stacked))
    lines = [json.dumps({"index": first_index + i, **e["record"]}, sort_keys=True) + "\n"
             for i, e in enumerate(examples)]
    _save_atomic(out / f"{stem}.jsonl", lambda f: f.write("".join(lines).encode()))


def build_split(split: str, n: int, out: str | Path, size: int = 128, shard_size: int = 1000,
                workers: int = 2, progress: bool = True) -> Path:
    """Write scenes 0..n-1 of ``split`` into ``out`` (created if needed); returns ``out``."""
    if n < 1:
        raise ValueError(f"n: got {n}, expected at least 1")
    if not 32 <= size <= 512:
        raise ValueError(f"size: got {size}, expected 32 to 512 pixels")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(scene_seed(split, i), size) for i in range(n)]
    bar = tqdm(total=n, desc=f"world {split}", unit="scene", disable=not progress)
    pool = get_context("fork").Pool(workers, initializer=keep_freed_memory) if workers > 1 else _Serial()
    with pool:
        examples = pool.imap(_make_example_args, jobs, chunksize=8)
        for k, start in enumerate(range(0, n, shard_size)):
            shard = []
            for _ in range(min(shard_size, n - start)):
                shard.append(next(examples))
                bar.update(1)
            _write_shard(out, f"{split}-{k:05d}", shard, start)
    bar.close()
    meta = {"split": split, "n": n, "size": size, "shard_size": shard_size,
            "first_seed": SPLIT_SEEDS[split], "captions_per_scene": CAPTIONS_PER_SCENE}
    _save_atomic(out / f"{split}.meta.json", lambda f: f.write(json.dumps(meta, indent=1).encode()))
    return out


class _Serial:
    """The in-process stand-in for a worker pool (``imap`` only)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    @staticmethod
    def imap(fn, jobs, chunksize=1):
        return map(fn, jobs)


def _shard_stems(directory: Path, split: str) -> list[Path]:
    meta_path = directory / f"{split}.meta.json"
    if not meta_path.exists():
        raise FileNotFoundError(f"{meta_path}: no built '{split}' split here "
                                f"(python -m sd3core world build --split {split} --out {directory})")
    meta = json.loads(meta_path.read_text())
    return [directory / f"{split}-{k:05d}" for k in range(-(-meta["n"] // meta["shard_size"]))]


def read_split(directory: str | Path, split: str) -> Iterator[dict]:
    """Yield the examples of a built split in index order: ``rgb``, ``depth``, ``mask``, ``record``."""
    for stem in _shard_stems(Path(directory), split):
        arrays = {key: np.load(f"{stem}.{key}.npy") for key in ("rgb", "depth", "mask")}
        with open(f"{stem}.jsonl") as f:
            for i, line in enumerate(f):
                yield {**{key: a[i] for key, a in arrays.items()}, "record": json.loads(line)}


def load_split(directory: str | Path, split: str, keys: tuple[str, ...] = ("rgb",)) -> tuple[dict, list[dict]]:
    """A whole built split in memory: ``({key: (N, …) array}, [record, …])`` in index order.

    ``keys`` picks among "rgb", "depth", "mask" (see the module docstring for shapes and dtypes).
    """
    stems = _shard_stems(Path(directory), split)
    arrays = {key: np.concatenate([np.load(f"{s}.{key}.npy") for s in stems]) for key in keys}
    records = [json.loads(line) for s in stems for line in open(f"{s}.jsonl")]
    return arrays, records
