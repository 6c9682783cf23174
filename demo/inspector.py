"""The 3DSG inspector's events: read any scene-graph JSON (DESIGN.md format, sg2im JSON, a VSD
record), show it, compare two graphs, and save it as DESIGN.md JSON for download. No model runs."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from gradio.utils import get_upload_folder

from sd3core.graph import SceneGraph
from sd3core.graph_io import from_sg2im, from_vsd_record

from .events import TabState
from .figures import graph_figure, object_name, scene_figure
from .messages import shown_as_messages
from .tables import to_tables

MAX_JSON_CHARS = 200_000


def read_any_graph(text: str) -> tuple[SceneGraph, str]:
    """JSON text -> (graph, the format it was in: "DESIGN.md", "sg2im" or "VSD record").

    The format is told by the keys: ``kind`` (DESIGN.md), ``triple_list`` (VSD record),
    ``relationships`` or a list of names as ``objects`` (sg2im). ValueError names what is wrong.
    """
    if not text or not text.strip():
        raise ValueError("scene graph JSON: empty; paste a graph or load a .json file")
    if len(text) > MAX_JSON_CHARS:
        raise ValueError(f"scene graph JSON: {len(text):,} characters; the limit is {MAX_JSON_CHARS:,}")
    try:
        d = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise ValueError(f"Not a valid scene graph: not JSON ({error})") from None
    if isinstance(d, dict) and "kind" in d:
        return SceneGraph.from_dict(d), "DESIGN.md"
    if isinstance(d, dict) and "triple_list" in d:
        return from_vsd_record(d), "VSD record"
    if isinstance(d, dict) and ("relationships" in d or all(isinstance(o, str) for o in d.get("objects", [0]))):
        return from_sg2im(d), "sg2im"
    raise ValueError("Not a valid scene graph: expected the DESIGN.md format (with 'kind'), sg2im JSON "
                     "('objects' as names, 'relationships') or a VSD record ('triple_list')")


def _saved(graph: SceneGraph) -> str:
    """Write ``graph`` as DESIGN.md JSON to a new file in gradio's upload folder; return its path."""
    Path(get_upload_folder()).mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix="sd3-", dir=get_upload_folder())) / f"scene_graph_{graph.kind}.json"
    path.write_text(graph.to_json(indent=1))
    return os.fspath(path)


@shown_as_messages
def inspect_graph(text: str):
    """JSON -> (objects, relations, 3D figure, 2D figure, DESIGN.md JSON file, status)."""
    graph, form = read_any_graph(text)
    placed = sum(o.position is not None and o.size is not None for o in graph.objects)
    status = (f"{graph.kind}: {len(graph.objects)} objects, {len(graph.relations)} relations "
              f"(read as {form}; {placed} objects have position and size).")
    return (*to_tables(graph), scene_figure(graph), graph_figure(graph), _saved(graph), status)


def _triples(graph: SceneGraph) -> dict[tuple[int, str, int], str]:
    """(subject id, predicate, object id) -> its words with object names, for every relation."""
    names = {o.id: object_name(o) for o in graph.objects}
    return {(r.subject, r.predicate, r.object): f"{names[r.subject]} {r.predicate} {names[r.object]}"
            for r in graph.relations}


@shown_as_messages
def compare_graphs(first: str, second: str) -> str:
    """Which relations (by object id and predicate) and objects the second graph adds and drops."""
    a, _ = read_any_graph(first)
    b, _ = read_any_graph(second)
    ta, tb = _triples(a), _triples(b)
    ids_a, ids_b = {o.id for o in a.objects}, {o.id for o in b.objects}
    parts = [f"**{b.kind}** against **{a.kind}**: {len(tb)} relations against {len(ta)}; "
             f"{len(ta.keys() & tb.keys())} in both."]
    for verb, words in (("adds", [tb[t] for t in tb if t not in ta]), ("drops", [ta[t] for t in ta if t not in tb])):
        parts.append(f"\n**The second {verb} {len(words)} relation(s)**" + "".join(f"\n- {w}" for w in words))
    if ids_a != ids_b:
        parts.append(f"\nObject ids only in the first: {sorted(ids_a - ids_b)}; only in the second: "
                     f"{sorted(ids_b - ids_a)} (relations are matched by object id).")
    return "\n".join(parts)


@shown_as_messages
def load_json_file(path: str | None) -> str:
    """An uploaded .json file -> its text (at most ``MAX_JSON_CHARS`` characters)."""
    if not path:
        raise ValueError("file: none uploaded")
    if os.path.getsize(path) > MAX_JSON_CHARS * 4:
        raise ValueError(f"file: {os.path.getsize(path):,} bytes; the limit is {MAX_JSON_CHARS:,} characters")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError("file: not UTF-8 text; expected a scene-graph .json file") from None
    read_any_graph(text)
    return text


@shown_as_messages
def graphs_of_tab(state: TabState) -> tuple[str, str]:
    """A pipeline tab's last good source graph and 3DSG as JSON, to compare them here."""
    if state.source is None or state.graph3d is None:
        raise ValueError("nothing to compare yet: read a sentence or image and press 'Lift to 3D' first")
    return state.source.to_json(indent=1), state.graph3d.to_json(indent=1)
