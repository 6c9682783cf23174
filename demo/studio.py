"""The studio's Blocks. For now: a scene-graph inspector (JSON in, validated tables out)."""
from __future__ import annotations

import gradio as gr

from sd3core.graph import SceneGraph
from sd3core.graph_io import OBJECT_COLUMNS, RELATION_COLUMNS, to_rows

MAX_JSON_CHARS = 200_000
EXAMPLE = """{"kind": "3dsg",
 "objects": [{"id": 0, "label": "cube", "attributes": ["red", "large"],
              "box": [0.10, 0.42, 0.35, 0.80], "position": [-0.6, 0.5, 4.2], "size": [1.0, 1.0, 1.0]},
             {"id": 1, "label": "sphere", "attributes": ["blue"]}],
 "relations": [{"subject": 0, "predicate": "to the left of", "object": 1, "phrase": "left of"}]}"""


def inspect_graph(text: str) -> tuple[list[list], list[list], str]:
    """Scene-graph JSON -> (object rows, relation rows, status line); bad input -> a gr.Error."""
    if len(text) > MAX_JSON_CHARS:
        raise gr.Error(f"The JSON is {len(text):,} characters; the limit is {MAX_JSON_CHARS:,}.")
    try:
        graph = SceneGraph.from_json(text)
    except ValueError as err:
        raise gr.Error(f"Not a valid scene graph: {err}") from None
    objects, relations = to_rows(graph)
    return objects, relations, f"{graph.kind}: {len(graph.objects)} objects, {len(graph.relations)} relations"


def build_studio() -> gr.Blocks:
    with gr.Blocks(title="SD3 Studio") as studio:
        gr.Markdown("# SD3 Studio\nSpatial scene graphs. Paste a scene graph (DESIGN.md JSON format) "
                    "to validate it and see its object and relation tables.")
        text = gr.Code(value=EXAMPLE, language="json", label="Scene graph JSON")
        button = gr.Button("Inspect", variant="primary")
        status = gr.Markdown()
        objects = gr.Dataframe(headers=list(OBJECT_COLUMNS), label="Objects", interactive=False)
        relations = gr.Dataframe(headers=list(RELATION_COLUMNS), label="Relations", interactive=False)
        button.click(inspect_graph, text, [objects, relations, status], api_name="inspect_graph")
    return studio
