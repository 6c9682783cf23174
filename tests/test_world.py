"""The synthetic world: sampling, gold relations from geometry, and deterministic data sets."""
import hashlib
import itertools

import numpy as np
import pytest

from sd3core.__main__ import main
from sd3core.graph import SceneGraph
from sd3core.vocab import PREDICATES
from sd3core.world.build import build_split, load_split, read_split, scene_seed
from sd3core.world.gold import scene_to_3dsg, scene_to_vsg
from sd3core.world.render import render
from sd3core.world.sample import sample_scene, surface_points
from sd3core.world.scene import Body, Camera, Scene

# Looking along +z in the right-handed world frame (y up), world +x is on the camera's left.
CAMERA = Camera(eye=(0.0, 3.5, -8.0), target=(0.0, 0.5, 0.0))


def body(shape, x, z, w=0.5, y=0.0, support=-1, colour="red", height=None):
    return Body(shape=shape, colour=colour, size="large" if w >= 0.5 else "small",
                material="matte", base=(x, y, z), half_width=w,
                height=height if height is not None else 2 * w, support=support)


def triples(bodies):
    scene = Scene(bodies=tuple(bodies), camera=CAMERA, light_dir=(0.0, 1.0, 0.0), seed=0)
    return {(r.subject, r.predicate, r.object) for r in scene_to_3dsg(scene).relations}


def test_sphere_on_cube_is_on_and_above_it():
    rel = triples([body("cube", 0, 0), body("sphere", 0, 0, w=0.3, y=1.0, support=0)])
    assert {(1, "on", 0), (1, "above", 0), (0, "under", 1)} <= rel
    assert not any(s == 1 and p in ("to the left of", "in front of", "next to") for s, p, _ in rel)


def test_floating_object_is_above_but_not_on():
    rel = triples([body("cube", 0, 0), body("sphere", 0, 0, w=0.3, y=1.6)])
    assert (1, "above", 0) in rel and (1, "on", 0) not in rel


def test_nearer_object_is_in_front_and_farther_behind():
    rel = triples([body("sphere", 0.2, -1.5), body("cube", 0.0, 1.5)])
    assert (0, "in front of", 1) in rel and (1, "behind", 0) in rel


def test_left_and_right_are_camera_relative():
    rel = triples([body("cone", 1.5, 0), body("cylinder", -1.5, 0)])
    assert (0, "to the left of", 1) in rel and (1, "to the right of", 0) in rel
    # seen from the other side, left and right swap
    flipped = Camera(eye=(0.0, 3.5, 8.0), target=(0.0, 0.5, 0.0))
    scene = Scene(bodies=(body("cone", 1.5, 0), body("cylinder", -1.5, 0)), camera=flipped,
                  light_dir=(0.0, 1.0, 0.0), seed=0)
    rel = {(r.subject, r.predicate, r.object) for r in scene_to_3dsg(scene).relations}
    assert (0, "to the right of", 1) in rel


def test_ball_inside_bucket_is_in_it():
    rel = triples([body("bucket", 0, 0, w=0.75, height=0.8), body("sphere", 0, 0, w=0.3, y=0.09, support=0)])
    assert (1, "in", 0) in rel
    assert not any(s == 1 and p in ("on", "above") for s, p, _ in rel)


def test_close_objects_are_next_to_each_other_far_ones_not():
    assert (0, "next to", 1) in triples([body("cube", -0.6, 0), body("cube", 0.6, 0)])
    assert (0, "next to", 1) not in triples([body("cube", -2.0, 0), body("cube", 2.0, 0)])


def test_vsg_reads_2d_relations_from_boxes():
    scene = Scene(bodies=(body("cube", 1.5, 0), body("sphere", -1.5, 0, colour="blue")),
                  camera=CAMERA, light_dir=(0.3, 1.0, -0.3), seed=0)
    image = render(scene, size=96)
    vsg = scene_to_vsg(scene, image.mask)
    rel = {(r.subject, r.predicate, r.object) for r in vsg.relations}
    assert vsg.kind == "vsg" and [o.id for o in vsg.objects] == [0, 1]
    assert (0, "to the left of", 1) in rel
    assert all(r.predicate not in ("in front of", "behind", "in") for r in vsg.relations)


def test_hidden_object_is_left_out_of_the_vsg():
    scene = Scene(bodies=(body("cube", 0.0, -1.0, w=0.7), body("sphere", 0.0, 1.0, w=0.15)),
                  camera=Camera(eye=(0.0, 0.5, -8.0), target=(0.0, 0.5, 0.0)),
                  light_dir=(0.0, 1.0, 0.0), seed=0)
    vsg = scene_to_vsg(scene, render(scene, size=64).mask)
    assert [o.id for o in vsg.objects] == [0]


@pytest.mark.parametrize("seed", range(40))
def test_sampled_scenes_are_physical_and_in_view(seed):
    scene = sample_scene(seed)
    assert 1 <= len(scene.bodies) <= 6
    for i, j in itertools.combinations(range(len(scene.bodies)), 2):
        a, b = scene.bodies[i], scene.bodies[j]
        if a.support == j or b.support == i:
            continue
        heights_overlap = a.base[1] < b.top and b.base[1] < a.top
        gap = np.hypot(a.base[0] - b.base[0], a.base[2] - b.base[2])
        assert not heights_overlap or gap >= a.footprint_radius + b.footprint_radius
    for b in scene.bodies:
        uv = scene.camera.project(surface_points(b))
        assert np.all((uv > 0) & (uv < 1))
        support_top = 0.0 if b.support < 0 else scene.bodies[b.support].top
        if b.support < 0 or scene.bodies[b.support].shape != "bucket":
            assert b.base[1] == pytest.approx(support_top)


def test_sampling_is_deterministic_and_varied():
    assert sample_scene(7) == sample_scene(7)
    scenes = [sample_scene(s) for s in range(300)]
    counts = {len(s.bodies) for s in scenes}
    assert counts == {1, 2, 3, 4, 5, 6}
    preds = {r.predicate for s in scenes for r in scene_to_3dsg(s).relations}
    assert preds == set(PREDICATES)
    with pytest.raises(ValueError, match="n_objects"):
        sample_scene(0, n_objects=7)


def _digest(directory):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def test_build_is_byte_identical_across_runs_and_workers(tmp_path):
    a = build_split("val", 5, tmp_path / "a", size=48, shard_size=2, workers=1, progress=False)
    b = build_split("val", 5, tmp_path / "b", size=48, shard_size=2, workers=2, progress=False)
    assert _digest(a) == _digest(b)
    assert sorted(p.name for p in a.iterdir()) == sorted(
        [f"val-{k:05d}.{ext}" for k in range(3) for ext in ("rgb.npy", "depth.npy", "mask.npy", "jsonl")]
        + ["val.meta.json"])
    examples = list(read_split(a, "val"))
    assert [e["record"]["index"] for e in examples] == list(range(5))
    assert examples[0]["rgb"].shape == (48, 48, 3) and examples[0]["rgb"].dtype == np.uint8
    record = examples[3]["record"]
    assert record["seed"] == scene_seed("val", 3)
    assert SceneGraph.from_dict(record["graph3d"]).kind == "3dsg"
    assert len(record["captions"]) == 5
    assert all(SceneGraph.from_dict(c["tsg"]).kind == "tsg" for c in record["captions"])
    arrays, records = load_split(a, "val", keys=("rgb", "mask"))
    assert arrays["rgb"].shape == (5, 48, 48, 3) and arrays["mask"].dtype == np.int8
    np.testing.assert_array_equal(arrays["mask"][3], examples[3]["mask"])
    assert records[3] == record


def test_splits_are_disjoint_seed_ranges():
    assert scene_seed("train", 999_999_999) < scene_seed("val", 0) < scene_seed("test", 0)
    with pytest.raises(ValueError, match="split"):
        scene_seed("dev", 0)


def test_reading_a_missing_split_names_the_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="world build --split test"):
        next(read_split(tmp_path, "test"))


def test_cli_show_writes_a_png_and_bad_input_exits_2(tmp_path, capsys):
    out = tmp_path / "scene.png"
    assert main(["world", "show", "--seed", "3", "--out", str(out), "--size", "64"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["world", "build", "--split", "train", "--n", "0", "--out", str(tmp_path)]) == 2
    assert "n: got 0" in capsys.readouterr().err
