"""The studio's event functions, called directly: tables <-> graphs, figures, the inspector, and the
model arrows over tiny checkpoints (real code, meaningless weights), failure paths included."""

from dataclasses import replace
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from demo import hosting
from demo.events import DEFAULT_SAMPLES, StudioEvents, TabState, captions_markdown, faithfulness_html
from demo.figures import TOKEN_CELL_PX, box_annotations, graph_figure, scene_figure
from demo.inspector import (MAX_JSON_CHARS, compare_graphs, graphs_of_tab, inspect_graph, load_json_file,
                            read_any_graph)
from demo.messages import shown_as_messages
from demo.studio import EXAMPLES, build_studio
from demo.tables import from_tables, object_columns, set_predicate, to_tables
from sd3core.graph import SceneGraph
from sd3core.pipeline import Engine

GRAPH3D = SceneGraph.from_dict({
    "kind": "3dsg",
    "objects": [{"id": 0, "label": "cube", "attributes": ["red", "large"], "box": [0.1, 0.4, 0.35, 0.8],
                 "position": [-0.6, 0.5, 4.2], "size": [1.0, 1.0, 1.0]},
                {"id": 1, "label": "sphere", "attributes": ["blue"], "box": [0.5, 0.5, 0.7, 0.7],
                 "position": [0.6, 0.3, 4.5], "size": [0.6, 0.6, 0.6]}],
    "relations": [{"subject": 0, "predicate": "to the left of", "object": 1},
                  {"subject": 1, "predicate": "to the right of", "object": 0}]})
STEPS = 1  # diffusion steps in these tests: mechanics, not quality


def escaped(words: str) -> str:
    return words.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(").replace(")", r"\)")


# --- tables ---

def test_tables_round_trip_and_show_only_the_columns_a_graph_fills():
    objects, relations = to_tables(GRAPH3D)
    assert list(objects.columns) == ["id", "label", "attributes", "x0", "y0", "x1", "y1",
                                     "x", "y", "z", "w", "h", "d"]
    assert from_tables("3dsg", objects, relations) == GRAPH3D
    tsg = SceneGraph("tsg", [o.__class__(o.id, o.label, o.attributes) for o in GRAPH3D.objects])
    assert object_columns(tsg) == ("id", "label", "attributes")
    assert object_columns(SceneGraph("vsg"))[-1] == "y1"


@pytest.mark.parametrize("table, row, column, value, words", [
    ("relations", 1, "predicate", "beside",
     "relation table row 1, column 'predicate': 'beside' is not one of the nine"),
    ("relations", 2, "object", 7, "relation table row 2, column 'object': no object with id 7"),
    ("objects", 2, "x", "abc", "object table row 2, column 'x': 'abc' is not a number"),
    ("objects", 1, "label", "", "object table row 1, label: expected a non-empty string"),
])
def test_a_bad_cell_is_named(table, row, column, value, words):
    tables = dict(zip(("objects", "relations"), to_tables(GRAPH3D)))
    tables[table].loc[row - 1, column] = value
    with pytest.raises(ValueError, match=escaped(words)):
        from_tables("3dsg", tables["objects"], tables["relations"])


def test_set_predicate_edits_a_copy_and_refuses_bad_rows():
    _, relations = to_tables(GRAPH3D)
    edited = set_predicate(relations, 2, "behind")
    assert edited.loc[1, "predicate"] == "behind" and relations.loc[1, "predicate"] == "to the right of"
    with pytest.raises(ValueError, match="rows 1 to 2"):
        set_predicate(relations, 3, "behind")
    with pytest.raises(ValueError, match="not one of the nine"):
        set_predicate(relations, 1, "beside")
    with pytest.raises(ValueError, match="unknown column"):
        from_tables("3dsg", pd.DataFrame({"colour": ["red"]}), relations)


# --- figures ---

def test_scene_figure_draws_objects_relations_ground_and_camera():
    figure = scene_figure(GRAPH3D)
    names = [t.name for t in figure.data]
    assert {"objects", "relations", "predicates", "ground plane", "camera frustum", "bounding boxes"} <= set(names)
    objects = figure.data[names.index("objects")]
    assert list(objects.x) == [-0.6, 0.6] and list(objects.y) == [4.2, 4.5]  # plot y is depth
    assert "position x -0.60" in objects.hovertext[0] and "size w 1.00" in objects.hovertext[0]
    assert objects.marker.color[0] == "rgb(200, 30, 30)"
    assert figure.data[names.index("predicates")].text == ("#0 → #1: to the left of",)
    assert "blue sphere #1 to the right of red large cube #0" in figure.data[names.index("predicates")].hovertext[0]
    assert scene_figure(SceneGraph("3dsg")).data == ()


def test_graph_figure_and_boxes():
    figure = graph_figure(GRAPH3D)
    assert {a.text for a in figure.layout.annotations if a.text} == {"to the left of", "to the right of"}
    image = np.zeros((100, 200, 3), np.uint8)
    _, boxes = box_annotations(image, GRAPH3D)
    assert boxes[0] == ((20, 40, 70, 80), "red large cube #0")


# --- inspector ---

@pytest.mark.parametrize("name, kind, form", [
    ("graph3d_test_scene_000.json", "3dsg", "DESIGN.md"),
    ("sg2im_cube_sphere.json", "tsg", "sg2im"),
    ("vsd_record_two_shapes.json", "vsg", "VSD record"),
])
def test_inspector_reads_every_example_format(name, kind, form):
    graph, read_as = read_any_graph((EXAMPLES / name).read_text())
    assert (graph.kind, read_as) == (kind, form)
    objects, relations, figure3d, figure2d, saved, status = inspect_graph((EXAMPLES / name).read_text())
    assert SceneGraph.from_json(open(saved).read()) == graph
    assert status.startswith(kind) and len(objects) == len(graph.objects)


@pytest.mark.parametrize("text, words", [
    ("{not json", "Not a valid scene graph"),
    ('{"kind": "3dsg", "objects": [{"id": 0, "label": "cube"}, {"id": 1, "label": "cone"}], "relations": '
     '[{"subject": 0, "predicate": "beside", "object": 1}]}', "relations[0].predicate"),
    ('{"foo": 1}', "expected the DESIGN.md format"),
    ("", "empty"),
    ("x" * (MAX_JSON_CHARS + 1), "limit"),
])
def test_inspector_names_the_fault(text, words):
    with pytest.raises(gr.Error, match=escaped(words)):
        inspect_graph(text)


def test_compare_says_what_the_second_graph_adds_and_drops():
    tsg = '{"kind": "tsg", "objects": [{"id": 0, "label": "cube"}, {"id": 1, "label": "cone"}], ' \
          '"relations": [{"subject": 0, "predicate": "on", "object": 1}]}'
    out = compare_graphs(tsg, GRAPH3D.to_json())
    assert "adds 2 relation(s)" in out and "drops 1 relation(s)" in out
    assert "cube #0 on cone #1" in out and "red large cube #0 to the left of blue sphere #1" in out


def test_load_json_file_refuses_what_is_not_a_graph(tmp_path):
    good = tmp_path / "g.json"
    good.write_text(GRAPH3D.to_json())
    assert load_json_file(str(good)) == GRAPH3D.to_json()
    binary = tmp_path / "b.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(gr.Error, match="not UTF-8"):
        load_json_file(str(binary))
    with pytest.raises(gr.Error, match="nothing to compare yet"):
        graphs_of_tab(TabState())


# --- output formatting ---

def test_faithfulness_and_caption_checks_are_listed():
    cards = faithfulness_html(GRAPH3D, [([True, False], [True, False])])
    assert "✓ red large cube #0" in cards and "✗ blue sphere #1" in cards
    assert "✓ red large cube #0 to the left of blue sphere #1" in cards and "relations hold 1/2" in cards
    said = SceneGraph("tsg", GRAPH3D.objects[:2], GRAPH3D.relations[:1])
    text = captions_markdown(["a cube left of a sphere", ""], [said, SceneGraph("tsg")], [[True], []])
    assert "✓ red large cube to the left of blue sphere" in text and "states no spatial relation" in text


def test_unexpected_errors_become_short_messages():
    @shown_as_messages
    def broken():
        raise RuntimeError("secret detail")
    with pytest.raises(gr.Error, match="Internal error in broken") as caught:
        broken()
    assert "secret detail" not in str(caught.value)


# --- the studio and its model events ---

class StatedRelationsEngine(Engine):
    """The engine with a lift that keeps only the relations the input states: the two-step lifter's
    other relations are noise that may contradict each other, which the image and text diffusions
    rightly refuse. Every arrow still runs its real code."""

    def lift_to_3d(self, graph, steps=None, seed=0, temperature=None):
        lifted = super().lift_to_3d(graph, steps, seed, temperature)
        return SceneGraph("3dsg", lifted.objects, graph.spatial_relations())


@pytest.fixture(scope="module")
def events(tiny_checkpoints):
    return StudioEvents(StatedRelationsEngine(tiny_checkpoints, device="cpu"))


def test_every_action_is_named_and_model_events_share_one_limit(monkeypatch, events):
    monkeypatch.setenv("SD3_CONCURRENCY", "3")
    studio = build_studio(events.engine)
    named = {fn.api_name: fn for fn in studio.fns.values() if fn.api_visibility == "public"}
    assert {"parse", "lift_tsg", "generate_images", "regenerate_images", "detect", "lift_vsg",
            "generate_captions", "regenerate_captions", "inspect_graph", "compare_graphs",
            "load_json_file", "random_seed", "set_tsg_predicate", "set_vsg_predicate"} <= set(named)
    model = {name for name, fn in named.items() if fn.concurrency_id == "model"}
    assert model == {"lift_tsg", "generate_images", "regenerate_images", "detect", "lift_vsg",
                     "generate_captions", "regenerate_captions"}
    assert {named[name].concurrency_limit for name in model} == {3}
    assert named["parse"].concurrency_limit is None
    monkeypatch.setenv("SD3_CONCURRENCY", "none")
    with pytest.raises(ValueError, match="SD3_CONCURRENCY"):
        hosting.model_concurrency()
    assert hosting.gpu(len) is len  # no `spaces` package here: the shim changes nothing


def test_text_tab_runs_only_what_follows_each_edit(events):
    objects, relations, state, status = events.parse("a red cube to the left of a blue sphere")
    assert status == "Parsed: 2 objects, 1 relations." and state.sentence
    figure, objects3d, relations3d, state, _ = events.lift("tsg", objects, relations, state, STEPS, 0)
    assert len(objects3d) == 2 and state.lifted_from == state.source
    gallery, grids, checks, state, status = events.generate_images(objects3d, relations3d, state, 2, STEPS, 3.0, 0)
    assert len(gallery) == 2 and gallery[0][0].shape == (64, 64, 3) and "Image 2" in checks
    assert "from the sentence and the 3DSG" in status and grids == []  # token grids only when asked

    edited = set_predicate(relations, 1, "behind")  # edit the TSG: re-lift, then draw
    *_, state, status = events.regenerate_images(objects, edited, objects3d, relations3d, state, 1, STEPS, 3.0, 0)
    assert status.startswith("TSG edited: re-lifted") and "3DSG alone" in status
    assert any(r.predicate == "behind" for r in state.graph3d.relations)

    objects3d, relations3d = to_tables(state.graph3d)  # edit the 3DSG: draw only
    objects3d.loc[0, "x"] = -3.0
    out = events.regenerate_images(objects, edited, objects3d, relations3d, state, 1, STEPS, 3.0, 0)
    assert out[-1].startswith("3DSG edited;") and out[-2].graph3d.objects[0].position[0] == -3.0

    good = out[-2]
    objects3d.loc[1, "y"] = "up"  # a bad cell: named, and the caller's state is untouched
    with pytest.raises(gr.Error, match="object table row 2, column 'y'"):
        events.regenerate_images(objects, edited, objects3d, relations3d, good, 1, STEPS, 3.0, 0)
    assert good.graph3d.objects[0].position[0] == -3.0


@pytest.mark.parametrize("text, words", [
    ("", "text: empty"),
    ("a red cube " * 1000, "at most 1000"),
])
def test_bad_text_gets_a_clear_message(events, text, words):
    with pytest.raises(gr.Error, match=words):
        events.parse(text)


def test_relations_outside_the_nine_are_left_out_with_a_warning(events):
    with pytest.warns(UserWarning, match="outside the nine"):
        _, relations, *_ = events.parse("a cube holding a sphere")
    assert relations.empty


def test_nothing_is_drawn_before_a_lift_and_bad_settings_are_named(events):
    objects3d, relations3d = to_tables(SceneGraph("3dsg"))
    with pytest.raises(gr.Error, match="press 'Lift to 3D' first"):
        events.generate_images(objects3d, relations3d, TabState(), 1, STEPS, 3.0, 0)
    objects, relations = to_tables(SceneGraph("tsg", GRAPH3D.objects[:1]))
    with pytest.raises(gr.Error, match="seed: got -1"):
        events.lift("tsg", objects, relations, TabState(), STEPS, -1)


def test_steps_setting_zero_gives_each_arrow_its_own_default(events, monkeypatch):
    asked = []
    for name in ("lift_to_3d", "generate_image_tokens", "generate_caption"):
        def spy(*args, _real=getattr(events.engine, name), _name=name, **kwargs):
            asked.append((_name, kwargs["steps"]))
            return _real(*args, **kwargs)
        monkeypatch.setattr(events.engine, name, spy)
    objects, relations, state, _ = events.parse("a red cube to the left of a blue sphere")
    _, objects3d, relations3d, state, _ = events.lift("tsg", objects, relations, state, 0, 0)
    events.generate_images(objects3d, relations3d, state, 1, 0, 3.0, 0)
    state = replace(state, image=np.zeros((64, 64, 3), np.uint8))
    events.generate_captions(objects3d, relations3d, state, 1, 0, 0)
    assert asked == [("lift_to_3d", None), ("generate_image_tokens", None), ("generate_caption", None)]
    events.generate_captions(objects3d, relations3d, state, 1, 2, 0)
    assert asked[-1] == ("generate_caption", 2)


def test_image_tab_reads_an_image_and_captions_an_edited_vsg(events):
    boxes, objects, relations, state, status = events.detect(str(next(EXAMPLES.glob("*.png"))))
    assert boxes[0].shape[2] == 3 and status.startswith("Detected:")
    objects, relations = to_tables(SceneGraph("vsg", [o.__class__(o.id, o.label, o.attributes, o.box)
                                                      for o in GRAPH3D.objects], GRAPH3D.relations[:1]))
    objects3d, relations3d = to_tables(SceneGraph("3dsg"))
    boxes, figure, objects3d, relations3d, captions, state, status = events.regenerate_captions(
        objects, relations, objects3d, relations3d, state, 2, STEPS, 0)
    assert status.startswith("Lifted the VSG to 3D") and len(boxes[1]) == 2
    assert captions.startswith("1. “") and "\n2. “" in captions


def test_bad_uploads_get_a_clear_message(events, tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(gr.Error, match="not a readable image"):
        events.detect(str(text))
    huge = tmp_path / "huge.png"
    Image.new("L", (10_000, 5_000)).save(huge)  # 50 megapixels, refused from the header
    with pytest.raises(gr.Error, match="over the limit"):
        events.detect(str(huge))
    with pytest.raises(gr.Error, match="none uploaded"):
        events.detect(None)
    with pytest.raises(gr.Error, match="upload an image"):
        events.generate_captions(*to_tables(GRAPH3D), TabState(), 1, STEPS, 0)


def test_token_grids_show_the_codes_each_image_was_drawn_from(events):
    objects, relations, state, _ = events.parse("a red cube to the left of a blue sphere")
    _, objects3d, relations3d, state, _ = events.lift("tsg", objects, relations, state, STEPS, 0)
    gallery, grids, *_ = events.generate_images(objects3d, relations3d, state, 2, STEPS, 3.0, 0, True)
    assert len(grids) == 2 and grids[0][1] == "#1: VQ tokens"
    grid = grids[1][0]
    assert grid.shape == (8 * TOKEN_CELL_PX, 8 * TOKEN_CELL_PX, 3)
    # under the grid lines and numbers, each cell is the image's own 8 x 8 patch, enlarged
    assert np.array_equal(grid[-2, -2], gallery[1][0][-1, -1])
    tokens = events.engine.generate_image_tokens([state.graph3d] * 2, [state.sentence] * 2, STEPS, 3.0, 0)
    assert np.array_equal(events.engine.detokenize(tokens)[1], gallery[1][0])  # the same draw
    with pytest.raises(gr.Error, match="samples: got 99"):
        events.generate_images(objects3d, relations3d, state, 99, STEPS, 3.0, 0, True)


def test_an_example_runs_every_arrow_and_its_state_comes_back_from_the_tables(events):
    sentence = "a red cube to the left of a blue sphere"
    objects, relations, figure, objects3d, relations3d, gallery, checks, status = events.text_example(sentence)
    assert len(gallery) == DEFAULT_SAMPLES and "Image 4" in checks and status.startswith("Example at the default")
    state = events.example_state("tsg", sentence, objects, relations, objects3d, relations3d)
    assert state.sentence == sentence and state.graph3d == from_tables("3dsg", objects3d, relations3d)
    out = events.regenerate_images(objects, relations, objects3d, relations3d, state, 1, STEPS, 3.0, 0)
    assert out[-1].startswith("Nothing edited;") and "from the sentence and the 3DSG" in out[-1]

    with pytest.raises(gr.Error, match="text: empty"):
        events.text_example(" ")
    with pytest.raises(gr.Error, match="no object found"):
        events.text_example("hello there")


def test_an_image_example_is_captioned_or_says_why_not(events, monkeypatch):
    image = str(next(EXAMPLES.glob("*.png")))
    with pytest.raises(gr.Error, match="found no objects"):  # the two-step detector finds nothing here
        events.image_example(image)
    vsg = SceneGraph("vsg", [o.__class__(o.id, o.label, o.attributes, o.box) for o in GRAPH3D.objects],
                     GRAPH3D.relations[:1])
    monkeypatch.setattr(events.engine, "detect", lambda images, threshold=None: [SimpleNamespace(graph=vsg)])
    boxes, objects, relations, figure, objects3d, relations3d, captions, status = events.image_example(image)
    assert captions.startswith("1. “") and f"\n{DEFAULT_SAMPLES}. “" in captions
    state = events.example_state("vsg", image, objects, relations, objects3d, relations3d)
    assert state.image.shape == boxes[0].shape and state.lifted_from == vsg
