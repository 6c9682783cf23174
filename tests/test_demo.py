"""The studio page: it builds, and its inspector reports bad input as a message, not a traceback."""
import gradio as gr
import pytest

from demo.studio import EXAMPLE, MAX_JSON_CHARS, build_studio, inspect_graph


def test_studio_builds_with_named_endpoint():
    studio = build_studio()
    assert isinstance(studio, gr.Blocks)
    assert "inspect_graph" in {fn.api_name for fn in studio.fns.values()}


def test_inspector_shows_tables_for_a_valid_graph():
    objects, relations, status = inspect_graph(EXAMPLE)
    assert [row[1] for row in objects] == ["cube", "sphere"]
    assert relations == [[0, "to the left of", 1, "left of"]]
    assert status.startswith("3dsg: 2 objects, 1 relations")


@pytest.mark.parametrize("text, words", [
    ("{not json", "Not a valid scene graph"),
    ('{"kind": "3dsg", "objects": [{"id": 0, "label": "cube"}], "relations": '
     '[{"subject": 0, "predicate": "beside", "object": 0}]}', "relations[0]"),
    ("x" * (MAX_JSON_CHARS + 1), "limit"),
])
def test_inspector_names_the_fault(text, words):
    with pytest.raises(gr.Error, match=words.replace("[", r"\[").replace("]", r"\]")):
        inspect_graph(text)
