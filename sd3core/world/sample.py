"""Sample random scenes of the synthetic world: 1-6 bodies resting on the ground, stacked on flat
tops, or inside a bucket, never interpenetrating, all inside the view of a jittered camera.
"""
from __future__ import annotations

import numpy as np

from ..vocab import COLOURS, CONTAINER_SHAPES, FLAT_TOP_SHAPES, MATERIALS, SHAPES, SIZES
from .scene import BUCKET_WALL, Body, Camera, Scene

MAX_OBJECTS = 6
HALF_WIDTH = {"small": 0.3, "large": 0.5}        # metres; buckets are 1.5x wider to hold things
HEIGHT_RATIO = {"cube": 2.0, "sphere": 2.0, "cylinder": 2.0, "cone": 2.2, "pyramid": 1.8,
                "bucket": 1.1}                     # height / half width
GROUND_RADIUS = 2.0     # metres: ground positions are drawn from this disc around the origin
CLEARANCE = 0.06        # metres: minimum gap between footprints of bodies at the same heights
MAX_STACK_TOP = 2.4     # metres: nothing is stacked higher than this
PLACEMENT = {"ground": 0.45, "on": 0.30, "in": 0.25}  # how a new body is placed, when it can be
FRAME_MARGIN = 0.03     # fraction of the image every body must stay inside


def sample_camera(rng: np.random.Generator) -> Camera:
    """Camera on a circle around the scene: azimuth any, elevation 22-42 deg, distance 6-7.5 m."""
    azimuth = rng.uniform(0, 2 * np.pi)
    elevation = np.radians(rng.uniform(22, 42))
    distance = rng.uniform(6.0, 7.5)
    eye = distance * np.array([np.cos(elevation) * np.sin(azimuth), np.sin(elevation),
                               -np.cos(elevation) * np.cos(azimuth)])
    return Camera(eye=tuple(eye), target=(0.0, 0.4, 0.0), fov_deg=40.0)


def sample_light(rng: np.random.Generator, camera: Camera) -> tuple[float, float, float]:
    """A light above and to one side of the camera, so shadows fall visibly on the ground."""
    right, _, forward = camera.gravity_basis()
    side = rng.choice([-1.0, 1.0]) * rng.uniform(0.4, 0.9)
    d = side * right - rng.uniform(0.2, 0.6) * forward + np.array([0.0, rng.uniform(0.9, 1.4), 0.0])
    return tuple(d / np.linalg.norm(d))


def surface_points(body: Body, n_ring: int = 16) -> np.ndarray:
    """(N, 3) world points on the body's outline (rings, corners, apex) for projecting its extent."""
    x, y, z = body.base
    w, h = body.half_width, body.height
    angles = np.linspace(0, 2 * np.pi, n_ring, endpoint=False)
    if body.shape in ("cube", "pyramid"):
        corners = np.array([[1, 1], [1, -1], [-1, -1], [-1, 1]], float) * w
        c, s = np.cos(body.yaw), np.sin(body.yaw)
        corners = corners @ np.array([[c, -s], [s, c]])  # local x -> world (cos, -sin) in (x, z)
        bottom = np.c_[corners[:, 0], np.zeros(4), corners[:, 1]]
        top = bottom + [0, h, 0] if body.shape == "cube" else np.array([[0.0, h, 0.0]])
        pts = np.vstack([bottom, top])
    elif body.shape == "sphere":
        lat = np.linspace(-np.pi / 2, np.pi / 2, 9)
        la, lo = np.meshgrid(lat, angles)
        pts = np.c_[w * np.cos(la).ravel() * np.cos(lo).ravel(), w + w * np.sin(la).ravel(),
                    w * np.cos(la).ravel() * np.sin(lo).ravel()]
    else:  # cylinder, cone, bucket: circular base; the cone narrows to an apex
        ring = np.c_[w * np.cos(angles), np.zeros(n_ring), w * np.sin(angles)]
        top = ring + [0, h, 0] if body.shape != "cone" else np.array([[0.0, h, 0.0]])
        pts = np.vstack([ring, top])
    return pts + [x, y, z]


def _in_frame(body: Body, camera: Camera) -> bool:
    uv = camera.project(surface_points(body))
    return bool(np.all(np.isfinite(uv)) and np.all((uv > FRAME_MARGIN) & (uv < 1 - FRAME_MARGIN)))


def _collides(new: Body, bodies: list[Body]) -> bool:
    """True if ``new`` overlaps any body other than its support, at overlapping heights."""
    for k, other in enumerate(bodies):
        if k == new.support:
            continue
        heights_overlap = new.base[1] < other.top and other.base[1] < new.top
        distance = np.hypot(new.base[0] - other.base[0], new.base[2] - other.base[2])
        if heights_overlap and distance < new.footprint_radius + other.footprint_radius + CLEARANCE:
            return True
    return False


def _random_body(rng: np.random.Generator, shape: str) -> Body:
    size = SIZES[rng.integers(len(SIZES))]
    w = HALF_WIDTH[size] * (1.5 if shape in CONTAINER_SHAPES else 1.0)
    return Body(shape=shape, colour=list(COLOURS)[rng.integers(len(COLOURS))], size=size,
                material=MATERIALS[rng.integers(len(MATERIALS))], base=(0.0, 0.0, 0.0),
                half_width=w, height=HEIGHT_RATIO[shape] * w,
                yaw=float(rng.uniform(0, np.pi / 2)) if shape in ("cube", "pyramid") else 0.0)


def _free_supports(bodies: list[Body], mode: str) -> list[int]:
    """Indices of bodies that can take a new body ``on`` their top or ``in`` them (one each).

    A body inside a bucket supports nothing.
    """
    used = {b.support for b in bodies}
    shapes = FLAT_TOP_SHAPES if mode == "on" else CONTAINER_SHAPES
    return [i for i, b in enumerate(bodies)
            if b.shape in shapes and i not in used
            and not (b.support >= 0 and bodies[b.support].shape in CONTAINER_SHAPES)]


def _place(rng: np.random.Generator, body: Body, bodies: list[Body], mode: str) -> Body | None:
    """Return ``body`` moved to a random spot of the given mode, or None when none is found."""
    if mode == "ground":
        r = GROUND_RADIUS * np.sqrt(rng.uniform())
        a = rng.uniform(0, 2 * np.pi)
        return _moved(body, (r * np.cos(a), 0.0, r * np.sin(a)), -1)
    supports = _free_supports(bodies, mode)
    if not supports:
        return None
    j = supports[rng.integers(len(supports))]
    s = bodies[j]
    if mode == "in":
        inner = s.half_width * (1 - BUCKET_WALL)
        if body.shape in CONTAINER_SHAPES or body.footprint_radius > inner - CLEARANCE:
            return None
        slack = inner - CLEARANCE - body.footprint_radius
        dx, dz = rng.uniform(-1, 1, 2) * slack / np.sqrt(2)
        return _moved(body, (s.base[0] + dx, s.base[1] + BUCKET_WALL * s.half_width, s.base[2] + dz), j)
    if s.top + body.height > MAX_STACK_TOP or body.shape in CONTAINER_SHAPES:
        return None
    slack = max(0.0, s.half_width - body.half_width) * 0.5
    dx, dz = rng.uniform(-1, 1, 2) * slack
    return _moved(body, (s.base[0] + dx, s.top, s.base[2] + dz), j)


def _moved(body: Body, base: tuple, support: int) -> Body:
    return Body(shape=body.shape, colour=body.colour, size=body.size, material=body.material,
                base=tuple(float(v) for v in base), half_width=body.half_width,
                height=body.height, yaw=body.yaw, support=support)


def sample_scene(seed: int, n_objects: int | None = None) -> Scene:
    """A random scene, fully determined by ``seed``; ``n_objects`` (1-6) is drawn when None.

    A body that cannot be placed after a number of tries is dropped, so a scene may hold fewer
    bodies than asked for (never zero).
    """
    rng = np.random.default_rng(seed)
    camera = sample_camera(rng)
    light = sample_light(rng, camera)
    n = int(rng.integers(1, MAX_OBJECTS + 1)) if n_objects is None else n_objects
    if not 1 <= n <= MAX_OBJECTS:
        raise ValueError(f"n_objects: got {n}, expected 1 to {MAX_OBJECTS}")
    bodies: list[Body] = []
    modes, weights = list(PLACEMENT), np.array(list(PLACEMENT.values()))
    while len(bodies) < n:
        for _ in range(60):
            body = _random_body(rng, SHAPES[rng.integers(len(SHAPES))])
            mode = modes[rng.choice(len(modes), p=weights / weights.sum())] if bodies else "ground"
            placed = _place(rng, body, bodies, mode)
            if placed is not None and not _collides(placed, bodies) and _in_frame(placed, camera):
                bodies.append(placed)
                break
        else:
            if bodies:
                break
    return Scene(bodies=tuple(bodies), camera=camera, light_dir=light, seed=seed)
