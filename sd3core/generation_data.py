"""Training data of the image and text diffusions, computed once per split by the shipped frozen models
and cached next to the split (``{split}.{name}-{n}.pt`` for its first n scenes, recomputed when one of
those checkpoints or ``CACHE_FORMAT`` changes):

- ``image_tokens``: the VQ-VAE tokens of every scene's render;
- ``caption_examples``: per caption whose TSG aligns with the gold 3DSG (``lift_data.align_tsg``),
  its scene, its CLIP text embedding and the DGAE features of the 3DSG it describes
  (``lift_data.caption_3dsg``: the mentioned objects where they are).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from tqdm import tqdm

from .graph import SceneGraph

BATCH = 256
MAX_OBJECTS = 6       # the world's most objects per scene: features are padded to this
CACHE_FORMAT = 3      # raised when what a cache holds changes (2: the 3DSG features' "identity", 3: "relations")


def split_size(data_dir: str | Path, split: str) -> int:
    """Scenes in a built split."""
    import json
    return json.loads((Path(data_dir) / f"{split}.meta.json").read_text())["n"]


def _cached(data_dir: str | Path, split: str, name: str, models: tuple[str, ...], n: int,
            compute: Callable[[], dict]) -> dict:
    """``compute()`` (a dict of tensors), or its cached copy if made by the same checkpoints for ``n`` scenes."""
    from .checkpoints import read_manifest
    manifest = read_manifest()
    key = {"format": CACHE_FORMAT, **{m: manifest[f"{m}.pt"]["sha256"] for m in models}}
    path = Path(data_dir) / f"{split}.{name}-{n}.pt"
    if path.exists():
        cached = torch.load(path, weights_only=True)
        if cached.get("key") == key:
            return cached["data"]
    data = compute()
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"key": key, "data": data}, tmp)
    os.replace(tmp, path)
    return data


def image_tokens(data_dir: str | Path, split: str, n: int) -> torch.Tensor:
    """(n, grid, grid) int16 VQ tokens of the first ``n`` scenes' renders."""
    def compute() -> dict:
        from .pipeline import Engine
        from .world.build import load_split
        arrays, _ = load_split(data_dir, split, ("rgb",))
        engine = Engine()
        tokens = [engine.tokenize(list(arrays["rgb"][i:min(n, i + BATCH)]))
                  for i in tqdm(range(0, n, BATCH), desc=f"tokenize {split}")]
        return {"tokens": torch.cat(tokens).to(torch.int16)}
    return _cached(data_dir, split, "vqtokens", ("vqvae",), n, compute)["tokens"]


def pad_features(features: dict[str, torch.Tensor], objects: int = MAX_OBJECTS) -> dict[str, torch.Tensor]:
    """``dgae.graph_features`` output padded to ``objects`` objects (new pairs: the empty relation set)."""
    from .graph_tokens import default_coding
    pad = objects - features["geometry"].shape[1]
    return {"graph": F.pad(features["graph"], (0, 0, 0, pad)),
            "graph_valid": F.pad(features["graph_valid"], (0, pad)),
            "geometry": F.pad(features["geometry"], (0, 0, 0, pad)),
            "identity": F.pad(features["identity"], (0, 0, 0, pad)),
            "relations": F.pad(features["relations"], (0, pad, 0, pad), value=default_coding().set_index(()))}


def graph_features_batched(engine, graphs: list[SceneGraph]) -> dict[str, torch.Tensor]:
    """``dgae.graph_features`` of many 3DSGs, in batches, padded to ``MAX_OBJECTS``, on the CPU."""
    from .models.dgae import graph_features
    parts = []
    with torch.inference_mode():
        for i in range(0, len(graphs), BATCH):
            f = pad_features(graph_features(engine.model("dgae"), graphs[i:i + BATCH]))
            parts.append({k: v.cpu() for k, v in f.items()})
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def caption_examples(data_dir: str | Path, split: str, n: int) -> dict:
    """The aligned captions of the first ``n`` scenes: "scene" (E,) int64, "caption" list of E str,
    "text" (E, Dt) CLIP embeddings, and the padded 3DSG features "graph" / "graph_valid" /
    "geometry" / "identity" / "relations" (``dgae.graph_features``), float16 where float."""
    def compute() -> dict:
        from .lift_data import align_tsg, caption_3dsg
        from .models.clip import encode_texts
        from .pipeline import Engine
        from .world.build import load_split
        _, records = load_split(data_dir, split, ())
        scenes, captions, graphs = [], [], []
        for index, record in enumerate(records[:n]):
            gold = SceneGraph.from_dict(record["graph3d"])
            for caption in record["captions"]:
                tsg = SceneGraph.from_dict(caption["tsg"])
                ids = align_tsg(tsg, gold)
                if ids is not None and tsg.objects:
                    scenes.append(index), captions.append(caption["text"]), graphs.append(caption_3dsg(tsg, gold, ids))
        engine = Engine()
        with torch.inference_mode():
            text = torch.cat([encode_texts(engine.model("clip"), captions[i:i + BATCH]).cpu()
                              for i in tqdm(range(0, len(captions), BATCH), desc=f"encode captions {split}")])
        features = graph_features_batched(engine, graphs)
        return {"scene": torch.tensor(scenes), "caption": captions, "text": text.half(),
                **{k: v.half() if v.is_floating_point() else v for k, v in features.items()}}
    return _cached(data_dir, split, "captions", ("clip", "dgae"), n, compute)


def scene_examples(data_dir: str | Path, split: str, n: int) -> dict:
    """The first ``n`` scenes' captions and gold 3DSGs: "captions" (n lists of str), and the padded
    DGAE features of each whole gold 3DSG, "graph" / "graph_valid" / "geometry" / "identity" /
    "relations" (float16 where float)."""
    def compute() -> dict:
        from .pipeline import Engine
        from .world.build import load_split
        _, records = load_split(data_dir, split, ())
        records = records[:n]
        features = graph_features_batched(Engine(), [SceneGraph.from_dict(r["graph3d"]) for r in records])
        return {"captions": [[c["text"] for c in r["captions"]] for r in records],
                **{k: v.half() if v.is_floating_point() else v for k, v in features.items()}}
    return _cached(data_dir, split, "scenes", ("dgae",), n, compute)


def dual_targets(data_dir: str | Path, split: str, n: int, examples: list) -> torch.Tensor:
    """The dual term's targets for the graph diffusion's lifting examples of the first ``n`` scenes
    (``lift_data.lift_examples``, in order): for each, how the shipped 3D -> X models read the 3DSG
    its input describes (``lift_data.caption_3dsg`` of the input's objects placed at their gold
    positions), per object the image diffusion's features (``ImageDiffusion.object_features``) and
    beside them the text diffusion's, with the scene's render as its image
    (``TextDiffusion.object_features``): (E, MAX_OBJECTS, W_image + W_text) float16, zeros for padding."""
    def compute() -> dict:
        from .lift_data import caption_3dsg
        from .pipeline import Engine
        engine = Engine()
        graphs = [caption_3dsg(ex.graph, ex.gold, dict(zip((o.id for o in ex.graph.objects), ex.ids)))
                  for ex in examples]
        features = graph_features_batched(engine, graphs)
        renders = image_tokens(data_dir, split, n)[torch.tensor([ex.scene for ex in examples])].flatten(1)
        image_model, text_model = engine.model("image_diffusion"), engine.model("text_diffusion")
        out = []
        with torch.inference_mode():
            for i in tqdm(range(0, len(graphs), BATCH), desc=f"dual targets {split}"):
                cond = {k: v[i:i + BATCH].to(engine.device).float() if v.is_floating_point()
                        else v[i:i + BATCH].to(engine.device) for k, v in features.items()}
                text_cond = {**cond, "image": renders[i:i + BATCH].long().to(engine.device),
                             "use_graph": torch.ones(len(cond["graph"]), dtype=torch.bool, device=engine.device)}
                both = torch.cat([image_model.object_features(cond), text_model.object_features(text_cond)], -1)
                out.append((both * cond["graph_valid"][:, 1:, None]).cpu())
        return {"targets": torch.cat(out).half()}
    models = ("detector", "dgae", "vqvae", "image_diffusion", "text_diffusion")
    return _cached(data_dir, split, "dual", models, n, compute)["targets"]
