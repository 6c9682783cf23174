"""Detector: head shapes, peak decoding, a few overfitting steps, the metrics on gold-perfect
detections, and clear errors for bad images."""
import math

import pytest
import torch
from torch.utils.data import default_collate

from conftest import fit_steps
from sd3core.graph import SceneGraph, SGObject, SGRelation
from sd3core import evaluate as E
from sd3core.models import detector as D
from sd3core.spatial import relations_2d
from sd3core.train import STAGES, stage_module
from sd3core.vocab import SHAPES

TINY = D.Config(image_size=64, widths=(8, 16, 16), blocks=(0, 1, 1), head_width=16)


def _record(objects):
    """A (vsg, graph3d) pair of dicts for ``objects``: (id, label, attributes, box, depth)."""
    vsg = {"kind": "vsg", "objects": [{"id": i, "label": lab, "attributes": list(a), "box": list(b)}
                                      for i, lab, a, b, _ in objects]}
    g3 = {"kind": "3dsg", "objects": [{"id": i, "label": lab, "attributes": list(a), "box": list(b),
                                       "position": [0.0, 0.0, z], "size": [1.0, 1.0, 1.0]}
                                      for i, lab, a, b, z in objects]}
    return vsg, g3


SCENES = [
    [(0, "cube", ("red", "large", "matte"), (0.1, 0.5, 0.35, 0.8), 4.0),
     (2, "sphere", ("blue", "small", "shiny"), (0.6, 0.45, 0.75, 0.6), 6.0)],
    [(1, "cone", ("green", "large", "shiny"), (0.3, 0.2, 0.5, 0.5), 5.0),
     (3, "cylinder", ("white", "small", "matte"), (0.32, 0.5, 0.48, 0.7), 5.2),
     (4, "bucket", ("purple", "large", "matte"), (0.7, 0.6, 0.95, 0.9), 3.5)],
    [(0, "pyramid", ("yellow", "small", "matte"), (0.05, 0.05, 0.2, 0.2), 7.5)],
    [],
]


def _synthetic_batch(size):
    """Images with a coloured rectangle per object, and their training targets."""
    samples = []
    for objects in SCENES:
        image = torch.full((3, size, size), 128, dtype=torch.uint8)
        for _, lab, _, (x0, y0, x1, y1), _ in objects:
            k = SHAPES.index(lab)
            image[:, int(y0 * size):int(y1 * size), int(x0 * size):int(x1 * size)] = \
                torch.tensor([40 * k, 255 - 40 * k, (90 * k) % 256], dtype=torch.uint8)[:, None, None]
        samples.append({"image": image, **D.targets_from_graphs(*_record(objects), max_objects=4)})
    return default_collate(samples)


def test_detector_is_a_training_stage_and_heads_have_their_shapes():
    assert "detector" in STAGES and stage_module("detector") is D
    model = D.build(TINY)
    out = model(torch.rand(2, 3, 64, 64))
    assert set(out) == set(D.HEADS)
    for name, channels in D.HEADS.items():
        assert out[name].shape == (2, channels, 16, 16), name
    assert model.grid == 16


def test_decode_of_a_hand_made_heatmap_gives_the_expected_objects():
    grid = 16
    out = {k: torch.zeros(1, c, grid, grid) for k, c in D.HEADS.items()}
    out["heatmap"].fill_(-10.0)
    # a sphere centred in cell (x=4, y=6) + offset (0.5, 0.25), 4 x 2 cells; a weaker cube at (12, 3)
    out["heatmap"][0, SHAPES.index("sphere"), 6, 4] = 3.0
    out["heatmap"][0, SHAPES.index("cone"), 6, 5] = 1.0      # a neighbour of the sphere's peak: suppressed
    out["heatmap"][0, SHAPES.index("cube"), 3, 12] = 0.0     # score 0.5
    out["offset"][0, :, 6, 4] = torch.tensor([0.5, 0.25])
    out["wh"][0, :, 6, 4] = torch.tensor([4.0, 2.0])
    out["wh"][0, :, 3, 12] = torch.tensor([40.0, 2.0])       # wider than the image: clipped
    out["colour"][0, 5, 6, 4] = out["size"][0, 1, 6, 4] = out["material"][0, 1, 6, 4] = 5.0
    out["depth"][0, 0, 6, 4] = math.log(4.5)
    (det,) = D.decode(out, threshold=0.3, max_detections=8)
    sphere, cube = det.graph.objects
    assert (sphere.id, sphere.label, sphere.attributes) == (0, "sphere", ("blue", "large", "shiny"))
    expected = ((4.5 - 2) / 16, (6.25 - 1) / 16, (4.5 + 2) / 16, (6.25 + 1) / 16)
    assert sphere.box == pytest.approx(expected, abs=1e-4)
    assert cube.label == "cube" and cube.box == pytest.approx((0.0, 2 / 16, 1.0, 4 / 16), abs=1e-4)
    assert det.scores == pytest.approx((torch.sigmoid(torch.tensor(3.0)).item(), 0.5), abs=1e-4)
    assert det.depth[0] == pytest.approx(4.5, abs=1e-3) and det.depth[1] == pytest.approx(1.0)
    triples = {(r.subject, r.predicate, r.object) for r in det.graph.relations}
    assert triples == {(1, "above", 0), (0, "under", 1)}
    (only,) = D.decode(out, threshold=0.6, max_detections=8)
    assert [o.label for o in only.graph.objects] == ["sphere"]


def test_heatmap_targets_peak_at_box_centres():
    boxes = torch.tensor([[[0.1, 0.5, 0.35, 0.8], [0.0, 0.0, 0.0, 0.0]]])
    heat = D.heatmap_targets(boxes, torch.tensor([[2, 0]]), torch.tensor([[True, False]]), 16)
    assert heat.shape == (1, len(SHAPES), 16, 16)
    assert heat[0, 2, 10, 3] == 1.0 and (heat == 1).sum() == 1 and heat[0, 0].max() == 0


def test_training_mirrors_half_the_images_with_their_boxes():
    torch.manual_seed(0)
    images = torch.zeros(64, 3, 16, 16)
    images[:, :, 4:8, 2:6] = 1.0                                  # a bright square at x 2..5
    boxes = torch.tensor([[2 / 16, 4 / 16, 6 / 16, 8 / 16]]).repeat(64, 1)[:, None]
    mirrored, new_boxes = D.mirror_half(images, boxes)
    flipped = mirrored[:, 0, 5, 12] == 1.0                        # the square now at x 10..13
    assert 16 < flipped.sum() < 48 and torch.equal(mirrored[~flipped], images[~flipped])
    assert torch.equal(mirrored[flipped], images[flipped].flip(-1))
    assert torch.equal(new_boxes[~flipped], boxes[~flipped])
    assert torch.allclose(new_boxes[flipped, 0], torch.tensor([10 / 16, 4 / 16, 14 / 16, 8 / 16]))


def test_loss_falls_when_overfitting_four_images():
    torch.manual_seed(0)
    model = D.build(TINY)
    batch = _synthetic_batch(64)
    losses, logs = fit_steps(D, model, batch, steps=20, lr=3e-3)
    assert set(logs) == {"heat", "offset", "wh", "depth", "colour", "size", "material"}
    assert all(math.isfinite(v) for v in losses) and losses[-1] < 0.5 * losses[0]


def _gold():
    """Gold VSGs (ids as in the scene, relations from their boxes) and 3DSGs of ``SCENES``."""
    gold = []
    for objects in SCENES:
        g = SceneGraph.from_dict(_record(objects)[0])
        relations = [SGRelation(s, p, o, p) for s, p, o in relations_2d(g.objects)]
        gold.append(SceneGraph("vsg", g.objects, relations))
    return gold, [SceneGraph.from_dict(_record(s)[1]) for s in SCENES]


def test_metrics_of_gold_perfect_detections_are_perfect():
    gold, gold_3d = _gold()
    assert sum(len(g.relations) for g in gold) > 0
    perfect = [D.make_detections(list(reversed(g.objects)), [o.position[2] for o in reversed(g3.objects)],
                                 [0.9] * len(g.objects)) for g, g3 in zip(gold, gold_3d)]
    m = E.detection_metrics(perfect, gold, gold_3d, D.DETECT_THRESHOLD)
    assert m["map50"] == 1.0
    for key in ("object_recall", "object_precision", "label_acc", "colour_acc", "size_acc", "material_acc",
                "vsg_relation_recall", "vsg_relation_precision", "depth_order_acc"):
        assert m[key] == 1.0, key
    assert m["depth_mae_m"] == 0.0


def test_metrics_count_misses_wrong_attributes_and_false_positives():
    gold, gold_3d = _gold()
    dets = []
    for g, g3 in zip(gold, gold_3d):
        objects = [SGObject(o.id, o.label, ("red",) + o.attributes[1:], o.box) for o in g.objects[:1]]
        depth = [o.position[2] + 1.0 for o in g3.objects[:1]]
        dets.append(D.make_detections(objects, depth, [0.9] * len(objects)))
    # one confident false positive in the empty scene: precision falls, AP of its class falls
    dets[3] = D.make_detections([SGObject(0, "cube", ("red", "large", "matte"), (0.4, 0.4, 0.6, 0.6))],
                                [5.0], [0.95])
    m = E.detection_metrics(dets, gold, gold_3d, D.DETECT_THRESHOLD)
    assert m["object_recall"] == pytest.approx(3 / 6) and m["object_precision"] == pytest.approx(3 / 4)
    assert m["colour_acc"] == pytest.approx(1 / 3) and m["depth_mae_m"] == pytest.approx(1.0)
    assert m["ap50_cube"] == pytest.approx(0.5) and m["ap50_sphere"] == 0.0
    assert m["vsg_relation_recall"] == 0.0 and math.isnan(m["depth_order_acc"])
    # below the operating threshold, detections count for mAP only
    low = E.detection_metrics(dets, gold, gold_3d, threshold=0.99)
    assert low["map50"] == m["map50"] and low["object_recall"] == 0.0


@pytest.mark.parametrize("images, expected", [
    (torch.rand(3, 64, 64), r"got shape \(3, 64, 64\), expected \(B, 3, 64, 64\)"),
    (torch.rand(1, 64, 64, 3), r"got shape \(1, 64, 64, 3\), expected \(B, 3, 64, 64\).*permute"),
    (torch.rand(1, 3, 32, 32), r"expected \(B, 3, 64, 64\).*interpolate"),
    (torch.zeros(1, 3, 64, 64, dtype=torch.uint8), r"got dtype torch.uint8, expected float in \[0, 1\]"),
    (torch.full((1, 3, 64, 64), 255.0), r"values from 255 to 255, expected \[0, 1\]"),
    ([[0.0]], r"got list, expected a torch.Tensor"),
])
def test_bad_images_are_a_clear_error(images, expected):
    with pytest.raises(ValueError, match=expected):
        D.detect(D.build(TINY), images)


def test_detect_returns_one_vsg_per_image_and_keeps_the_mode():
    model = D.build(TINY).train()
    dets = D.detect(model, torch.rand(2, 3, 64, 64), threshold=0.0)
    assert model.training and len(dets) == 2
    for d in dets:
        assert d.graph.kind == "vsg"
        assert len(d.graph.objects) == len(d.depth) == len(d.scores) == TINY.max_detections
        assert list(d.scores) == sorted(d.scores, reverse=True) and all(z > 0 for z in d.depth)


def test_flip_test_averages_the_mirrored_pass_back_in_the_image_frame():
    torch.manual_seed(0)
    model = D.build(TINY).eval()
    images = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        out, mirrored = model(images), model(images.flip(-1))
    # a pass that agrees with its mirror image is left as it is
    same = D.flip_average(out, {k: v.flip(-1) for k, v in out.items()})
    assert all(torch.allclose(same[k], out[k]) for k in out)
    both = D.flip_average(out, mirrored)
    assert torch.equal(both["offset"], out["offset"])
    assert torch.allclose(both["wh"], (out["wh"] + mirrored["wh"].flip(-1)) / 2)
    # detect without the flip test decodes the single pass; with it, the average
    assert D.detect(model, images, 0.0, flip_test=False) == D.decode(out, 0.0, TINY.max_detections)
    assert D.detect(model, images, 0.0) == D.decode(both, 0.0, TINY.max_detections)


def test_same_objects_share_counts_label_colour_and_size():
    a = D.make_detections([SGObject(0, "cube", ("red", "large", "matte"), (0.1, 0.1, 0.3, 0.3)),
                           SGObject(1, "sphere", ("blue", "small", "shiny"), (0.6, 0.6, 0.8, 0.8))],
                          [5.0, 6.0], [0.9, 0.8])
    same = D.make_detections([SGObject(0, "cube", ("red", "large", "shiny"), (0.1, 0.1, 0.3, 0.31))],
                             [5.0], [0.9])
    assert E.same_objects_share([a], [same]) == 0.5  # the cube survives (material ignored), the sphere not
    recoloured = D.make_detections([SGObject(0, "cube", ("green", "large", "matte"), (0.1, 0.1, 0.3, 0.3))],
                                   [5.0], [0.9])
    assert E.same_objects_share([a], [recoloured]) == 0.0
