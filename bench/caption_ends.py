"""What the relations in generated captions join: the SI2T failure that relation correctness hides.

Run: .venv/bin/python bench/caption_ends.py [--limit 300]

On the first ``--limit`` test scenes (``data/world``), as ``text_diffusion.evaluate`` does: the
detector's VSG of each render, lifted by the shipped graph diffusion (16 steps, seed 0), one caption
per scene from image + 3DSG, parsed by ``textparse``. For each spatial relation a caption states it
counts:

- "same words at both ends": subject and object have the same label and words ("A white pyramid
  is behind a white pyramid"), so the caption relates an object to itself or cannot tell which;
- "each end names one gold object": both ends pick out exactly one object of the gold 3DSG, the
  condition of relation correctness;
- "holds in the 3DSG it was drawn from": the relation is one of the lifted 3DSG the caption model
  was given (its ends named as in the gold check), so a relation that holds there but not in the
  gold 3DSG is the detector's or the lifter's error, not the caption model's;
- "holds in the gold 3DSG": relation correctness itself.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for sd3core

import torch  # noqa: E402

from sd3core.evaluate import named_gold_objects, relation_correctness  # noqa: E402
from sd3core.graph import SceneGraph  # noqa: E402
from sd3core.models.graph_diffusion import lift  # noqa: E402
from sd3core.pipeline import Engine  # noqa: E402
from sd3core.textparse import parse_texts  # noqa: E402
from sd3core.vocab import canonical_word  # noqa: E402
from sd3core.world.build import load_split  # noqa: E402


def _names(o) -> tuple:
    return canonical_word(o.label), frozenset(canonical_word(a) for a in o.attributes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=300, help="test scenes")
    parser.add_argument("--data", default="data/world")
    args = parser.parse_args()
    engine = Engine()
    arrays, records = load_split(args.data, "test", ("rgb",))
    images = list(arrays["rgb"][:args.limit])
    gold = [SceneGraph.from_dict(r["graph3d"]) for r in records[:args.limit]]
    vsgs = [d.graph for i in range(0, len(images), 100) for d in engine.detect(images[i:i + 100])]
    generator = torch.Generator(device=engine.device).manual_seed(0)
    graphs = [g for i in range(0, len(vsgs), 256)
              for g in lift(engine.model("graph_diffusion"), vsgs[i:i + 256], 16, generator)]
    captions = [c for i in range(0, len(images), 100)
                for c in engine.generate_captions(graphs[i:i + 100], images[i:i + 100], seed=i)]
    stated = same = named = drawn = holds = 0
    for tsg, g, lifted in zip(parse_texts(captions), gold, graphs):
        relations = tsg.spatial_relations()
        stated += len(relations)
        same += sum(_names(tsg.objects[r.subject]) == _names(tsg.objects[r.object]) for r in relations)
        holds += sum(relation_correctness(tsg, g))
        drawn += sum(relation_correctness(tsg, lifted))
        ends = named_gold_objects(tsg, g)
        named += sum(ends[r.subject] is not None and ends[r.object] is not None for r in relations)
    print(f"{args.limit} test scenes, {stated} stated spatial relations\n")
    print("| of the stated relations | count | share |\n|---|---|---|")
    for name, count in (("same words at both ends", same), ("each end names one gold object", named),
                        ("holds in the 3DSG it was drawn from", drawn),
                        ("holds in the gold 3DSG (relation correctness)", holds)):
        print(f"| {name} | {count} | {count / max(stated, 1):.3f} |")


if __name__ == "__main__":
    main()
