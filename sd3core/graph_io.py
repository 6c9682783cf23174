"""Scene graphs to and from other shapes: table rows (the studio's editable tables), sg2im JSON and
VSD records. Every reader checks as ``SceneGraph`` does and raises ``ValueError`` naming the row and
column, or the key, at fault.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Callable, Sequence

from .graph import (MAX_OBJECTS, MAX_RELATIONS, SceneGraph, SGObject, SGRelation, _as_id, _as_list,
                    _check_graph, _check_keys, _located, _show)
from .vocab import PREDICATES

OBJECT_COLUMNS = ("id", "label", "attributes", "x0", "y0", "x1", "y1", "x", "y", "z", "w", "h", "d")
RELATION_COLUMNS = ("subject", "predicate", "object", "phrase")
# object field -> its table columns
_GEOMETRY = {"box": ("x0", "y0", "x1", "y1"), "position": ("x", "y", "z"), "size": ("w", "h", "d")}

# sg2im relationship words -> one of the nine predicates (the nine map to themselves)
SG2IM_PREDICATES = {
    **{p: p for p in PREDICATES},
    "left of": "to the left of",
    "right of": "to the right of",
    "below": "under",
    "beneath": "under",
    "inside": "in",
    "on top of": "on",
    "beside": "next to",
}

# --- table rows ---

Cell = str | float | int


def to_rows(graph: SceneGraph) -> tuple[list[list[Cell]], list[list[Cell]]]:
    """``(object_rows, relation_rows)``, one row per object / relation with the cells of
    ``OBJECT_COLUMNS`` / ``RELATION_COLUMNS``: ids as ints, coordinates as floats, attributes joined
    by ", ", and "" for an absent box, position or size.
    """
    objects = []
    for o in graph.objects:
        row: list[Cell] = [o.id, o.label, ", ".join(o.attributes)]
        for name, columns in _GEOMETRY.items():
            value = getattr(o, name)
            row.extend(value if value is not None else [""] * len(columns))
        objects.append(row)
    relations = [[r.subject, r.predicate, r.object, r.phrase] for r in graph.relations]
    return objects, relations


def from_rows(kind: str, object_rows: Sequence[Sequence[Any]],
              relation_rows: Sequence[Sequence[Any]]) -> SceneGraph:
    """Read the tables of ``to_rows`` back into a graph of ``kind``.

    Cells may be strings or numbers; strings are stripped, ``None`` and NaN cells count as empty,
    rows with every cell empty are skipped, and a short row is padded with empty cells. A box,
    position or size is present when all its cells are filled. Errors name the row as a person counts
    (from 1) and the column: "object table row 3, column 'x0': 'abc' is not a number". For a pandas
    DataFrame pass ``df.values.tolist()``.
    """
    objects, object_lines = _read_table(object_rows, "object table", OBJECT_COLUMNS, _object_from_cells)
    relations, relation_lines = _read_table(relation_rows, "relation table", RELATION_COLUMNS,
                                            _relation_from_cells)
    _check_graph(kind, objects, relations,
                 object_at=lambda i, f: f"object table row {object_lines[i]}, column '{f}'",
                 relation_at=lambda i, f: f"relation table row {relation_lines[i]}, column '{f}'")
    return SceneGraph(kind, objects, relations)


def _read_table(rows: Any, table: str, columns: tuple[str, ...],
                build: Callable[[dict[str, Cell]], Any]) -> tuple[tuple, list[int]]:
    """Build one item per non-empty row; returns the items and their 1-based row numbers."""
    if not isinstance(rows, (list, tuple)):
        raise ValueError(f"{table}: expected a list of rows, got {_show(rows)}")
    items, lines = [], []
    for line, row in enumerate(rows, start=1):
        where = f"{table} row {line}"
        if not isinstance(row, (list, tuple)) or len(row) > len(columns):
            raise ValueError(f"{where}: expected a list of at most {len(columns)} cells "
                             f"({', '.join(columns)}), got {_show(row)}")
        cells = [_clean_cell(c, where, col) for c, col in zip(row, columns)]
        if all(c == "" for c in cells):
            continue
        cells += [""] * (len(columns) - len(cells))
        with _located(where, ", "):
            items.append(build(dict(zip(columns, cells))))
        lines.append(line)
    return tuple(items), lines


def _clean_cell(cell: Any, where: str, column: str) -> Cell:
    """A stripped string, or a number; "" for ``None`` and NaN."""
    if cell is None or (isinstance(cell, numbers.Real) and not isinstance(cell, numbers.Integral)
                        and math.isnan(cell)):
        return ""
    if isinstance(cell, str):
        return cell.strip()
    if isinstance(cell, numbers.Real) and not isinstance(cell, bool):
        return cell
    raise ValueError(f"{where}, column '{column}': expected text or a number, got {_show(cell)}")


def _number(cells: dict[str, Cell], column: str) -> float | None:
    """The cell as a float, ``None`` when empty."""
    cell = cells[column]
    if cell == "":
        return None
    try:
        value = float(cell)
    except (ValueError, OverflowError):
        raise ValueError(f"column '{column}': {_show(cell)} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"column '{column}': {_show(cell)} is not a finite number")
    return value


def _id(cells: dict[str, Cell], column: str) -> int:
    """The cell as an object id."""
    cell = cells[column]
    if cell == "":
        raise ValueError(f"column '{column}': empty; expected an object id")
    if isinstance(cell, str):
        try:
            return int(cell)
        except ValueError:
            pass
        try:
            cell = float(cell)
        except ValueError:
            raise ValueError(f"column '{column}': {_show(cell)} is not an integer id") from None
    return _as_id(cell, f"column '{column}'")


def _group(cells: dict[str, Cell], name: str) -> tuple[float, ...] | None:
    """The numbers of ``name``'s columns, ``None`` when all are empty."""
    columns = _GEOMETRY[name]
    values = [_number(cells, c) for c in columns]
    if all(v is None for v in values):
        return None
    if any(v is None for v in values):
        empty = [c for c, v in zip(columns, values) if v is None]
        raise ValueError(f"columns {', '.join(columns)}: fill all or none of the {name}, "
                         f"got {', '.join(empty)} empty")
    return tuple(values)


def _object_from_cells(cells: dict[str, Cell]) -> SGObject:
    """An object from one row of ``OBJECT_COLUMNS``."""
    attributes = cells["attributes"]
    if not isinstance(attributes, str):
        raise ValueError(f"column 'attributes': expected comma-separated words, got {attributes!r}")
    return SGObject(_id(cells, "id"), cells["label"],
                    tuple(a.strip() for a in attributes.split(",") if a.strip()),
                    *(_group(cells, name) for name in _GEOMETRY))


def _relation_from_cells(cells: dict[str, Cell]) -> SGRelation:
    """A relation from one row of ``RELATION_COLUMNS``."""
    return SGRelation(_id(cells, "subject"), cells["predicate"], _id(cells, "object"), cells["phrase"])


# --- sg2im JSON ---

def from_sg2im(d: Any) -> SceneGraph:
    """Read one sg2im scene graph, ``{"objects": ["cube", ...], "relationships": [[0, "left of", 1],
    ...]}``, as a "tsg" graph: object ids are list indices, predicates are mapped to the nine through
    ``SG2IM_PREDICATES`` and the original words kept as the phrase.
    """
    _check_keys(d, "sg2im graph", required=("objects",), optional=("relationships",))
    names = _as_list(d["objects"], "objects", MAX_OBJECTS)
    objects = []
    for i, name in enumerate(names):
        with _located(f"objects[{i}]", ", "):
            objects.append(SGObject(i, name))
    triples = _as_list(d.get("relationships", []), "relationships", MAX_RELATIONS)
    relations = []
    for i, triple in enumerate(triples):
        with _located(f"relationships[{i}]", ": "):
            relations.append(_sg2im_relation(triple, len(names)))
    return SceneGraph("tsg", objects, relations)


def _sg2im_relation(triple: Any, n_objects: int) -> SGRelation:
    """A relation from an sg2im ``[subject index, words, object index]``."""
    if not isinstance(triple, (list, tuple)) or len(triple) != 3:
        raise ValueError(f"expected [subject index, predicate, object index], got {_show(triple)}")
    s, words, o = triple
    for name, index in (("subject", s), ("object", o)):
        if not 0 <= _as_id(index, name) < n_objects:
            raise ValueError(f"{name} index {index} is out of range for {n_objects} objects")
    if not isinstance(words, str) or words.strip().lower() not in SG2IM_PREDICATES:
        raise ValueError(f"predicate {_show(words)} is not one of the known phrases "
                         f"({', '.join(SG2IM_PREDICATES)})")
    return SGRelation(s, SG2IM_PREDICATES[words.strip().lower()], o, words.strip())


# --- VSD records ---

def from_vsd_record(record: Any, width: float | None = None, height: float | None = None) -> SceneGraph:
    """Read one VSD record, ``{"img_id", "triple_list": [{"s", "p", "o", "s_bbox", "o_bbox"}],
    "captions"}``, as a "vsg" graph with one object per distinct (label, box) and phrase = ``p``.

    VSD boxes are ``[y0, y1, x0, x1]`` in pixels of the source image; they become ``[x0, y0, x1, y1]``
    in 0-1 by dividing x by ``width`` and y by ``height`` (pixels), clipped to 0-1. VSD records do not
    carry the image size: without ``width`` and ``height`` every coordinate is divided by the largest
    coordinate among the record's boxes. That is an approximation: it keeps the aspect ratio and the
    boxes' order along each axis, but not their true place in the image. ``img_id`` and ``captions``
    are not kept.
    """
    _check_keys(record, "VSD record", required=("triple_list",), optional=("img_id", "captions"))
    triples = _as_list(record["triple_list"], "triple_list", MAX_RELATIONS)
    for i, t in enumerate(triples):
        _check_keys(t, f"triple_list[{i}]", required=("s", "p", "o", "s_bbox", "o_bbox"))
        if t["p"] not in PREDICATES:
            raise ValueError(f"triple_list[{i}].p: {_show(t['p'])} is not one of the nine predicates "
                             f"({', '.join(PREDICATES)})")
    pixel_boxes = [[_vsd_box(t[k], f"triple_list[{i}].{k}") for k in ("s_bbox", "o_bbox")]
                   for i, t in enumerate(triples)]
    scale = _vsd_scale(width, height, [b for pair in pixel_boxes for b in pair])
    ids: dict[tuple, int] = {}
    objects, relations = [], []
    for i, (t, pair) in enumerate(zip(triples, pixel_boxes)):
        ends = []
        for label_key, pixel_box in zip("so", pair):
            with _located(f"triple_list[{i}].{label_key}", ", "):
                candidate = SGObject(len(objects), t[label_key], box=_vsd_normalised(pixel_box, scale))
            key = (candidate.label, candidate.box)
            if key not in ids:
                ids[key] = candidate.id
                objects.append(candidate)
            ends.append(ids[key])
        with _located(f"triple_list[{i}]", ", "):
            relations.append(SGRelation(ends[0], t["p"], ends[1], t["p"]))
    return SceneGraph("vsg", objects, relations)


def _vsd_box(value: Any, where: str) -> tuple[float, float, float, float]:
    """A VSD pixel box ``(y0, y1, x0, x1)``: four finite non-negative numbers, y0 <= y1, x0 <= x1."""
    if not isinstance(value, (list, tuple)) or len(value) != 4 or any(
            isinstance(v, bool) or not isinstance(v, numbers.Real) or not 0 <= v < math.inf
            for v in value):
        raise ValueError(f"{where}: expected [y0, y1, x0, x1] as four non-negative pixel numbers, "
                         f"got {_show(value)}")
    y0, y1, x0, x1 = (float(v) for v in value)
    if y1 < y0 or x1 < x0:
        raise ValueError(f"{where}: expected [y0, y1, x0, x1] with y0 <= y1 and x0 <= x1, got "
                         f"{_show(value)}")
    return y0, y1, x0, x1


def _vsd_normalised(pixel_box: tuple[float, ...], scale: tuple[float, float]) -> list[float]:
    """``[x0, y0, x1, y1]`` in 0-1 from a pixel box ``(y0, y1, x0, x1)`` and ``(x, y)`` pixel scales."""
    y0, y1, x0, x1 = pixel_box
    sx, sy = scale
    return [min(1.0, x0 / sx), min(1.0, y0 / sy), min(1.0, x1 / sx), min(1.0, y1 / sy)]


def _vsd_scale(width: Any, height: Any, boxes: list[tuple[float, ...]]) -> tuple[float, float]:
    """``(x scale, y scale)`` in pixels: the image size if given, else the largest coordinate."""
    if width is None and height is None:
        largest = max((v for b in boxes for v in b), default=0.0)
        return (largest, largest) if largest > 0 else (1.0, 1.0)
    for name, v in (("width", width), ("height", height)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not 0 < v < math.inf:
            raise ValueError(f"{name}: expected a positive number of pixels (give both width and "
                             f"height, or neither), got {_show(v)}")
    return float(width), float(height)
