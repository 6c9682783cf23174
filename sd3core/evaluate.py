"""Metrics: plain functions of predicted and gold lists, so each is tested without a model.

Detection (image -> VSG): VOC-style mAP at IoU 0.5, attribute accuracy on matched objects, VSG
relation recall/precision, depth error and front/behind order.
"""
from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from .graph import SceneGraph
from .vocab import ATTRIBUTE_KIND, SHAPES

if TYPE_CHECKING:
    from .models.detector import Detections

MATCH_IOU = 0.5            # a detection matches a gold object at this IoU or more
DEPTH_ORDER_GAP = 0.4      # metres: pairs whose gold depths differ by more count for depth order
SLICE_SCENES = 32          # the slice check: the first scenes of the test split, rebuilt by the tests
# checkpoint -> the perception_report figures its slice check records
SLICE_FIGURES = {
    "vqvae.pt": ("vqvae_psnr_db", "vqvae_same_objects"),
    "detector.pt": ("detector_map50", "detector_colour_acc", "detector_size_acc", "detector_material_acc",
                    "detector_vsg_relation_recall"),
    "clip.pt": ("clip_i2t_recall_at_5", "clip_score_true", "clip_score_shuffled"),
    "verifier.pt": ("verifier_map50", "verifier_colour_acc", "verifier_vsg_relation_recall"),
}
GRAPH_SLICE_FIGURES = {  # the same for the 3DSG models (``python -m sd3core eval graph``)
    "graph_diffusion.pt": ("tsg_triplet_recall", "vsg_triplet_recall", "stated_kept", "vsg_depth_order_acc",
                           "consistency"),
    "dgae.pt": ("dgae_triplet_recall", "dgae_position_error_m"),
}
# the same for the image and text diffusions, their held-out loss (``train.heldout_loss``), and the
# caption grammar, its ``evaluate`` (``python -m sd3core eval generation --record-slice``)
GENERATION_SLICE_FIGURES = {
    "image_diffusion.pt": ("image_diffusion_heldout_loss", "image_diffusion_heldout_acc"),
    "text_diffusion.pt": ("text_diffusion_heldout_loss", "text_diffusion_heldout_acc"),
    "caption_grammar.pt": ("caption_grammar_gold_fluent", "caption_grammar_trigrams"),
}


def box_iou(a, b) -> float:
    """IoU of two [x0, y0, x1, y1] boxes."""
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match_objects(predicted: SceneGraph, gold: SceneGraph, same_label: bool = False) -> dict[int, int]:
    """Greedy one-to-one matching by descending IoU (>= MATCH_IOU): predicted id -> gold id."""
    pairs = sorted(((box_iou(p.box, g.box), i, j) for i, p in enumerate(predicted.objects)
                    for j, g in enumerate(gold.objects) if not same_label or p.label == g.label),
                   reverse=True)
    used_p, used_g, out = set(), set(), {}
    for iou, i, j in pairs:
        if iou >= MATCH_IOU and i not in used_p and j not in used_g:
            used_p.add(i), used_g.add(j)
            out[predicted.objects[i].id] = gold.objects[j].id
    return out


def mean_average_precision(predicted: list[Detections], gold: list[SceneGraph]) -> dict[str, float]:
    """VOC-style AP at IoU 0.5 per shape (all-point interpolated precision-recall area) and their mean.

    Detections of a class over all images are taken by descending score; each matches the unmatched
    gold object of its class and image with the highest IoU, if that is >= MATCH_IOU. Classes with
    no gold object are left out of the mean.
    """
    aps = {}
    for shape in SHAPES:
        dets = sorted(((s, n, o.box) for n, d in enumerate(predicted)
                       for o, s in zip(d.graph.objects, d.scores) if o.label == shape), key=lambda t: -t[0])
        golds = {n: [o.box for o in g.objects if o.label == shape] for n, g in enumerate(gold)}
        total = sum(len(v) for v in golds.values())
        if total == 0:
            continue
        used = {n: [False] * len(v) for n, v in golds.items()}
        hits = []
        for _, n, box in dets:
            ious = [box_iou(box, g) for g in golds[n]]
            j = max(range(len(ious)), key=lambda i: (not used[n][i], ious[i]), default=None)
            hit = j is not None and not used[n][j] and ious[j] >= MATCH_IOU
            if hit:
                used[n][j] = True
            hits.append(hit)
        tp = np.cumsum(hits) if hits else np.zeros(0)
        recall = np.concatenate([[0.0], tp / total, [tp[-1] / total if len(tp) else 0.0]])
        precision = np.concatenate([[1.0], tp / np.arange(1, len(tp) + 1), [0.0]])
        precision = np.maximum.accumulate(precision[::-1])[::-1]
        aps[shape] = float(np.sum(np.diff(recall) * precision[1:]))
    return {"map50": float(np.mean(list(aps.values()))) if aps else 0.0,
            **{f"ap50_{k}": v for k, v in aps.items()}}


def _kinds(attributes) -> dict[str, str]:
    return {ATTRIBUTE_KIND[a]: a for a in attributes if a in ATTRIBUTE_KIND}


def graph_metrics(predicted: list[Detections], gold: list[SceneGraph],
                  gold_3d: list[SceneGraph]) -> dict[str, float]:
    """Metrics of detections (as given: filter by score first) against the gold VSGs and 3DSGs.

    Detections are matched to gold VSG objects one-to-one by IoU >= MATCH_IOU, whatever the label.
    - ``object_recall`` / ``object_precision``: matched gold objects / gold, matched detections / detections;
    - ``label_acc``, ``colour_acc``, ``size_acc``, ``material_acc``: share of matched pairs that agree;
    - ``vsg_relation_recall``: of the gold VSG triples (subject, predicate, object), the share that the
      detected VSG holds between the detections matched to that subject and object;
      ``vsg_relation_precision``: of the detected triples, the share that map onto a gold triple
      (a triple with an unmatched end counts as wrong);
    - ``depth_mae_m``: mean |estimated - gold| depth (3DSG position z, metres) over matched pairs;
    - ``depth_order_acc``: over pairs of matched objects of one image whose gold depths differ by more
      than DEPTH_ORDER_GAP metres, the share whose estimated depths are in the same order.
    """
    n_gold = n_det = n_match = 0
    agree = {k: 0 for k in ("label", "colour", "size", "material")}
    rel_gold = rel_pred = rel_hit = 0
    depth_err, order_hits, order_pairs = [], 0, 0
    for det, g, g3 in zip(predicted, gold, gold_3d):
        match = match_objects(det.graph, g)
        gold_by_id = {o.id: o for o in g.objects}
        z_gold = {o.id: o.position[2] for o in g3.objects}
        n_gold, n_det, n_match = n_gold + len(g.objects), n_det + len(det.graph.objects), n_match + len(match)
        for o, z in zip(det.graph.objects, det.depth):
            if o.id in match:
                go = gold_by_id[match[o.id]]
                agree["label"] += o.label == go.label
                pk, gk = _kinds(o.attributes), _kinds(go.attributes)
                for kind in ("colour", "size", "material"):
                    agree[kind] += pk.get(kind) == gk.get(kind)
                depth_err.append(abs(z - z_gold[go.id]))
        gold_triples = {(r.subject, r.predicate, r.object) for r in g.relations}
        mapped = {(match.get(r.subject), r.predicate, match.get(r.object)) for r in det.graph.relations}
        rel_gold, rel_pred = rel_gold + len(gold_triples), rel_pred + len(det.graph.relations)
        rel_hit += len(gold_triples & mapped)
        est = {match[o.id]: z for o, z in zip(det.graph.objects, det.depth) if o.id in match}
        ids = sorted(est)
        for a in ids:
            for b in ids:
                if a < b and abs(z_gold[a] - z_gold[b]) > DEPTH_ORDER_GAP:
                    order_pairs += 1
                    order_hits += (est[a] - est[b]) * (z_gold[a] - z_gold[b]) > 0
    share = lambda a, b: float(a / b) if b else float("nan")  # noqa: E731
    return {"object_recall": share(n_match, n_gold), "object_precision": share(n_match, n_det),
            **{f"{k}_acc": share(v, n_match) for k, v in agree.items()},
            "vsg_relation_recall": share(rel_hit, rel_gold),
            "vsg_relation_precision": share(rel_hit, rel_pred),
            "depth_mae_m": float(np.mean(depth_err)) if depth_err else float("nan"),
            "depth_order_acc": share(order_hits, order_pairs)}


def detection_metrics(predicted: list[Detections], gold: list[SceneGraph], gold_3d: list[SceneGraph],
                      threshold: float) -> dict[str, float]:
    """``mean_average_precision`` over all given detections, ``graph_metrics`` over those scoring at
    least ``threshold`` (the VSG the studio shows)."""
    return {**mean_average_precision(predicted, gold),
            **graph_metrics([d.above(threshold) for d in predicted], gold, gold_3d)}


def same_objects_share(original: list[Detections], other: list[Detections]) -> float:
    """Share of the objects detected on the originals that are detected on the other images too,
    with the same label, colour and size and IoU >= MATCH_IOU (the VQ-VAE's "objects survive" check)."""
    found = total = 0
    for a, b in zip(original, other):
        match = match_objects(a.graph, b.graph)
        others = {o.id: o for o in b.graph.objects}
        for o in a.graph.objects:
            total += 1
            m = others.get(match.get(o.id))
            found += m is not None and m.label == o.label and m.attributes[:2] == o.attributes[:2]
    return found / total if total else float("nan")


def perception_report(engine, data_dir: str, split: str = "test", limit: int = 1000,
                      batch: int = 50) -> dict[str, float]:
    """The perception figures of the shipped models on ``limit`` scenes of a built split:
    tokenizer PSNR (dB, at its own resolution), detector metrics on the originals (and the
    verifier's, the second detector ``Engine.generate_image_tokens`` chooses with), the share of
    objects the detector finds again on the reconstructions, and CLIP retrieval and scores."""
    from .images import to_model_images
    from .models.clip import evaluate as clip_evaluate
    from .models.detector import DETECT_THRESHOLD, MAP_THRESHOLD
    from .models.vqvae import psnr_db
    from .world.build import load_split
    arrays, records = load_split(data_dir, split, ("rgb",))
    n = min(limit, len(records))
    size = engine.model("vqvae").config.image_size
    psnrs, dets, dets_recon, verifier_dets = [], [], [], []
    for start in range(0, n, batch):
        images = list(arrays["rgb"][start:min(n, start + batch)])
        recon = engine.detokenize(engine.tokenize(images))
        psnrs += psnr_db(to_model_images(np.stack(recon), size), to_model_images(np.stack(images), size)).tolist()
        dets += engine.detect(images, MAP_THRESHOLD)
        dets_recon += engine.detect(recon)
        verifier_dets += engine.detect(images, MAP_THRESHOLD, reader="verifier")
    gold = [SceneGraph.from_dict(r["vsg"]) for r in records[:n]]
    gold_3d = [SceneGraph.from_dict(r["graph3d"]) for r in records[:n]]
    report = {"scenes": n, "vqvae_psnr_db": float(np.mean(psnrs)),
              "vqvae_same_objects": same_objects_share([d.above(DETECT_THRESHOLD) for d in dets], dets_recon)}
    for reader, read in (("detector", dets), ("verifier", verifier_dets)):
        report.update({f"{reader}_{k}": v for k, v in detection_metrics(read, gold, gold_3d, DETECT_THRESHOLD).items()})
    report.update({k if k.startswith("clip_") else f"clip_{k}": v
                   for k, v in clip_evaluate(engine.model("clip"), data_dir, split, n).items()})
    captions = [SceneGraph.from_dict(r["captions"][0]["tsg"]) for r in records[:n]]  # CLIP's eval pairs
    report.update({f"clip_bound_{k}": v for k, v in retrieval_bound(captions, gold_3d).items()})
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in report.items()}


def record_slice_checks(report: dict[str, float], command: str, figures: dict = SLICE_FIGURES,
                        directory=None) -> None:
    """Write, for each checkpoint name of ``figures``, its figures of ``report`` (a report of the
    first ``SLICE_SCENES`` test scenes) into its manifest entry (in ``directory``, default the
    shipped one) as ``slice_check``, which ``tests/test_shipped.py`` reproduces."""
    from .checkpoints import CHECKPOINT_DIR, read_manifest, record_checkpoint
    directory = directory or CHECKPOINT_DIR
    entries = read_manifest(directory)
    for name, keys in figures.items():
        check = {"command": command, "metrics": {k: report[k] for k in keys}}
        record_checkpoint(name, {**entries[name], "slice_check": check}, directory)


def perception_sheet(engine, images: list[np.ndarray]):
    """Rows: originals, their reconstructions through the tokens, detections drawn on the originals."""
    from .draw import draw_detections, image_grid
    from PIL import Image
    recon = engine.detokenize(engine.tokenize(images))
    side = images[0].shape[0] * 2
    return image_grid([[Image.fromarray(im).resize((side, side), Image.NEAREST) for im in images],
                       [Image.fromarray(im).resize((side, side), Image.BICUBIC) for im in recon],
                       [draw_detections(im, d) for im, d in zip(images, engine.detect(images))]])


def generation_sheet(engine, texts: list[str], images: list[np.ndarray], n: int = 4, seed: int = 0):
    """The ST2I/SI2T sheet: a row per caption (the caption, then ``n`` images drawn from it by
    ``Engine.text_to_image``), then a row per image (the image, then the ``n`` captions
    ``Engine.image_to_text`` writes for it). Images enlarged to 192 pixels."""
    from PIL import Image

    from .draw import image_grid, text_panel
    side = 192

    def big(im: np.ndarray) -> Image.Image:
        return Image.fromarray(im).resize((side, side), Image.NEAREST)

    rows = [[text_panel([f"“{t}”"], side, side), *map(big, engine.text_to_image(t, n, seed=seed)["images"])]
            for t in texts]
    rows += [[big(im), *(text_panel([f"{k}. {c}"], side, side)
                         for k, c in enumerate(engine.image_to_text(im, n, seed=seed)["captions"], start=1))]
             for im in images]
    return image_grid(rows)


def _triples(graph: SceneGraph, ids: dict[int, int] | None = None) -> set[tuple[int, str, int]]:
    """The graph's nine-predicate triples, ends renamed by ``ids`` (graph id -> other id) if given."""
    name = (lambda i: i) if ids is None else ids.__getitem__
    return {(name(r.subject), r.predicate, name(r.object)) for r in graph.spatial_relations()}


def lift_metrics(examples: list, lifted: list[SceneGraph]) -> dict[str, float]:
    """Figures of lifted 3DSGs against the gold (``lift_data.LiftExample`` and the 3DSG of each).

    Over the gold 3DSG's triples among the objects an input has (the paper's Table 4 measure):
    - ``{tsg,vsg}_raw_triplet_recall``: share the input graph itself states;
      ``{tsg,vsg}_triplet_recall`` / ``_precision``: share the lifted 3DSG holds / share of its
      triples that are gold;
    - ``stated_kept``: of the relations a TSG states, the share in the lifted 3DSG's relations;
      ``stated_kept_by_positions``: the share that ``spatial.relations_3d`` reads from its positions;
    - ``vsg_depth_order_acc``: pairs whose gold depths differ by more than DEPTH_ORDER_GAP metres,
      share with the lifted depths in the same order; ``vsg_position_error_m``: mean distance from
      the gold position (a TSG has no camera, so its positions are not scored);
    - ``consistency``: over ordered pairs of every lifted 3DSG, the share whose relations equal
      those ``relations_3d`` computes from its positions and sizes.
    """
    from .spatial import relations_3d
    count = {k: 0 for k in ("gold_tsg", "gold_vsg", "raw_tsg", "raw_vsg", "hit_tsg", "hit_vsg", "out_tsg",
                            "out_vsg", "stated", "kept", "kept_pos", "order", "order_ok", "pairs", "pairs_ok")}
    position_error = []
    for ex, out in zip(examples, lifted):
        kind = ex.graph.kind
        ids = {o.id: g for o, g in zip(ex.graph.objects, ex.ids)}
        among = set(ex.ids)
        gold = {t for t in _triples(ex.gold) if t[0] in among and t[2] in among}
        lifted_triples = _triples(out, ids)
        count[f"gold_{kind}"] += len(gold)
        count[f"raw_{kind}"] += len(gold & _triples(ex.graph, ids))
        count[f"hit_{kind}"] += len(gold & lifted_triples)
        count[f"out_{kind}"] += len(lifted_triples)
        recomputed = set(relations_3d(out.objects))
        if kind == "tsg":
            stated = _triples(ex.graph)
            count["stated"] += len(stated)
            count["kept"] += len(stated & _triples(out))
            count["kept_pos"] += len(stated & recomputed)
        n = len(out.objects)
        count["pairs"] += n * (n - 1)
        for a in out.objects:
            for b in out.objects:
                if a.id != b.id:
                    said = {p for s, p, o in _triples(out) if (s, o) == (a.id, b.id)}
                    count["pairs_ok"] += said == {p for s, p, o in recomputed if (s, o) == (a.id, b.id)}
        if kind == "vsg":
            gold_by_id = {o.id: o for o in ex.gold.objects}
            for o in out.objects:
                position_error.append(float(np.linalg.norm(np.subtract(o.position, gold_by_id[ids[o.id]].position))))
            for a in out.objects:
                for b in out.objects:
                    za, zb = gold_by_id[ids[a.id]].position[2], gold_by_id[ids[b.id]].position[2]
                    if a.id < b.id and abs(za - zb) > DEPTH_ORDER_GAP:
                        count["order"] += 1
                        count["order_ok"] += (a.position[2] - b.position[2]) * (za - zb) > 0
    share = lambda a, b: float(count[a] / count[b]) if count[b] else float("nan")  # noqa: E731
    return {"tsg_examples": sum(ex.graph.kind == "tsg" for ex in examples),
            "vsg_examples": sum(ex.graph.kind == "vsg" for ex in examples),
            **{f"{k}_{m}": share(f"{src}_{k}", f"{den}_{k}") for k in ("tsg", "vsg")
               for m, src, den in (("raw_triplet_recall", "raw", "gold"), ("triplet_recall", "hit", "gold"),
                                   ("triplet_precision", "hit", "out"))},
            "stated_kept": share("kept", "stated"), "stated_kept_by_positions": share("kept_pos", "stated"),
            "vsg_depth_order_acc": share("order_ok", "order"),
            "vsg_position_error_m": float(np.mean(position_error)) if position_error else float("nan"),
            "consistency": share("pairs_ok", "pairs")}


def _pair_requirements(example) -> dict[tuple[int, int], frozenset]:
    """Gold-id pair -> the predicates a TSG example's relations require of it
    (``graph_diffusion.required_predicates``, ends renamed to gold ids)."""
    from .models.graph_diffusion import required_predicates
    ids = {o.id: g for o, g in zip(example.graph.objects, example.ids)}
    return {(ids[s], ids[o]): frozenset(need) for (s, o), need in required_predicates(example.graph).items()}


def _pair_sets(example):
    """(required predicates, gold predicate set) of every ordered pair of a TSG example's objects."""
    need = _pair_requirements(example)
    held: dict[tuple[int, int], set] = {}
    for s, p, o in _triples(example.gold):
        held.setdefault((s, o), set()).add(p)
    return [(need.get((a, b), frozenset()), frozenset(held.get((a, b), ())))
            for a in example.ids for b in example.ids if a != b]


def tsg_recall_bound(reference: list, examples: list) -> float:
    """A ceiling for the TSG triplet recall of any lifter that treats pairs one at a time: each pair
    of ``examples`` (TSG ``LiftExample``s) gets the predicate set with the most expected gold hits
    among the sets that pairs with the same required predicates had in ``reference`` (e.g. the
    train split); returns the share of gold triples that guess holds. A TSG that says "behind" does
    not say left or right, so no lifter recovers those triples more often than the world's odds."""
    from collections import Counter
    seen: dict[frozenset, Counter] = {}
    for ex in reference:
        for need, gold in _pair_sets(ex):
            seen.setdefault(need, Counter())[gold] += 1
    hit = total = 0
    for ex in examples:
        for need, gold in _pair_sets(ex):
            options = seen.get(need) or seen.get(frozenset(), Counter({frozenset(): 1}))
            guess = max(options, key=lambda s: sum(c * len(s & g) for g, c in options.items()))
            hit, total = hit + len(guess & gold), total + len(gold)
    return hit / total if total else float("nan")


# --- generation: what a generated image shows of the graph it was made from ---

def find_object(o, detections: Detections) -> int | None:
    """Index of the best-scoring detection with ``o``'s shape and every colour/size/material word ``o``
    states, or None."""
    from .vocab import canonical_word
    label = canonical_word(o.label)
    said = _kinds(canonical_word(a) for a in o.attributes)
    for i, d in enumerate(detections.graph.objects):
        if d.label == label and said.items() <= _kinds(d.attributes).items():
            return i
    return None


# 2D relations of a pair (a, b) that show a stated one: an object resting on another is above it,
# as in the world's 3DSGs (``spatial.relations_3d`` gives "on" with "above"), and in a picture its
# box overlaps the top of the other's, so the boxes say "on" and not "above".
SHOWN_BY_2D = {"above": {(0, "above", 1), (0, "on", 1)}, "under": {(0, "under", 1), (1, "on", 0)}}


def relation_in_image(predicate: str, a: int, b: int, detections: Detections) -> bool:
    """Whether detections ``a`` and ``b`` show ``a predicate b``: the 2D relations of their boxes
    (``spatial.relations_2d``; "above" / "under" also where one rests on the other, ``SHOWN_BY_2D``),
    depth for front/behind (a gap over DEPTH_ORDER_GAP metres), and box containment (a's centre
    inside b's box) for "in"."""
    from .spatial import relations_2d
    objs = detections.graph.objects
    if predicate in ("in front of", "behind"):
        gap = detections.depth[a] - detections.depth[b]
        return gap < -DEPTH_ORDER_GAP if predicate == "in front of" else gap > DEPTH_ORDER_GAP
    if predicate == "in":
        (x0, y0, x1, y1), (u0, v0, u1, v1) = objs[a].box, objs[b].box
        return u0 <= (x0 + x1) / 2 <= u1 and v0 <= (y0 + y1) / 2 <= v1
    boxes = set(relations_2d([replace(objs[a], id=0), replace(objs[b], id=1)]))
    return bool(boxes & SHOWN_BY_2D.get(predicate, {(0, predicate, 1)}))


def faithfulness(graph: SceneGraph, detections: Detections) -> tuple[list[bool], list[bool]]:
    """What an image made from ``graph`` shows of it, read by the detector: per object whether it is
    found (``find_object``), per spatial relation whether it holds (both ends found and
    ``relation_in_image``), in ``graph.spatial_relations()`` order."""
    found = {o.id: find_object(o, detections) for o in graph.objects}
    holds = [found[r.subject] is not None and found[r.object] is not None
             and found[r.subject] != found[r.object]
             and relation_in_image(r.predicate, found[r.subject], found[r.object], detections)
             for r in graph.spatial_relations()]
    return [found[o.id] is not None for o in graph.objects], holds


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two (N, D) feature sets (FID's formula)."""
    mu = a.mean(0) - b.mean(0)
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = np.sqrt(np.clip(np.linalg.eigvals(sa @ sb).real, 0, None)).sum()
    return float(mu @ mu + np.trace(sa) + np.trace(sb) - 2 * root)


# --- captions: what a generated caption states, against the gold 3DSG and reference captions ---

def _fitting_objects(o, gold3d: SceneGraph) -> list[int]:
    """Ids of the gold 3DSG objects with ``o``'s shape and every attribute word ``o`` states."""
    from .vocab import canonical_word
    said = _kinds(canonical_word(a) for a in o.attributes)
    return [g.id for g in gold3d.objects
            if g.label == canonical_word(o.label) and said.items() <= _kinds(g.attributes).items()]


def named_gold_objects(tsg: SceneGraph, gold3d: SceneGraph) -> dict[int, int | None]:
    """TSG object id -> id of the one gold 3DSG object with its shape and every word it states, or
    None where no gold object or several fit."""
    ends = {}
    for o in tsg.objects:
        fits = _fitting_objects(o, gold3d)
        ends[o.id] = fits[0] if len(fits) == 1 else None
    return ends


def true_of(tsg: SceneGraph, gold3d: SceneGraph) -> bool:
    """Whether a caption's TSG is true of a scene: its objects can be given distinct gold objects
    that fit them (``_fitting_objects``) so that every spatial relation it states holds."""
    from itertools import product
    candidates = [_fitting_objects(o, gold3d) for o in tsg.objects]
    if not all(candidates):
        return False
    gold, ids = _triples(gold3d), [o.id for o in tsg.objects]
    for chosen in product(*candidates):
        if len(set(chosen)) == len(chosen):
            m = dict(zip(ids, chosen))
            if all((m[r.subject], r.predicate, m[r.object]) in gold for r in tsg.spatial_relations()):
                return True
    return False


def retrieval_bound(tsgs: list[SceneGraph], graphs: list[SceneGraph], ks: tuple[int, ...] = (1, 5)) -> dict:
    """A ceiling for image -> caption retrieval over N pairs (scene i with caption ``tsgs[i]``):
    a caption true of several scenes (``true_of``) cannot tell them apart, so a model that ranks the
    scenes it is true of first, in random order, finds scene i in its top k with chance
    min(1, k / (scenes it is true of)); returns the mean of that per k, as ``i2t_recall_at_k``, and
    the median number of scenes a caption is true of."""
    counts = [sum(true_of(t, g) for g in graphs) for t in tsgs]
    out = {f"i2t_recall_at_{k}": round(float(np.mean([min(1.0, k / max(c, 1)) for c in counts])), 4) for k in ks}
    return {**out, "scenes_true_of_median": float(np.median(counts))}


def relation_correctness(tsg: SceneGraph, gold3d: SceneGraph) -> list[bool]:
    """Per spatial relation a caption states (its parsed TSG), whether it holds in the gold 3DSG:
    each end must name exactly one gold object (``named_gold_objects``), and the gold relations
    must join them with that predicate."""
    ends = named_gold_objects(tsg, gold3d)
    gold = _triples(gold3d)
    return [ends[r.subject] is not None and ends[r.object] is not None
            and (ends[r.subject], r.predicate, ends[r.object]) in gold for r in tsg.spatial_relations()]


def label_triples(graph: SceneGraph) -> set[tuple[str, str, str]]:
    """(canonical subject label, predicate, canonical object label) of each spatial relation."""
    from .vocab import canonical_word
    name = {o.id: canonical_word(o.label) for o in graph.objects}
    return {(name[r.subject], r.predicate, name[r.object]) for r in graph.spatial_relations()}


def scene_graph_f1(candidates: list[SceneGraph], references: list[list[SceneGraph]]) -> float:
    """SPICE-style F1 of label triples: each candidate's against the union of its references'."""
    hit = n_cand = n_ref = 0
    for c, refs in zip(candidates, references):
        mine, theirs = label_triples(c), set().union(*map(label_triples, refs))
        hit, n_cand, n_ref = hit + len(mine & theirs), n_cand + len(mine), n_ref + len(theirs)
    precision, recall = hit / max(n_cand, 1), hit / max(n_ref, 1)
    return 2 * precision * recall / max(precision + recall, 1e-9)


def caption_scores(candidates: list[str], references: list[list[str]]) -> dict[str, float]:
    """BLEU-4 and CIDEr (pycocoevalcap) of candidates against their references, both lower-cased and
    split into words and punctuation marks."""
    import contextlib
    import io
    import re

    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    words = lambda t: " ".join(re.findall(r"[a-z]+|[.,]", t.lower())) or "."  # noqa: E731
    cand = {i: [words(c)] for i, c in enumerate(candidates)}
    refs = {i: [words(r) for r in rs] for i, rs in enumerate(references)}
    with contextlib.redirect_stdout(io.StringIO()):  # Bleu prints its n-gram counts
        bleu = Bleu(4).compute_score(refs, cand)[0][3]
    return {"bleu4": float(bleu), "cider": float(Cider().compute_score(refs, cand)[0])}
