"""Gold scene graphs of a world scene, computed from its geometry: the 3DSG and the VSG.

The 3DSG holds every body, with camera-frame ``position``/``size`` (gravity-aligned camera frame,
metres, see ``graph``), the ``box`` of its projected outline and all nine-predicate relations from
3D (``spatial.relations_3d``). The VSG holds what a 2D reading of the image can tell: the bodies
visible in the rendered instance mask, each with the box of its visible pixels, and the relations
of those boxes (``spatial.relations_2d``).
"""
from __future__ import annotations

import numpy as np

from ..graph import SceneGraph, SGObject, SGRelation
from ..spatial import relations_2d, relations_3d
from .sample import surface_points
from .scene import Body, Scene

MIN_VISIBLE_PIXELS = 12  # a body with fewer visible pixels in the mask is left out of the VSG


def _attributes(body: Body) -> tuple[str, ...]:
    return (body.colour, body.size, body.material)


def _relations(triples) -> tuple[SGRelation, ...]:
    return tuple(SGRelation(s, p, o, p) for s, p, o in triples)


def _rounded(values, ndigits: int = 4) -> tuple[float, ...]:
    return tuple(round(float(v), ndigits) for v in values)


def scene_to_3dsg(scene: Scene) -> SceneGraph:
    """The gold 3D scene graph: object ``i`` is ``scene.bodies[i]``."""
    objects = []
    for i, body in enumerate(scene.bodies):
        pts = surface_points(body, n_ring=32)
        local = scene.camera.to_graph_frame(pts)
        lo, hi = local.min(axis=0), local.max(axis=0)
        uv = np.clip(scene.camera.project(pts), 0.0, 1.0)
        box = (*uv.min(axis=0), *uv.max(axis=0))
        objects.append(SGObject(id=i, label=body.shape, attributes=_attributes(body),
                                box=_rounded(box), position=_rounded((lo + hi) / 2),
                                size=_rounded(hi - lo)))
    return SceneGraph(kind="3dsg", objects=tuple(objects),
                      relations=_relations(relations_3d(objects)))


def scene_to_vsg(scene: Scene, mask: np.ndarray) -> SceneGraph:
    """The gold visual scene graph from the rendered (H, W) int instance ``mask`` (-1 = none).

    Object ids are the body indices, so a VSG object can be matched to its 3DSG object.
    """
    h, w = mask.shape
    objects = []
    for i, body in enumerate(scene.bodies):
        ys, xs = np.nonzero(mask == i)
        if len(xs) < MIN_VISIBLE_PIXELS:
            continue
        box = (xs.min() / w, ys.min() / h, (xs.max() + 1) / w, (ys.max() + 1) / h)
        objects.append(SGObject(id=i, label=body.shape, attributes=_attributes(body),
                                box=_rounded(box)))
    return SceneGraph(kind="vsg", objects=tuple(objects),
                      relations=_relations(relations_2d(objects)))
