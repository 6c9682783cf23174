"""Examples for lifting 2D scene graphs to 3D: an input graph, the gold 3DSG, and which gold object
each input object is.

Inputs are what the lifter will really see (DESIGN.md, issue "3DSG diffusion"): the gold TSG of a
caption (only the objects and relations it mentions) and the VSG the shipped detector reads from the
scene's rendered image (not the gold VSG), cached next to the split as ``{split}.detections.jsonl``
and recomputed when the detector checkpoint changes.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .evaluate import match_objects
from .graph import SceneGraph, SGObject, SGRelation
from .spatial import relations_2d


@dataclass(frozen=True)
class LiftExample:
    graph: SceneGraph        # the input: kind "tsg" or "vsg"
    gold: SceneGraph         # the scene's gold 3DSG, every object
    ids: tuple[int, ...]     # gold object id of each input object, in ``graph.objects`` order
    scene: int               # the scene's index in its split (its render, its image tokens)


def align_tsg(tsg: SceneGraph, graph3d: SceneGraph) -> dict[int, int] | None:
    """TSG id -> gold 3DSG id, each TSG object matched to the one gold object with its label and
    all its attributes; None when an object has no such gold object or several (not referable)."""
    out = {}
    for o in tsg.objects:
        fits = [g.id for g in graph3d.objects if g.label == o.label and set(o.attributes) <= set(g.attributes)]
        if len(fits) != 1 or fits[0] in out.values():
            return None
        out[o.id] = fits[0]
    return out


def _detector_sha() -> str:
    from .checkpoints import read_manifest
    return read_manifest()["detector.pt"]["sha256"]


def detected_vsgs(data_dir: str | Path, split: str, n: int, batch: int = 64) -> list[SceneGraph]:
    """The shipped detector's VSG (at its operating threshold) of the first ``n`` scenes of a split,
    read from the cache when it was made by the same detector checkpoint for at least ``n`` scenes."""
    cache = Path(data_dir) / f"{split}.detections.jsonl"
    sha = _detector_sha()
    if cache.exists():
        with open(cache) as f:
            header = json.loads(f.readline())
            if header["detector_sha256"] == sha and header["n"] >= n:
                return [SceneGraph.from_dict(json.loads(next(f))) for _ in range(n)]
    from tqdm import tqdm

    from .pipeline import Engine
    from .world.build import load_split
    arrays, _ = load_split(data_dir, split, ("rgb",))
    engine = Engine()
    graphs = []
    for start in tqdm(range(0, n, batch), desc=f"detect {split}"):
        graphs += [d.graph for d in engine.detect(list(arrays["rgb"][start:min(n, start + batch)]))]
    tmp = cache.with_name(cache.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(json.dumps({"detector_sha256": sha, "n": n}) + "\n")
        f.writelines(g.to_json() + "\n" for g in graphs)
    os.replace(tmp, cache)
    return graphs


def matched_vsg(detected: SceneGraph, gold_vsg: SceneGraph) -> tuple[SceneGraph, tuple[int, ...]]:
    """The detections that match a gold object (IoU >= ``evaluate.MATCH_IOU``), renumbered 0..k-1
    with their 2D relations recomputed, and the gold id of each."""
    match = match_objects(detected, gold_vsg)
    kept = [o for o in detected.objects if o.id in match]
    objects = [SGObject(i, o.label, o.attributes, o.box) for i, o in enumerate(kept)]
    relations = [SGRelation(s, p, o, p) for s, p, o in relations_2d(objects)]
    return SceneGraph("vsg", objects, relations), tuple(match[o.id] for o in kept)


def lift_examples(data_dir: str | Path, split: str, limit: int = 0,
                  captions_per_scene: int | None = None) -> list[LiftExample]:
    """Per scene of the first ``limit`` (0: all) of ``split``: one example per caption (the first
    ``captions_per_scene``, default all) whose TSG aligns with the gold 3DSG, then one for the
    detected VSG (matched detections only, see ``matched_vsg``)."""
    from .world.build import load_split
    _, records = load_split(data_dir, split, ())
    records = records[:limit] if limit else records
    vsgs = detected_vsgs(data_dir, split, len(records))
    examples = []
    for scene, (record, detected) in enumerate(zip(records, vsgs)):
        gold = SceneGraph.from_dict(record["graph3d"])
        for caption in record["captions"][:captions_per_scene]:
            tsg = SceneGraph.from_dict(caption["tsg"])
            ids = align_tsg(tsg, gold)
            if ids is not None:
                examples.append(LiftExample(tsg, gold, tuple(ids[o.id] for o in tsg.objects), scene))
        vsg, ids = matched_vsg(detected, SceneGraph.from_dict(record["vsg"]))
        examples.append(LiftExample(vsg, gold, ids, scene))
    return examples


def caption_3dsg(tsg: SceneGraph, gold: SceneGraph, ids: dict[int, int]) -> SceneGraph:
    """The 3DSG a caption describes: the TSG's objects (its ids, labels and attribute words) placed
    where their gold objects are (``ids``: TSG id -> gold id, as ``align_tsg`` gives), with every
    gold relation among them. What lifting that TSG should produce, and what the image diffusion is
    trained on."""
    by_id = {o.id: o for o in gold.objects}
    back = {g: t for t, g in ids.items()}
    objects = [SGObject(o.id, o.label, o.attributes, None, by_id[ids[o.id]].position, by_id[ids[o.id]].size)
               for o in tsg.objects]
    relations = [SGRelation(back[r.subject], r.predicate, back[r.object], r.phrase)
                 for r in gold.relations if r.subject in back and r.object in back]
    return SceneGraph("3dsg", objects, relations)
