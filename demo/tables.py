"""Scene graphs to and from the studio's two editable tables (objects, relations) as pandas frames.

The object table shows the columns a graph fills: ``id, label, attributes``, then the box
(``x0, y0, x1, y1``, 0-1 image coordinates) when any object has one or the kind is "vsg", then
position and size (``x, y, z, w, h, d``, metres, camera frame) when any object has them or the kind
is "3dsg". Reading goes by column name, so a table may hold any subset of ``OBJECT_COLUMNS``.
The relation table is ``RELATION_COLUMNS``; its predicates must be one of the nine in every kind.
Errors are ``ValueError`` naming the table, row (from 1) and column, as ``graph_io.from_rows`` does.
"""
from __future__ import annotations

import pandas as pd

from sd3core.graph import SceneGraph
from sd3core.graph_io import OBJECT_COLUMNS, RELATION_COLUMNS, from_rows, to_rows
from sd3core.vocab import PREDICATES

BASE_COLUMNS = OBJECT_COLUMNS[:3]   # id, label, attributes
BOX_COLUMNS = OBJECT_COLUMNS[3:7]   # x0, y0, x1, y1
PLACE_COLUMNS = OBJECT_COLUMNS[7:]  # x, y, z, w, h, d


def object_columns(graph: SceneGraph) -> tuple[str, ...]:
    """The object-table columns that show ``graph``: base, then box and place columns if used."""
    boxed = graph.kind == "vsg" or any(o.box is not None for o in graph.objects)
    placed = graph.kind == "3dsg" or any(o.position is not None or o.size is not None
                                         for o in graph.objects)
    return BASE_COLUMNS + (BOX_COLUMNS if boxed else ()) + (PLACE_COLUMNS if placed else ())


def empty_tables(kind: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Empty object and relation frames with the columns of ``kind``."""
    return to_tables(SceneGraph(kind))


def to_tables(graph: SceneGraph) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(objects, relations)`` frames: one row per object / relation (``graph_io.to_rows``)."""
    object_rows, relation_rows = to_rows(graph)
    shown = [OBJECT_COLUMNS.index(c) for c in object_columns(graph)]
    objects = pd.DataFrame([[row[i] for i in shown] for row in object_rows],
                           columns=list(object_columns(graph)), dtype=object)
    relations = pd.DataFrame(relation_rows, columns=list(RELATION_COLUMNS), dtype=object)
    return objects, relations


def from_tables(kind: str, objects: pd.DataFrame, relations: pd.DataFrame) -> SceneGraph:
    """Read edited frames back into a graph of ``kind``; ``ValueError`` names the cell at fault."""
    object_rows = _rows_by_name(objects, "object table", OBJECT_COLUMNS)
    relation_rows = _rows_by_name(relations, "relation table", RELATION_COLUMNS)
    _check_predicates(relation_rows)
    return from_rows(kind, object_rows, relation_rows)


def _rows_by_name(frame: pd.DataFrame, table: str, columns: tuple[str, ...]) -> list[list]:
    """The frame's rows laid out as ``columns`` (missing columns empty), read by header name."""
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{table}: expected a table, got {type(frame).__name__}")
    unknown = [str(c) for c in frame.columns if c not in columns]
    if unknown:
        raise ValueError(f"{table}: unknown column(s) {', '.join(unknown)}; expected columns among "
                         f"{', '.join(columns)}")
    return [[_cell(row.get(c)) for c in columns] for row in frame.to_dict("records")]


def _cell(value):
    """A table cell with pandas' missing markers (NaN, NA, None) as None."""
    return None if not isinstance(value, str) and pd.isna(value) else value


def _check_predicates(relation_rows: list[list]) -> None:
    """Every filled predicate cell must be one of the nine (a ``tsg`` graph would keep others)."""
    for line, row in enumerate(relation_rows, start=1):
        cell = row[1]
        if cell is not None and str(cell).strip() and str(cell).strip() not in PREDICATES:
            raise ValueError(f"relation table row {line}, column 'predicate': {str(cell)!r} is not "
                             f"one of the nine predicates ({', '.join(PREDICATES)})")


def set_predicate(relations: pd.DataFrame, row: int, predicate: str) -> pd.DataFrame:
    """A copy of the relation frame with row ``row`` (from 1) given ``predicate`` (one of the nine)."""
    if predicate not in PREDICATES:
        raise ValueError(f"predicate: {predicate!r} is not one of the nine ({', '.join(PREDICATES)})")
    if not isinstance(row, (int, float)) or not float(row).is_integer() or not 1 <= row <= len(relations):
        raise ValueError(f"row: got {row!r}; the relation table has rows 1 to {len(relations)}")
    edited = relations.copy()
    edited.loc[edited.index[int(row) - 1], "predicate"] = predicate
    return edited
