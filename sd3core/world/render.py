"""A small vectorised numpy ray caster for the synthetic world: the renderer of the training data.

Every body is a solid made of convex pieces, each the intersection of half-spaces ``n . p <= c``
and at most one quadric ``p . (q * p) + 2 b . p + e <= 0`` (``q`` diagonal), written in the body's
frame: origin at the centre of its base, world axes (yaw turns only the half-space normals; the
quadrics are sphere, vertical cylinder and vertical cone, all symmetric about the y axis).
A bucket is the CSG difference outer cylinder minus inner cylinder, so its inside can be seen.

Products over the 3 coordinates use einsum, not BLAS, whose threads would contend in worker
processes. Rays are ``o + t d`` with arrays of shape (3, M) (or (3, 1), broadcast). Primary rays have
``d = x right + y up + forward``, so ``t`` is the camera-space depth in metres.
Yaw turns a body about +y: local x axis -> world (cos yaw, 0, -sin yaw).

Shading, in linear light: hemispherical ambient + Lambert + Blinn-Phong from the directional light,
cast shadows from a shadow ray per hit point, and for shiny bodies a Fresnel-weighted reflection of
sky and ground. The ground is a checker of TILE-metre tiles fading into the horizon colour.
For rendering many scenes in one process, call ``keep_freed_memory()`` once first.
"""
from __future__ import annotations

import ctypes
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from sd3core.vocab import COLOURS
from sd3core.world.scene import BUCKET_WALL, Body, Scene

F = np.float32
INF = F(np.inf)
EPS = 1e-3  # metres: smallest hit distance along a ray; shadow rays start this far off the surface
TILE = 0.5  # metres: side of a ground checker tile


def _linear(srgb) -> np.ndarray:
    """sRGB 0-255 (..., 3) -> linear-light 0-1 float32."""
    c = np.asarray(srgb, np.float64) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4).astype(F)


ALBEDO = {name: _linear(rgb) for name, rgb in COLOURS.items()}
GROUND = _linear([(170, 162, 148), (156, 149, 136)])  # the two checker tones
GRID_LINE = _linear((128, 122, 112))
HORIZON, ZENITH = _linear((214, 218, 222)), _linear((118, 158, 212))
SUN = _linear((255, 249, 238)) * F(1.15)  # irradiance of the directional light
SKY_AMBIENT, BOUNCE_AMBIENT = _linear((150, 165, 190)), _linear((110, 100, 90))
FOG_DISTANCE = 28.0  # metres: ground fades to the horizon colour over about this distance
# material -> (diffuse weight, specular weight, Blinn-Phong exponent, reflectance at normal incidence)
MATERIALS = {"matte": (1.0, 0.06, 10.0, 0.0), "shiny": (0.55, 1.0, 200.0, 0.35)}
KNEE = 0.8  # linear level above which highlights are compressed smoothly towards white


@dataclass(frozen=True)
class Rendering:
    """A rendered scene.

    ``rgb``: (H, W, 3) uint8 sRGB.
    ``depth``: (H, W) float32, camera-space z (metres along the forward axis) of the first hit at
    the pixel centre, ground included; ``np.inf`` for sky.
    ``mask``: (H, W) int16, index into ``scene.bodies`` of the body seen at the pixel centre,
    -1 for ground and sky.
    """
    rgb: np.ndarray
    depth: np.ndarray
    mask: np.ndarray


@dataclass(frozen=True)
class _Convex:
    """A convex solid in a body's frame; face k < K is half-space k, face K the quadric."""
    normals: np.ndarray  # (K, 3) float32 outward unit normals of the half-spaces n . p <= c
    offsets: np.ndarray  # (K, 1) float32 c, metres
    quadric: tuple[np.ndarray, np.ndarray, float] | None = None  # (q (3, 1), b (3, 1), e)

    @property
    def n_faces(self) -> int:
        """Number of face indices the solid uses (the quadric's is reserved even when absent)."""
        return len(self.normals) + 1


def _convex(planes, quadric=None) -> _Convex:
    """Build a _Convex from [(normal (3,), c), ...] and an optional (q (3,), b (3,), e)."""
    n = np.array([p[0] for p in planes], F).reshape(-1, 3)
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    c = np.array([p[1] for p in planes], F).reshape(-1, 1)
    if quadric is not None:
        quadric = (np.array(quadric[0], F)[:, None], np.array(quadric[1], F)[:, None], F(quadric[2]))
    return _Convex(n, c, quadric)


def _geometry(body: Body) -> tuple[_Convex, ...]:
    """The body's solid as (A,) or, for a bucket, (A, B) meaning A minus B (body frame)."""
    w, h, s, c = body.half_width, body.height, np.sin(body.yaw), np.cos(body.yaw)
    ex, ez = np.array([c, 0.0, -s]), np.array([s, 0.0, c])  # yawed local x and z axes
    up, down = ([0, 1, 0], h), ([0, -1, 0], 0.0)
    cylinder = ((1, 0, 1), (0, 0, 0), -w * w)
    if body.shape == "cube":
        return (_convex([up, down, (ex, w), (-ex, w), (ez, w), (-ez, w)]),)
    if body.shape == "sphere":
        return (_convex([], ((1, 1, 1), (0, -w, 0), 0.0)),)  # |p - (0, w, 0)|^2 - w^2
    if body.shape == "cylinder":
        return (_convex([up, down], cylinder),)
    if body.shape == "cone":  # x^2 + z^2 - k^2 (h - y)^2 <= 0, k = w / h, below the apex
        k2 = (w / h) ** 2
        return (_convex([up, down], ((1, -k2, 1), (0, k2 * h, 0), -k2 * h * h)),)
    if body.shape == "pyramid":  # side planes h (e . p) + w y <= w h
        return (_convex([down] + [(h * e + [0, w, 0], w * h / np.hypot(w, h))
                                  for e in (ex, -ex, ez, -ez)]),)
    if body.shape == "bucket":
        wall, inner = BUCKET_WALL * w, (1.0 - BUCKET_WALL) * w
        hollow = _convex([([0, 1, 0], h + w), ([0, -1, 0], -wall)], ((1, 0, 1), (0, 0, 0), -inner ** 2))
        return _convex([up, down], cylinder), hollow
    raise ValueError(f"Unknown shape {body.shape!r}; expected one of cube, sphere, cylinder, cone, "
                     "pyramid, bucket")


def _interval(solid: _Convex, o: np.ndarray, d: np.ndarray):
    """Where rays o + t d are inside ``solid``: (t_in, t_out, face_in, face_out), each (M,);
    empty where t_in >= t_out."""
    k = len(solid.normals)
    t_in, t_out, f_in, f_out = -INF, INF, 0, 0
    if k:
        dn = np.einsum("kc,cm->km", solid.normals, d)
        dn = np.where(dn == 0, F(1e-12), dn)  # parallel to a plane: t = -huge outside, +huge inside
        t = (solid.offsets - np.einsum("kc,cm->km", solid.normals, o)) / dn  # (K, M)
        lo, hi = np.where(dn < 0, t, -INF), np.where(dn > 0, t, INF)
        t_in, t_out, f_in, f_out = lo.max(0), hi.min(0), lo.argmax(0), hi.argmin(0)
    if solid.quadric is not None:
        q, b, e = solid.quadric
        qd = q * d
        a = (qd * d).sum(0)
        a = np.where(np.abs(a) < 1e-9, F(1e-9), a)  # a ray along a cylinder's axis: roots at +-huge
        hb = (qd * o).sum(0) + (b * d).sum(0)
        disc = hb * hb - a * (((q * o + 2 * b) * o).sum(0) + e)
        root = np.sqrt(np.maximum(disc, 0))
        r_a, r_b = (-hb - root) / a, (-hb + root) / a
        # a > 0: inside between the roots r_a < r_b. a < 0 (a ray steeper than a cone's side):
        # inside beyond them; keep the half-line on the cone's lower nappe, t -> -inf going up.
        hits, opens = disc >= 0, a < 0
        q_in = np.where(hits, np.where(opens & (d[1] > 0), -INF, r_a), INF)
        q_out = np.where(hits, np.where(opens & (d[1] <= 0), INF, r_b), -INF)
        f_in, f_out = np.where(q_in > t_in, k, f_in), np.where(q_out < t_out, k, f_out)
        t_in, t_out = np.maximum(t_in, q_in), np.minimum(t_out, q_out)
    return t_in, t_out, f_in, f_out


def _segments(geom: tuple[_Convex, ...], o: np.ndarray, d: np.ndarray):
    """The solid's inside along rays as [(start, end, entry face), ...], each (M,); faces of B
    (bucket hollow) are numbered after A's and face inward."""
    a0, a1, fa, _ = _interval(geom[0], o, d)
    if len(geom) == 1:
        return [(a0, a1, fa)]
    b0, b1, _, fb = _interval(geom[1], o, d)
    return [(a0, np.minimum(a1, b0), fa),
            (np.maximum(a0, b1), a1, np.where(a0 >= b1, fa, geom[0].n_faces + fb))]


def _first_hit(geom, o, d):
    """Nearest entry beyond EPS: (t (M,), face (M,)); t = inf where the rays miss."""
    (t, face), *others = [(np.where((start < end) & (start > EPS), start, INF), f)
                          for start, end, f in _segments(geom, o, d)]
    for s, f in others:
        t, face = np.minimum(t, s), np.where(s < t, f, face)
    return t, face


def _blocks(geom, o, d) -> np.ndarray:
    """(M,) bool: whether rays o + t d, t > EPS, pass through the solid."""
    return np.logical_or.reduce([(start < end) & (end > EPS) for start, end, _ in _segments(geom, o, d)])


def _normals(geom, p: np.ndarray, face: np.ndarray) -> np.ndarray:
    """(3, M) unit outward normals at body-frame points p (3, M) on faces ``face`` (M,)."""
    signs = (1, -1)  # the hollow of a bucket faces inward
    table = np.concatenate([sign * np.vstack([solid.normals, np.zeros((1, 3), F)])
                            for sign, solid in zip(signs, geom)])  # (faces, 3); quadric rows zero
    out, first = table[face].T, 0
    for sign, solid in zip(signs, geom):
        if solid.quadric is not None:
            sel = np.flatnonzero(face == first + len(solid.normals))
            q, b, _ = solid.quadric
            g = q * p[:, sel] + b
            out[:, sel] = sign * g / np.sqrt((g * g).sum(0))
        first += solid.n_faces
    return out


def _screen_boxes(scene: Scene) -> np.ndarray:
    """(B, 2, 2) image-space boxes (rows: min and max of (x, y), 0-1) around the projections of the
    bodies' bounding boxes; NaN where a corner is behind the camera."""
    corners = np.array([(x + i * b.footprint_radius, y + k * b.height, z + j * b.footprint_radius)
                        for b in scene.bodies for x, y, z in [b.base]
                        for i in (-1, 1) for j in (-1, 1) for k in (0, 1)]).reshape(-1, 3)
    uv = scene.camera.project(corners).reshape(-1, 8, 2)
    return np.stack([uv.min(1), uv.max(1)], axis=1)


@lru_cache(maxsize=8)
def _camera_rays(n: int, fov_deg: float) -> np.ndarray:
    """(3, n, n) camera-space directions (x right, y up, z = 1) through the pixel centres of an
    n x n image, rows from the top. Read-only."""
    f = 0.5 / np.tan(np.radians(fov_deg) / 2.0)
    c = ((np.arange(n) + 0.5) / n - 0.5) / f
    x, y = np.meshgrid(c, -c)
    out = np.stack([x, y, np.ones((n, n))]).astype(F)
    out.setflags(write=False)
    return out


def _trace(scene: Scene, geoms, boxes: np.ndarray, n: int):
    """Cast the primary rays of an n x n image, testing each body only within its screen box.

    Returns d (3, n, n) world directions with camera-space z = 1; t (n, n) float32 camera depth
    of the first hit (inf: sky); body index (n, n) int16 (-1: ground or sky); face (n, n) int64.
    """
    eye = np.asarray(scene.camera.eye, F)
    d = np.einsum("ci,cyx->iyx", scene.camera.basis().astype(F), _camera_rays(n, scene.camera.fov_deg))
    with np.errstate(divide="ignore"):
        t = np.where(d[1] < 0, -eye[1] / d[1], INF) if eye[1] > 0 else np.full((n, n), INF)
    ids, faces = np.full((n, n), -1, np.int16), np.zeros((n, n), np.int64)
    for j, body in enumerate(scene.bodies):
        if np.isnan(boxes[j]).any():  # partly behind the camera: test every ray
            rect = (slice(0, n), slice(0, n))
        else:
            lo, hi = np.floor(boxes[j, 0] * n), np.ceil(boxes[j, 1] * n)
            (c0, r0), (c1, r1) = np.clip([lo, hi], 0, n).astype(int)
            if r0 >= r1 or c0 >= c1:
                continue
            rect = (slice(r0, r1), slice(c0, c1))
        rays = d[(slice(None),) + rect]
        origin = (eye - np.asarray(body.base, F))[:, None]
        hit_t, hit_f = _first_hit(geoms[j], origin, rays.reshape(3, -1))
        hit_t, hit_f = hit_t.reshape(rays.shape[1:]), hit_f.reshape(rays.shape[1:])
        better = hit_t < t[rect]
        t[rect] = np.where(better, hit_t, t[rect])
        ids[rect] = np.where(better, j, ids[rect])
        faces[rect] = np.where(better, hit_f, faces[rect])
    return d, t, ids, faces


def _sky(direction: np.ndarray) -> np.ndarray:
    """(3, M) linear sky colour for (3, M) unit directions."""
    return HORIZON[:, None] + (ZENITH - HORIZON)[:, None] * np.sqrt(np.clip(direction[1], 0, 1))


def _surface(scene: Scene, geoms, p: np.ndarray, ids: np.ndarray, faces: np.ndarray):
    """Surface properties at world points p (3, N) hit on bodies ``ids`` (N,) (-1: ground) at
    ``faces`` (N,): unit normals (3, N), linear albedo (3, N) and the material arrays
    (diffuse weight, specular weight, exponent, reflectance) (4, N)."""
    u, v = p[0] / TILE, p[2] / TILE
    checker = ((np.floor(u) + np.floor(v)).astype(np.int64) & 1).astype(F)
    albedo = GROUND[0][:, None] + (GROUND[1] - GROUND[0])[:, None] * checker
    line = np.minimum(np.abs(u - np.round(u)), np.abs(v - np.round(v))) * TILE < 0.008
    albedo = np.where(line, GRID_LINE[:, None], albedo)
    normal = np.zeros_like(p)
    normal[1] = 1
    material = np.zeros((4, p.shape[1]), F)
    material[0] = 1
    for j, body in enumerate(scene.bodies):
        sel = np.flatnonzero(ids == j)
        normal[:, sel] = _normals(geoms[j], p[:, sel] - np.asarray(body.base, F)[:, None], faces[sel])
        albedo[:, sel] = ALBEDO[body.colour][:, None]
        material[:, sel] = np.array(MATERIALS[body.material], F)[:, None]
    return normal, albedo, material


def _lit(scene: Scene, geoms, light: np.ndarray, p: np.ndarray, ids: np.ndarray,
         candidates: np.ndarray) -> np.ndarray:
    """(N,) bool: which ``candidates`` (N,) bool of the points p (3, N) on bodies ``ids`` (N,)
    see the light (unit vector (3,)), tested with a shadow ray against every body."""
    across = np.linalg.svd(light[None])[2][1:].astype(F)  # (2, 3) unit vectors perpendicular to it
    p_across, p_along = np.einsum("kc,cn->kn", across, p), np.einsum("c,cn->n", light, p)
    lit = candidates.copy()
    for j, body in enumerate(scene.bodies):
        centre, radius = np.asarray(body.base, F) + F([0, body.height / 2, 0]), body.footprint_radius
        radius = np.hypot(radius, body.height / 2) * 1.001  # of the bounding sphere
        gap = p_across - (across @ centre)[:, None]
        cand = lit & ((gap * gap).sum(0) <= radius ** 2) & (p_along < light @ centre + radius)
        if len(geoms[j]) == 1:  # a convex body does not shadow its own light-facing side
            cand &= ids != j
        sel = np.flatnonzero(cand)
        origin = p[:, sel] - np.asarray(body.base, F)[:, None]
        lit[sel[_blocks(geoms[j], origin, light[:, None])]] = False
    return lit


def _shade(scene: Scene, geoms, light: np.ndarray, d: np.ndarray, t: np.ndarray, ids: np.ndarray,
           faces: np.ndarray) -> np.ndarray:
    """(3, N) linear colour seen along primary rays d (3, N) with hits (t, ids, faces), each (N,),
    lit from the unit direction ``light`` (3,)."""
    eye = np.asarray(scene.camera.eye, F)[:, None]
    view = -d / np.sqrt((d * d).sum(0))  # towards the eye
    hit = np.isfinite(t)
    p = eye + np.where(hit, t, 0) * d
    normal, albedo, (kd, ks, shine, f0) = _surface(scene, geoms, p, ids, faces)
    ndl = np.maximum(np.einsum("c,cn->n", light, normal), 0)
    ndl *= _lit(scene, geoms, light, p + EPS * normal, ids, hit & (ndl > 0))
    light = light[:, None]
    up = 0.5 + 0.5 * normal[1]
    ambient = SKY_AMBIENT[:, None] * up + BOUNCE_AMBIENT[:, None] * (1 - up)
    colour = albedo * kd * (ambient + SUN[:, None] * ndl)
    body = np.flatnonzero(ids >= 0)  # specular highlights; shiny bodies also mirror sky and ground
    n, v, ks, shine, f0 = normal[:, body], view[:, body], ks[body], shine[body], f0[body]
    half = light + v
    half /= np.sqrt((half * half).sum(0))
    colour[:, body] += ks * np.maximum((n * half).sum(0), 0) ** shine * ndl[body] * SUN[:, None]
    ndv = np.clip((n * v).sum(0), 0, 1)
    reflected = 2 * ndv * n - v
    glow = GROUND[0] * (SKY_AMBIENT + SUN * max(float(light[1, 0]), 0.0))  # the lit ground's colour
    env = np.where(reflected[1] > 0, _sky(reflected), glow[:, None])
    colour[:, body] += np.where(f0 > 0, f0 + (1 - f0) * (1 - ndv) ** 5, 0) * env * albedo[:, body]
    distance = np.sqrt((p[0] - eye[0]) ** 2 + (p[2] - eye[2]) ** 2)
    fog = (1 - np.exp(-distance / FOG_DISTANCE)) * (ids < 0)
    colour += fog * (HORIZON[:, None] - colour)
    return np.where(hit, colour, _sky(-view))


def _encode(linear: np.ndarray) -> np.ndarray:
    """Linear float (>= 0) -> sRGB uint8, same shape; values above KNEE roll off towards 1."""
    over = np.maximum(linear - KNEE, 0)
    c = np.minimum(linear, KNEE) + (1 - KNEE) * (1 - np.exp(-over / (1 - KNEE)))
    c = np.where(c <= 0.0031308, 12.92 * c, 1.055 * c ** F(1 / 2.4) - 0.055)
    return (c * 255 + 0.5).astype(np.uint8)


def render(scene: Scene, size: int = 128, supersample: int = 2) -> Rendering:
    """Render ``scene`` as a ``size`` x ``size`` image, colour averaged over ``supersample``^2
    samples per pixel (in linear light); depth and mask from one ray through each pixel centre."""
    if size < 1 or supersample < 1:
        raise ValueError(f"size and supersample must be >= 1, got {size} and {supersample}")
    light = np.asarray(scene.light_dir, F)
    if light.shape != (3,) or not np.linalg.norm(light) > 0:
        raise ValueError(f"scene.light_dir must be a non-zero 3-vector, got {scene.light_dir}")
    for body in scene.bodies:
        if body.colour not in ALBEDO or body.material not in MATERIALS:
            raise ValueError(f"Unknown colour or material in {body}; expected one of {tuple(ALBEDO)} "
                             f"and one of {tuple(MATERIALS)}")
    light = light / np.linalg.norm(light)
    geoms, boxes = [_geometry(b) for b in scene.bodies], _screen_boxes(scene)
    n = size * supersample
    d, t, ids, faces = _trace(scene, geoms, boxes, n)
    rgb = _shade(scene, geoms, light, d.reshape(3, -1), t.ravel(), ids.ravel(), faces.ravel())
    rgb = rgb.reshape(3, size, supersample, size, supersample)
    rgb = sum(rgb[:, :, i, :, j] for i in range(supersample) for j in range(supersample))
    rgb /= supersample ** 2
    if supersample > 1:
        _, t, ids, _ = _trace(scene, geoms, boxes, size)
    return Rendering(_encode(rgb.transpose(1, 2, 0)), t, ids)


def keep_freed_memory(pad_bytes: int = 256 << 20) -> bool:
    """Let glibc's malloc keep ``pad_bytes`` of freed heap rather than hand it back to the OS.

    ``render`` allocates and frees about 20 MB of temporaries per call; by default glibc returns
    them to the OS and page-faults them back in, a third or more of the render time. Call once in
    each worker process that renders many scenes (it changes that whole process, so it is not done
    on import). Returns False where it had no effect (no glibc).
    """
    try:
        return bool(ctypes.CDLL("libc.so.6").mallopt(-2, pad_bytes))  # -2: M_TOP_PAD
    except (OSError, AttributeError):
        return False
