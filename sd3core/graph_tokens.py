"""A 3DSG as discrete tokens and back: what the graph diffusion and the DGAE predict.

Per object: ``x`` (camera-frame position right, metres), ``z`` (depth forward, metres) and the box
extents ``width``, ``height``, ``depth`` (metres), each as the index of a uniform bin. Per scene:
``ground``, the camera-frame height of the ground plane (metres, negative: the camera is above it).
Per ordered pair of objects: ``relations``, the index of the pair's predicate set in a vocabulary of
sets (``("behind", "to the left of")``, ``("above", "on")``, ``()`` ...), so that predicates that
come together (on implies above) are one token.

Heights are not tokens: an object rests on the ground, or on / in the object its relations say it
is on / in, and its centre height follows from that support and the heights (``tokens_to_3dsg``).
So a decoded 3DSG's positions agree with its vertical relations by construction; whether its
left/right and front/behind relations agree with its positions is what the consistency metric asks,
and what ``sets_agreeing_with_positions`` lets the sampler keep to.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .graph import SceneGraph, SGObject, SGRelation
from .spatial import is_over, relations_3d
from .vocab import PREDICATES

OBJECT_FIELDS = ("x", "z", "width", "height", "depth")
SIZE_FIELDS = ("width", "height", "depth")
RESTS_ON = frozenset({"on", "above", "in"})  # predicates that put their subject over their object

# field -> (low, high, step) of its uniform bins, metres. Values outside are clamped to the end bins.
DEFAULT_BINS = {"x": (-2.5, 2.5, 0.05), "z": (2.5, 9.5, 0.05),
                "width": (0.0, 2.0, 0.05), "height": (0.0, 2.0, 0.05), "depth": (0.0, 2.0, 0.05),
                "ground": (-5.5, -1.5, 0.05)}

# The predicate sets ``spatial.relations_3d`` gives an ordered pair in the world's train split, most
# frequent first; () is "no relation". A set outside these is coded as its nearest (``set_index``).
DEFAULT_RELATION_SETS = (
    ("behind", "to the left of"), ("in front of", "to the right of"),
    ("in front of", "to the left of"), ("behind", "to the right of"),
    ("under",), ("to the right of",), ("to the left of",), ("above", "on"), ("behind",),
    ("in front of",), ("in front of", "next to", "to the left of"),
    ("behind", "next to", "to the right of"), ("behind", "next to", "to the left of"),
    ("in front of", "next to", "to the right of"), ("next to", "to the left of"),
    ("next to", "to the right of"), (), ("in",), ("behind", "next to"), ("in front of", "next to"),
    ("above",))


@dataclass(frozen=True)
class GraphCoding:
    """The bins and the predicate-set vocabulary (plain values, saved in model configs)."""
    bins: dict
    relation_sets: tuple

    def num_classes(self, field: str) -> int:
        """Number of classes of ``field`` (an object field, "ground" or "relations")."""
        if field == "relations":
            return len(self.relation_sets)
        low, high, step = self.bins[field]
        return round((high - low) / step)

    def to_bin(self, field: str, value: float) -> int:
        low, _, step = self.bins[field]
        return min(self.num_classes(field) - 1, max(0, int((value - low) // step)))

    def from_bin(self, field: str, index: int) -> float:
        """The centre of bin ``index`` of ``field``, metres."""
        low, _, step = self.bins[field]
        return low + (index + 0.5) * step

    def set_index(self, predicates) -> int:
        """Index of the vocabulary set equal to ``predicates``, else of the most overlapping one."""
        wanted = set(predicates)
        sets = [set(s) for s in self.relation_sets]
        if wanted in sets:
            return sets.index(wanted)
        return max(range(len(sets)), key=lambda i: (len(wanted & sets[i]) - len(sets[i] - wanted), -i))

    def sets_containing(self, predicates) -> torch.Tensor:
        """(R,) bool: which vocabulary sets contain every one of ``predicates``."""
        wanted = set(predicates)
        return torch.tensor([wanted <= set(s) for s in self.relation_sets])


def default_coding() -> GraphCoding:
    return GraphCoding(dict(DEFAULT_BINS), DEFAULT_RELATION_SETS)


def ground_height(graph3d: SceneGraph) -> float:
    """The camera-frame height of the ground (metres): the lowest bottom of the graph's objects."""
    return min(o.position[1] - o.size[1] / 2 for o in graph3d.objects)


def graph_to_tokens(graph3d: SceneGraph, ids: list[int], coding: GraphCoding,
                    ground: float | None = None) -> dict[str, torch.Tensor]:
    """Tokens of the objects ``ids`` of a 3DSG (in that order; every one needs position and size).

    Returns {field: (N,) int64} for ``OBJECT_FIELDS``, "ground": (1,) int64 (``ground`` in metres,
    default: ``ground_height(graph3d)``) and "relations": (N, N) int64, [i, j] the set of
    ``ids[i]`` relative to ``ids[j]`` (the diagonal holds the index of ``()``).
    """
    by_id = {o.id: o for o in graph3d.objects}
    objects = [by_id[i] for i in ids]
    values = {"x": [o.position[0] for o in objects], "z": [o.position[2] for o in objects],
              **{f: [o.size[k] for o in objects] for k, f in enumerate(SIZE_FIELDS)}}
    tokens = {f: torch.tensor([coding.to_bin(f, v) for v in values[f]]) for f in OBJECT_FIELDS}
    ground = ground_height(graph3d) if ground is None else ground
    tokens["ground"] = torch.tensor([coding.to_bin("ground", ground)])
    held: dict[tuple[int, int], set] = {}
    for r in graph3d.relations:
        held.setdefault((r.subject, r.object), set()).add(r.predicate)
    tokens["relations"] = torch.tensor([[coding.set_index(held.get((a, b), ())) for b in ids] for a in ids])
    return tokens


def _bottoms(heights: list[float], relations: list[list[tuple]], ground: float) -> list[float]:
    """Bottom height of each object: on the ground, or on the top of / in the object that supports
    it by its relations ("in" before "on"); a support cycle is broken by putting its object on the
    ground."""
    n = len(heights)
    bottoms: list[float | None] = [None] * n

    def bottom(i: int, visiting: frozenset) -> float:
        if bottoms[i] is None:
            value = ground
            for predicate in ("in", "on"):
                j = next((j for j in range(n) if j != i and predicate in relations[i][j]), None)
                if j is not None and j not in visiting:
                    below = bottom(j, visiting | {j})
                    value = below if predicate == "in" else below + heights[j]
                    break
            bottoms[i] = value
        return bottoms[i]

    return [bottom(i, frozenset({i})) for i in range(n)]


def sets_agreeing_with_positions(labels: list[str], tokens: dict[str, torch.Tensor],
                                 coding: GraphCoding) -> torch.Tensor:
    """(N, N, R) bool: the predicate sets each ordered pair of one graph's placed objects can take
    and agree with their positions (``spatial.relations_3d``, what the consistency metric reads).

    ``labels``: the N objects' shape words; ``tokens``: their object tokens, (N,) int64 per field
    of ``OBJECT_FIELDS``. A pair may take the set ``relations_3d`` reads off the two standing on the
    ground, or, where one's centre is over the other's footprint, a set stacking it on, above or in
    the other (or under, the other way round): heights follow from those sets (``tokens_to_3dsg``),
    so a stacking set is what the positions say once it is drawn.
    """
    n = len(labels)
    # the millimetres ``tokens_to_3dsg`` rounds to, so that a pair a whole number of bins from a
    # threshold apart ("in front of": 0.40 m deep) is read as the 3DSG will read
    value = {f: [round(coding.from_bin(f, int(tokens[f][i])), 3) for i in range(n)] for f in OBJECT_FIELDS}
    standing = [SGObject(i, labels[i], (), None, (value["x"][i], value["height"][i] / 2, value["z"][i]),
                         tuple(value[f][i] for f in SIZE_FIELDS)) for i in range(n)]
    on_ground: dict[tuple[int, int], set] = {}
    for s, p, o in relations_3d(standing):
        on_ground.setdefault((s, o), set()).add(p)
    sets = [set(s) for s in coding.relation_sets]
    agree = torch.zeros(n, n, len(sets), dtype=torch.bool)
    for i in range(n):
        for j in range(n):
            agree[i, j, coding.set_index(on_ground.get((i, j), ()))] = True
            for k, s in enumerate(sets):
                agree[i, j, k] |= bool((s & RESTS_ON and is_over(standing[i], standing[j]))
                                       or ("under" in s and is_over(standing[j], standing[i])))
    return agree


def tokens_to_3dsg(graph: SceneGraph, tokens: dict[str, torch.Tensor], coding: GraphCoding) -> SceneGraph:
    """The 3DSG of ``graph``'s objects (same ids, labels, attributes, boxes) from their tokens.

    ``tokens`` as ``graph_to_tokens`` returns them, object i being ``graph.objects[i]``, no masks left.
    Positions and sizes are bin centres rounded to millimetres, heights from the supports (module
    docstring); relations are the pairs' predicate sets, with the predicate as phrase.
    """
    n = len(graph.objects)
    value = {f: [coding.from_bin(f, int(tokens[f][i])) for i in range(n)] for f in OBJECT_FIELDS}
    rel = tokens["relations"]
    sets = [[coding.relation_sets[int(rel[i, j])] if i != j else () for j in range(n)] for i in range(n)]
    bottoms = _bottoms(value["height"], sets, coding.from_bin("ground", int(tokens["ground"][0])))
    objects = []
    for i, o in enumerate(graph.objects):
        size = tuple(round(value[f][i], 3) for f in SIZE_FIELDS)
        position = (round(value["x"][i], 3), round(bottoms[i] + size[1] / 2, 3), round(value["z"][i], 3))
        objects.append(SGObject(o.id, o.label, o.attributes, o.box, position, size))
    relations = [SGRelation(graph.objects[i].id, p, graph.objects[j].id, p)
                 for i in range(n) for j in range(n) for p in PREDICATES if p in sets[i][j]]
    return SceneGraph("3dsg", objects, relations)
