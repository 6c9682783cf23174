"""SceneGraph: the one structure every arrow of SD3 takes and returns.

A scene graph is a kind (``"tsg"`` from text, ``"vsg"`` from an image, ``"3dsg"`` lifted to 3D),
a list of objects and a list of relations, exactly the JSON format of DESIGN.md:

- ``box``: ``[x0, y0, x1, y1]`` in 0-1 image coordinates, x to the right, y down (VSG, 3DSG).
- ``position`` / ``size``: metres in the gravity-aligned camera frame (3DSG): origin at the camera,
  x to the right, y up (against gravity), z forward along the camera's horizontal viewing direction.
  ``position`` is the centre of the object's bounding box, ``size`` its extent along x, y, z.
- ``predicate``: one of the nine VSD relations (``vocab.PREDICATES``); ``phrase``: the words a text used.
  A ``"tsg"`` graph may also keep a relation the nine do not cover ("holding"): its predicate is then
  the phrase itself. ``SceneGraph.spatial_relations()`` gives only the relations with one of the nine.

Every graph is checked when it is built, whichever way it is built: a bad field raises ``ValueError``
naming the object or relation and the field ("relations[3].predicate: ..."), and nothing half-built
escapes. Geometry is optional on every object; ``None`` means absent and is left out of the JSON.
Text fields (labels, attributes, predicates, phrases) are at most ``MAX_LABEL_CHARS`` characters with
no leading or trailing whitespace; attributes hold no comma (the table view joins them with commas).
Relations join two different objects.

Other formats: ``to_networkx``/``from_networkx`` here; table rows, sg2im JSON and VSD records in
``graph_io``.
"""
from __future__ import annotations

import json
import math
import numbers
import reprlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import networkx as nx

from .vocab import PREDICATES

KINDS = ("tsg", "vsg", "3dsg")
MAX_OBJECTS = 64  # objects per graph
MAX_RELATIONS = 512  # relations per graph
MAX_LABEL_CHARS = 64  # characters per label, attribute, predicate and phrase

_BOX_HELP = "box must be [x0, y0, x1, y1] in 0-1"
_OBJECT_KEYS = ("id", "label", "attributes", "box", "position", "size")
_RELATION_KEYS = ("subject", "predicate", "object", "phrase")

_short = reprlib.Repr()
_short.maxstring, _short.maxother, _short.maxlist, _short.maxdict, _short.maxlevel = 60, 60, 6, 4, 3


def _show(value: Any) -> str:
    """A short repr of a user-supplied value for error messages."""
    return _short.repr(value)


@contextmanager
def _located(where: str, sep: str = ".") -> Iterator[None]:
    """Re-raise a ``ValueError`` from the block with ``where`` put in front of its message."""
    try:
        yield
    except ValueError as error:
        raise ValueError(f"{where}{sep}{error}") from None


def _check_keys(d: Any, where: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> None:
    """Check that ``d`` is a dict holding every ``required`` key and no key outside both lists."""
    if not isinstance(d, dict):
        raise ValueError(f"{where}: expected a JSON object (dict), got {_show(d)}")
    unknown = [k for k in d if k not in required + optional]
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(map(_show, unknown))}; "
                         f"expected keys among {', '.join(required + optional)}")
    missing = [k for k in required if k not in d]
    if missing:
        raise ValueError(f"{where}: missing key(s) {', '.join(map(repr, missing))}")


def _as_list(value: Any, where: str, limit: int) -> list | tuple:
    """Check that ``value`` is a list or tuple of at most ``limit`` items."""
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{where}: expected a list, got {_show(value)}")
    if len(value) > limit:
        raise ValueError(f"{where}: {len(value)} items, at most {limit} allowed")
    return value


def _as_id(value: Any, name: str) -> int:
    """An object id: an int, or a float with an integral value; never a bool."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name}: expected an integer id, got {_show(value)}")
    if isinstance(value, numbers.Integral):
        return int(value)
    if not float(value).is_integer():
        raise ValueError(f"{name}: expected an integer id, got {_show(value)}")
    return int(value)


def _as_text(value: Any, name: str, allow_empty: bool = False) -> str:
    """A stripped string of at most ``MAX_LABEL_CHARS`` characters, non-empty unless allowed."""
    if not isinstance(value, str):
        raise ValueError(f"{name}: expected a string, got {_show(value)}")
    if not value and not allow_empty:
        raise ValueError(f"{name}: expected a non-empty string, got ''")
    if len(value) > MAX_LABEL_CHARS:
        raise ValueError(f"{name}: {len(value)} characters, at most {MAX_LABEL_CHARS} allowed")
    if value != value.strip():
        raise ValueError(f"{name}: {_show(value)} has leading or trailing whitespace; strip it")
    return value


def _as_numbers(value: Any, name: str, n: int) -> tuple[float, ...] | None:
    """``None``, or ``n`` finite floats from a list, tuple or array (anything with ``tolist``)."""
    if value is None:
        return None
    if hasattr(value, "tolist"):
        value = value.tolist()
    if not isinstance(value, (list, tuple)) or len(value) != n:
        raise ValueError(f"{name}: expected a list of {n} numbers, got {_show(value)}")
    out = []
    for i, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise ValueError(f"{name}[{i}]: expected a number, got {_show(v)}")
        try:
            f = float(v)
        except OverflowError:
            f = math.inf
        if not math.isfinite(f):
            raise ValueError(f"{name}[{i}]: expected a finite number, got {_show(v)}")
        out.append(f)
    return tuple(out)


def _as_box(value: Any) -> tuple[float, float, float, float] | None:
    """``None`` or a box ``(x0, y0, x1, y1)`` in 0-1 with ``x0 <= x1`` and ``y0 <= y1``."""
    box = _as_numbers(value, "box", 4)
    if box is None:
        return None
    for axis, v in zip(("x0", "y0", "x1", "y1"), box):
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"box: {axis} {v} is outside 0-1 ({_BOX_HELP})")
    x0, y0, x1, y1 = box
    if x1 < x0:
        raise ValueError(f"box: x1 {x1} < x0 {x0} ({_BOX_HELP})")
    if y1 < y0:
        raise ValueError(f"box: y1 {y1} < y0 {y0} ({_BOX_HELP})")
    return box


def _as_size(value: Any) -> tuple[float, float, float] | None:
    """``None`` or a non-negative extent ``(w, h, d)`` along x, y, z in metres."""
    size = _as_numbers(value, "size", 3)
    for axis, v in zip("whd", size or ()):
        if v < 0:
            raise ValueError(f"size: {axis} {v} is negative (size is the extent along x, y, z, metres)")
    return size


def _as_attributes(value: Any) -> tuple[str, ...]:
    """A tuple of attribute words from a list or tuple of strings."""
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"attributes: expected a list of strings, got {_show(value)}")
    for i, a in enumerate(value):
        _as_text(a, f"attributes[{i}]")
        if "," in a:
            raise ValueError(f"attributes[{i}]: {_show(a)} contains a comma; give each attribute "
                             "as its own string")
    return tuple(value)


@dataclass(frozen=True)
class SGObject:
    """One object. ``id`` is unique within its graph; optional geometry is ``None`` when absent.

    Built from lists, ints or arrays too: fields are converted to tuples of floats and checked, and a
    bad one raises ``ValueError`` naming it ("box: x1 0.2 < x0 0.5 ...").
    """
    id: int
    label: str
    attributes: tuple[str, ...] = ()
    box: tuple[float, float, float, float] | None = None
    position: tuple[float, float, float] | None = None
    size: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", _as_id(self.id, "id"))
        object.__setattr__(self, "label", _as_text(self.label, "label"))
        object.__setattr__(self, "attributes", _as_attributes(self.attributes))
        object.__setattr__(self, "box", _as_box(self.box))
        object.__setattr__(self, "position", _as_numbers(self.position, "position", 3))
        object.__setattr__(self, "size", _as_size(self.size))


@dataclass(frozen=True)
class SGRelation:
    """``subject`` and ``object`` are object ids; ``phrase`` is the wording, "" when none.

    Whether ``predicate`` must be one of the nine depends on the graph's kind, so ``SceneGraph``
    checks that; here it is any non-empty string.
    """
    subject: int
    predicate: str
    object: int
    phrase: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "subject", _as_id(self.subject, "subject"))
        object.__setattr__(self, "predicate", _as_text(self.predicate, "predicate"))
        object.__setattr__(self, "object", _as_id(self.object, "object"))
        object.__setattr__(self, "phrase", _as_text(self.phrase, "phrase", allow_empty=True))
        if self.subject == self.object:
            raise ValueError(f"object: {self.object} is also the subject; a relation joins two "
                             "different objects")


Namer = Callable[[int, str], str]  # (index, field) -> where, for error messages


def _check_graph(kind: Any, objects: tuple[SGObject, ...], relations: tuple[SGRelation, ...],
                 object_at: Namer = lambda i, f: f"objects[{i}].{f}",
                 relation_at: Namer = lambda i, f: f"relations[{i}].{f}") -> None:
    """Check what needs the whole graph: the kind, unique ids, relation ends, predicates."""
    if kind not in KINDS:
        raise ValueError(f"kind: expected one of {', '.join(KINDS)}, got {_show(kind)}")
    ids = set()
    for i, o in enumerate(objects):
        if o.id in ids:
            raise ValueError(f"{object_at(i, 'id')}: duplicate id {o.id}")
        ids.add(o.id)
    for i, r in enumerate(relations):
        for end in ("subject", "object"):
            if getattr(r, end) not in ids:
                raise ValueError(f"{relation_at(i, end)}: no object with id {getattr(r, end)}")
        if kind != "tsg" and r.predicate not in PREDICATES:
            raise ValueError(f"{relation_at(i, 'predicate')}: {r.predicate!r} is not one of the nine "
                             f"predicates ({', '.join(PREDICATES)}); only a 'tsg' graph keeps others")


def _as_items(value: Any, name: str, cls: type, limit: int) -> tuple:
    """A tuple of ``cls`` instances from a list or tuple of at most ``limit`` of them."""
    _as_list(value, name, limit)
    for i, item in enumerate(value):
        if not isinstance(item, cls):
            raise ValueError(f"{name}[{i}]: expected an {cls.__name__}, got {_show(item)}")
    return tuple(value)


def _object_from_dict(d: Any, where: str, sep: str = ".", **given: Any) -> SGObject:
    """An ``SGObject`` from a dict of its fields (``given`` fields come from elsewhere)."""
    keys = tuple(k for k in _OBJECT_KEYS if k not in given)
    _check_keys(d, where, required=tuple(k for k in ("id", "label") if k in keys),
                optional=tuple(k for k in keys if k not in ("id", "label")))
    with _located(where, sep):
        return SGObject(**given, **d)


def _relation_from_dict(d: Any, where: str, **given: Any) -> SGRelation:
    """An ``SGRelation`` from a dict of its fields (``given`` fields come from elsewhere)."""
    keys = tuple(k for k in _RELATION_KEYS if k not in given)
    _check_keys(d, where, required=tuple(k for k in keys if k != "phrase"),
                optional=("phrase",) if "phrase" in keys else ())
    with _located(where):
        return SGRelation(**given, **d)


@dataclass(frozen=True)
class SceneGraph:
    """A kind, objects and relations; checked when built (see the module docstring).

    ``objects`` and ``relations`` may be given as lists; they are stored as tuples. At most
    ``MAX_OBJECTS`` objects and ``MAX_RELATIONS`` relations. In a ``"vsg"`` or ``"3dsg"`` graph every
    predicate is one of the nine; a ``"tsg"`` graph may keep others (see ``spatial_relations``).
    """
    kind: str
    objects: tuple[SGObject, ...] = field(default_factory=tuple)
    relations: tuple[SGRelation, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        object.__setattr__(self, "objects", _as_items(self.objects, "objects", SGObject, MAX_OBJECTS))
        object.__setattr__(self, "relations",
                           _as_items(self.relations, "relations", SGRelation, MAX_RELATIONS))
        _check_graph(self.kind, self.objects, self.relations)

    def spatial_relations(self) -> tuple[SGRelation, ...]:
        """The relations whose predicate is one of the nine (all of them unless kind is "tsg")."""
        return tuple(r for r in self.relations if r.predicate in PREDICATES)

    # --- JSON (the DESIGN.md format) ---

    def to_dict(self) -> dict:
        """The DESIGN.md JSON object: absent geometry and empty phrases are left out."""
        objects = []
        for o in self.objects:
            d = {"id": o.id, "label": o.label, "attributes": list(o.attributes)}
            d.update({k: list(getattr(o, k)) for k in ("box", "position", "size")
                      if getattr(o, k) is not None})
            objects.append(d)
        relations = [{"subject": r.subject, "predicate": r.predicate, "object": r.object,
                      **({"phrase": r.phrase} if r.phrase else {})} for r in self.relations]
        return {"kind": self.kind, "objects": objects, "relations": relations}

    @classmethod
    def from_dict(cls, d: Any) -> SceneGraph:
        """Read the DESIGN.md JSON object; ``objects`` and ``relations`` default to empty lists."""
        _check_keys(d, "scene graph", required=("kind",), optional=("objects", "relations"))
        objects = _as_list(d.get("objects", []), "objects", MAX_OBJECTS)
        relations = _as_list(d.get("relations", []), "relations", MAX_RELATIONS)
        return cls(d["kind"],
                   tuple(_object_from_dict(o, f"objects[{i}]") for i, o in enumerate(objects)),
                   tuple(_relation_from_dict(r, f"relations[{i}]") for i, r in enumerate(relations)))

    def to_json(self, indent: int | None = None) -> str:
        """``to_dict`` as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> SceneGraph:
        """Parse a JSON string and read it with ``from_dict``."""
        try:
            d = json.loads(text)
        except (ValueError, TypeError, RecursionError) as error:
            raise ValueError(f"expected a JSON document, got {_show(text)}: {error}") from None
        return cls.from_dict(d)

    # --- networkx ---

    def to_networkx(self) -> nx.DiGraph:
        """A ``DiGraph``: graph attribute ``kind``; one node per object, keyed by id, in order, with
        attributes ``label, attributes, box, position, size`` (``None`` when absent); one edge per
        (subject, object) pair with attribute ``relations``: a list of
        ``{"index", "predicate", "phrase"}``, ``index`` being the relation's place in ``relations``.
        """
        g = nx.DiGraph(kind=self.kind)
        for o in self.objects:
            g.add_node(o.id, label=o.label, attributes=o.attributes, box=o.box,
                       position=o.position, size=o.size)
        for i, r in enumerate(self.relations):
            if not g.has_edge(r.subject, r.object):
                g.add_edge(r.subject, r.object, relations=[])
            g.edges[r.subject, r.object]["relations"].append(
                {"index": i, "predicate": r.predicate, "phrase": r.phrase})
        return g

    @classmethod
    def from_networkx(cls, g: Any) -> SceneGraph:
        """Read a ``DiGraph`` in the layout of ``to_networkx`` (node attributes other than ``label``
        optional, ``phrase`` optional); relations are put back in ``index`` order."""
        if not isinstance(g, nx.DiGraph) or g.is_multigraph():
            raise ValueError(f"expected a networkx DiGraph, got {type(g).__name__}")
        _check_keys(g.graph, "graph attributes", required=("kind",))
        if g.number_of_nodes() > MAX_OBJECTS:
            raise ValueError(f"nodes: {g.number_of_nodes()} nodes, at most {MAX_OBJECTS} allowed")
        objects = tuple(_object_from_dict(attrs, f"node {n!r}", ", ", id=n)
                        for n, attrs in g.nodes(data=True))
        indexed = []
        for s, o, attrs in g.edges(data=True):
            where = f"edge {s!r} -> {o!r}"
            _check_keys(attrs, where, required=("relations",))
            for j, r in enumerate(_as_list(attrs["relations"], f"{where}, relations", MAX_RELATIONS)):
                at = f"{where}, relations[{j}]"
                _check_keys(r, at, required=("index", "predicate"), optional=("phrase",))
                index = _as_id(r["index"], f"{at}.index")
                rest = {k: v for k, v in r.items() if k != "index"}
                indexed.append((index, _relation_from_dict(rest, at, subject=s, object=o)))
        indexed.sort(key=lambda pair: pair[0])
        if [i for i, _ in indexed] != list(range(len(indexed))):
            raise ValueError(f"edge relations: indices must be 0..{len(indexed) - 1} once each, "
                             f"got {_show([i for i, _ in indexed])}")
        return cls(g.graph["kind"], objects, tuple(r for _, r in indexed))
