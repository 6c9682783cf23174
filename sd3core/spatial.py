"""Spatial relations computed from geometry: the nine predicates from 3D boxes, and the ones a 2D
box layout can tell.

3D relations read ``position``/``size`` in the gravity-aligned camera frame of the 3DSG (metres;
x right, y up, z forward) and are camera-relative: "left" is as the camera sees it. 2D relations
read ``box`` (``[x0, y0, x1, y1]`` in 0-1, y down) and are what a detector's boxes can support.
Every threshold is a named constant below, so the oracle and the models agree on what a word means.
"""
from __future__ import annotations

import math
from typing import Iterable

from .graph import SGObject
from .vocab import CONTAINER_SHAPES

Triple = tuple[int, str, int]  # (subject id, predicate, object id)

# --- 3D thresholds (metres unless noted) ---
CONTACT_GAP = 0.05       # "on": |bottom of A - top of B| below this
LATERAL_ANGLE = 0.06     # left/right: difference of x/z (tangent of the bearing angle), ~3.4 degrees
DEPTH_GAP = 0.40         # in front of / behind: difference of centre depth z
NEXT_TO_GAP = 0.45       # next to: gap between the two footprint circles
CONTAINER_INNER = 0.85   # "in": A's centre within this fraction of the container's radius


def _vertical_extent(o: SGObject) -> tuple[float, float]:
    return o.position[1] - o.size[1] / 2, o.position[1] + o.size[1] / 2


def _footprint_radius(o: SGObject) -> float:
    return max(o.size[0], o.size[2]) / 2


def _horizontal_distance(a: SGObject, b: SGObject) -> float:
    return math.hypot(a.position[0] - b.position[0], a.position[2] - b.position[2])


def is_over(a: SGObject, b: SGObject) -> bool:
    """Whether A's centre is over B's footprint: the horizontal condition for A on / above B."""
    return _horizontal_distance(a, b) < _footprint_radius(b)


def _vertical_3d(a: SGObject, b: SGObject) -> list[str]:
    """Gravity predicates of A relative to B: "in", "on", "above" (each implies the next but "in")."""
    a_bottom, a_top = _vertical_extent(a)
    b_bottom, b_top = _vertical_extent(b)
    over = is_over(a, b)
    if b.label in CONTAINER_SHAPES and a.label not in CONTAINER_SHAPES \
            and _horizontal_distance(a, b) < CONTAINER_INNER * _footprint_radius(b) \
            and b_bottom - CONTACT_GAP <= a_bottom < b_top:
        return ["in"]
    out = []
    if over and abs(a_bottom - b_top) < CONTACT_GAP:
        out.append("on")
    if over and a_bottom >= b_top - CONTACT_GAP:
        out.append("above")
    return out


def relations_3d(objects: Iterable[SGObject]) -> list[Triple]:
    """All true nine-predicate relations among objects that have ``position`` and ``size``.

    A pair may hold several predicates ("on" and "above"); symmetric "next to" is listed both ways.
    Horizontal predicates (left/right, front/behind, next to) are only given to pairs that are not
    stacked or contained, where people would use the vertical word instead.
    """
    objs = [o for o in objects if o.position is not None and o.size is not None]
    vertical = {(a.id, b.id): _vertical_3d(a, b) for a in objs for b in objs if a.id != b.id}
    triples: list[Triple] = []
    for a in objs:
        for b in objs:
            if a.id == b.id:
                continue
            preds = list(vertical[a.id, b.id])
            preds += ["under"] if "above" in vertical[b.id, a.id] else []
            if not preds and not vertical[b.id, a.id]:
                preds = _horizontal_3d(a, b)
            triples += [(a.id, p, b.id) for p in preds]
    return triples


def _horizontal_3d(a: SGObject, b: SGObject) -> list[str]:
    out = []
    bearing = a.position[0] / a.position[2] - b.position[0] / b.position[2]
    if bearing < -LATERAL_ANGLE:
        out.append("to the left of")
    elif bearing > LATERAL_ANGLE:
        out.append("to the right of")
    depth = a.position[2] - b.position[2]
    if depth < -DEPTH_GAP:
        out.append("in front of")
    elif depth > DEPTH_GAP:
        out.append("behind")
    a_bottom, a_top = _vertical_extent(a)
    b_bottom, b_top = _vertical_extent(b)
    gap = _horizontal_distance(a, b) - _footprint_radius(a) - _footprint_radius(b)
    if gap < NEXT_TO_GAP and a_bottom < b_top and b_bottom < a_top:
        out.append("next to")
    return out


# --- 2D thresholds (fractions of the image side) ---
LATERAL_2D = 0.05        # left/right: difference of box centres x
STACK_OVERLAP_2D = 0.5   # above/under/on: horizontal overlap, as a fraction of the narrower box
TOUCH_2D = 0.03          # on: A's bottom edge within this of B's top edge (or inside B's upper half)
NEXT_TO_GAP_2D = 0.06    # next to: horizontal gap between boxes
ROW_OVERLAP_2D = 0.5     # next to: vertical overlap, as a fraction of the shorter box


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def relations_2d(objects: Iterable[SGObject]) -> list[Triple]:
    """The relations a 2D box layout can tell: left/right, above/under, on, next to.

    Depth ("in front of", "behind") and containment ("in") are not readable from boxes alone;
    this is why a VSG is a poor 3D description and the graph diffusion lifts it.
    """
    objs = [o for o in objects if o.box is not None]
    triples: list[Triple] = []
    for a in objs:
        for b in objs:
            if a.id != b.id:
                triples += [(a.id, p, b.id) for p in _relations_2d_pair(a.box, b.box)]
    return triples


def _relations_2d_pair(a: tuple, b: tuple) -> list[str]:
    ax0, ay0, ax1, ay1 = a
    bx0, by0, bx1, by1 = b
    out = []
    x_overlap = _overlap(ax0, ax1, bx0, bx1) / max(1e-6, min(ax1 - ax0, bx1 - bx0))
    y_overlap = _overlap(ay0, ay1, by0, by1) / max(1e-6, min(ay1 - ay0, by1 - by0))
    stacked = x_overlap >= STACK_OVERLAP_2D
    if stacked and (ay0 + ay1) < (by0 + by1) and by0 - TOUCH_2D <= ay1 <= (by0 + by1) / 2:
        out.append("on")
    if stacked and ay1 <= by0 + TOUCH_2D:
        out.append("above")
    if stacked and by1 <= ay0 + TOUCH_2D:
        out.append("under")
    if stacked:
        return out
    centre_dx = (ax0 + ax1 - bx0 - bx1) / 2
    if centre_dx < -LATERAL_2D:
        out.append("to the left of")
    elif centre_dx > LATERAL_2D:
        out.append("to the right of")
    gap = max(bx0 - ax1, ax0 - bx1)
    if gap < NEXT_TO_GAP_2D and y_overlap >= ROW_OVERLAP_2D:
        out.append("next to")
    return out
