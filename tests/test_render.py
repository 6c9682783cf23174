"""Tests of the numpy ray caster: outputs, geometry seen through mask and depth, shadows, the bucket."""
import numpy as np
import pytest

from sd3core.world.render import render
from sd3core.world.scene import BUCKET_WALL, Body, Camera, Scene

LIGHT = tuple(np.array([-0.4, 0.8, -0.3]) / np.linalg.norm([-0.4, 0.8, -0.3]))
CAMERA = Camera(eye=(0.0, 2.5, -6.0), target=(0.0, 0.5, 0.0))


def body(shape, base=(0.0, 0.0, 0.0), w=0.5, colour="red", material="matte", **kw) -> Body:
    height = 1.3 * w if shape == "bucket" else 2 * w
    return Body(shape, colour, "large", material, tuple(map(float, base)), w, height, **kw)


def scene(*bodies, camera=CAMERA, light=LIGHT) -> Scene:
    return Scene(tuple(bodies), camera, light, seed=0)


def pixel(camera: Camera, point, size: int) -> tuple[int, int]:
    """(row, column) of the pixel that sees the world point."""
    u, v = camera.project(np.array([point], float))[0]
    return int(v * size), int(u * size)


def camera_depth(camera: Camera, point) -> float:
    """Camera-space z of a world point, metres."""
    return float((np.asarray(point) - camera.eye) @ camera.basis()[2])


def test_outputs_and_every_shape_seen():
    shapes = ["cube", "sphere", "cylinder", "cone", "pyramid", "bucket"]
    cam = Camera(eye=(0.0, 3.0, -9.0), target=(0.0, 1.5, 0.0))
    out = render(scene(*[body(s, (-2.5 + i, 0, 0), w=0.4, yaw=0.3) for i, s in enumerate(shapes)],
                       camera=cam), size=48, supersample=2)
    assert out.rgb.shape == (48, 48, 3) and out.rgb.dtype == np.uint8
    assert out.depth.shape == (48, 48) and out.depth.dtype == np.float32
    assert out.mask.shape == (48, 48) and out.mask.dtype == np.int16
    assert set(np.unique(out.mask)) == set(range(-1, 6))
    assert np.isinf(out.depth[0]).all() and (out.mask[0] == -1).all()  # the top row is sky
    assert np.isfinite(out.depth[-1]).all()  # the bottom row is ground


def test_deterministic_and_centre_samples_match_unsupersampled():
    s = scene(body("cube", yaw=0.4), body("sphere", (1.2, 0, 0.5), material="shiny"))
    a, b = render(s, size=40), render(s, size=40)
    for x, y in [(a.rgb, b.rgb), (a.depth, b.depth), (a.mask, b.mask)]:
        np.testing.assert_array_equal(x, y)
    one = render(s, size=40, supersample=1)
    np.testing.assert_array_equal(one.mask, a.mask)
    np.testing.assert_array_equal(one.depth, a.depth)


def test_sphere_mask_and_depth_at_projected_centre():
    centre, radius = np.array([0.3, 0.5, 0.5]), 0.5
    out = render(scene(body("cube", (-1.5, 0, 1.0)), body("sphere", (0.3, 0, 0.5), w=radius)), size=64)
    row, col = pixel(CAMERA, centre, 64)
    assert out.mask[row, col] == 1
    front = centre - radius * (centre - CAMERA.eye) / np.linalg.norm(centre - CAMERA.eye)
    assert out.depth[row, col] == pytest.approx(camera_depth(CAMERA, front), abs=0.02)


def test_nearer_body_occludes_farther():
    # a floating sphere on the line of sight to the far cube's top centre
    far, near = body("cube", (0, 0, 2.0)), body("sphere", (0, 1.45, -2.0), w=0.3, colour="blue")
    out = render(scene(far, near), size=64)
    row, col = pixel(CAMERA, (0, 1.0, 2.0), 64)
    assert out.mask[row, col] == 1
    assert out.depth[row, col] < camera_depth(CAMERA, (0, 0, 1.5))


def test_shadow_darkens_ground_away_from_light():
    light = (1 / np.sqrt(2), 1 / np.sqrt(2), 0.0)  # from +x: the cube's shadow falls towards -x
    out = render(scene(body("cube"), light=light), size=64)
    shade, lit = pixel(CAMERA, (-0.9, 0, 0.1), 64), pixel(CAMERA, (0.9, 0, 0.1), 64)
    assert out.mask[shade] == -1 and out.mask[lit] == -1
    luminance = out.rgb.astype(float) @ [0.2126, 0.7152, 0.0722]  # of sRGB values
    assert luminance[shade] < 0.85 * luminance[lit]


def test_bucket_is_open_from_above_and_hides_its_content_from_the_side():
    w = 0.5
    floor = BUCKET_WALL * w
    inside = body("sphere", (0, floor, 0), w=0.2, colour="purple", support=0)
    bodies = (body("bucket", w=w, colour="green"), inside)
    above = Camera(eye=(0.0, 4.0, -1.0), target=(0.0, 0.3, 0.0))
    out = render(scene(*bodies, camera=above), size=64)
    assert out.mask[pixel(above, (0, floor + 0.2, 0), 64)] == 1
    floor_point = (0.3, floor, 0.0)  # the inside floor, seen past the rim, not a lid at the rim
    assert out.mask[pixel(above, floor_point, 64)] == 0
    depth = out.depth[pixel(above, floor_point, 64)]
    assert depth == pytest.approx(camera_depth(above, floor_point), abs=0.03)
    side = Camera(eye=(0.0, 0.3, -6.0), target=(0.0, 0.3, 0.0))
    assert render(scene(*bodies, camera=side), size=64).mask[pixel(side, (0, floor + 0.2, 0), 64)] == 0


def test_shiny_has_brighter_highlight_than_matte():
    s = scene(body("sphere", (-0.7, 0, 0), colour="blue"), body("sphere", (0.7, 0, 0), colour="blue",
                                                                 material="shiny"))
    out = render(s, size=64)
    peak = [out.rgb[out.mask == j].sum(1).max() for j in (0, 1)]
    assert peak[1] > peak[0] + 60


def test_bad_input_is_reported():
    with pytest.raises(ValueError, match="shape"):
        render(scene(body("torus")))
    with pytest.raises(ValueError, match="light_dir"):
        render(scene(body("cube"), light=(0.0, 0.0, 0.0)))
