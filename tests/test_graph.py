"""SceneGraph: checks at construction, JSON, networkx, table rows, sg2im and VSD readers."""
import copy
import json
import math
import re
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sd3core.graph import (KINDS, MAX_LABEL_CHARS, MAX_OBJECTS, MAX_RELATIONS, SceneGraph,
                           SGObject, SGRelation)
from sd3core.graph_io import (OBJECT_COLUMNS, RELATION_COLUMNS, from_rows, from_sg2im,
                              from_vsd_record, to_rows)
from sd3core.vocab import PREDICATES

VSD_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "vsd"
FAST = settings(max_examples=100, deadline=None)


def raises(message: str):
    """``pytest.raises(ValueError)`` whose message contains ``message`` verbatim."""
    return pytest.raises(ValueError, match=re.escape(message))


def example() -> SceneGraph:
    """The DESIGN.md example, plus a second relation on the same pair."""
    return SceneGraph("3dsg", [
        SGObject(0, "cube", ["red", "large"], [0.10, 0.42, 0.35, 0.80], [-0.6, 0.5, 4.2], [1, 1, 1]),
        SGObject(1, "sphere", ["blue"]),
    ], [SGRelation(0, "to the left of", 1, "left of"), SGRelation(0, "next to", 1)])


def example_dict() -> dict:
    return example().to_dict()


# --- checks at construction ---

def test_design_example_reads_and_coerces():
    g = example()
    assert g.objects[0].attributes == ("red", "large")
    assert g.objects[0].size == (1.0, 1.0, 1.0) and isinstance(g.objects[0].size[0], float)
    assert isinstance(g.objects, tuple) and isinstance(g.relations, tuple)
    assert g.objects[1].box is None


def test_integral_float_id_and_array_box_are_accepted():
    o = SGObject(2.0, "cube", box=np.array([0.1, 0.2, 0.3, 0.4], dtype=np.float32))
    assert o.id == 2 and isinstance(o.id, int)
    assert o.box == pytest.approx((0.1, 0.2, 0.3, 0.4)) and isinstance(o.box, tuple)


def test_bool_id_is_rejected():
    with raises("id: expected an integer id, got True"):
        SGObject(True, "cube")


def test_non_integral_id_is_rejected():
    with raises("subject: expected an integer id, got 1.5"):
        SGRelation(1.5, "on", 2)


def test_unknown_predicate_in_vsg_names_relation_and_field():
    objects = [SGObject(i, "cube") for i in range(2)]
    relations = [SGRelation(0, "on", 1)] * 3 + [SGRelation(0, "beside", 1)]
    with raises("relations[3].predicate: 'beside' is not one of the nine predicates (on, to the left"):
        SceneGraph("vsg", objects, relations)


def test_free_predicate_kept_only_in_tsg():
    g = SceneGraph("tsg", [SGObject(0, "man"), SGObject(1, "cup")],
                   [SGRelation(0, "holding", 1, "holding"), SGRelation(1, "next to", 0)])
    assert g.spatial_relations() == (g.relations[1],)
    with raises("relations[0].predicate: 'holding'"):
        SceneGraph("3dsg", g.objects, g.relations)


def test_duplicate_id():
    with raises("objects[2].id: duplicate id 5"):
        SceneGraph("tsg", [SGObject(5, "a"), SGObject(6, "b"), SGObject(5, "c")])


def test_relation_to_missing_object():
    with raises("relations[0].object: no object with id 7"):
        SceneGraph("tsg", [SGObject(0, "a")], [SGRelation(0, "on", 7)])


def test_relation_from_missing_subject():
    with raises("relations[0].subject: no object with id 3"):
        SceneGraph("tsg", [SGObject(0, "a")], [SGRelation(3, "on", 0)])


def test_relation_to_itself():
    with raises("object: 4 is also the subject"):
        SGRelation(4, "on", 4)


def test_box_with_x1_left_of_x0():
    with raises("objects[1].box: x1 0.2 < x0 0.5 (box must be [x0, y0, x1, y1] in 0-1)"):
        SceneGraph.from_dict({"kind": "vsg", "objects": [
            {"id": 0, "label": "a"}, {"id": 1, "label": "b", "box": [0.5, 0.1, 0.2, 0.3]}]})


def test_box_with_y1_above_y0():
    with raises("box: y1 0.1 < y0 0.3"):
        SGObject(0, "a", box=(0.0, 0.3, 1.0, 0.1))


def test_box_outside_unit_square():
    with raises("box: y1 1.5 is outside 0-1"):
        SGObject(0, "a", box=(0.0, 0.3, 1.0, 1.5))


def test_box_of_wrong_length():
    with raises("box: expected a list of 4 numbers, got [0.1, 0.2]"):
        SGObject(0, "a", box=[0.1, 0.2])


@pytest.mark.parametrize("name, value", [("box", [0.1, math.nan, 0.3, 0.4]),
                                         ("position", [0.0, math.inf, 1.0]),
                                         ("size", [1.0, 1.0, -math.inf])])
def test_non_finite_geometry(name, value):
    index = next(i for i, v in enumerate(value) if not math.isfinite(v))
    with raises(f"objects[0].{name}[{index}]: expected a finite number"):
        SceneGraph.from_dict({"kind": "3dsg", "objects": [{"id": 0, "label": "a", name: value}]})


def test_position_needs_three_numbers():
    with raises("position: expected a list of 3 numbers"):
        SGObject(0, "a", position=(1.0, 2.0))


def test_position_number_not_text():
    with raises("position[1]: expected a number, got '2'"):
        SGObject(0, "a", position=(1.0, "2", 3.0))


def test_negative_size():
    with raises("size: h -0.5 is negative"):
        SGObject(0, "a", size=(1.0, -0.5, 1.0))


def test_too_many_objects():
    with raises(f"objects: {MAX_OBJECTS + 1} items, at most {MAX_OBJECTS} allowed"):
        SceneGraph("tsg", [SGObject(i, "a") for i in range(MAX_OBJECTS + 1)])


def test_too_many_relations():
    relations = [SGRelation(0, "on", 1)] * (MAX_RELATIONS + 1)
    with raises(f"relations: {MAX_RELATIONS + 1} items, at most {MAX_RELATIONS} allowed"):
        SceneGraph("tsg", [SGObject(0, "a"), SGObject(1, "b")], relations)


def test_empty_label():
    with raises("objects[0].label: expected a non-empty string, got ''"):
        SceneGraph.from_dict({"kind": "tsg", "objects": [{"id": 0, "label": ""}]})


def test_label_too_long():
    with raises(f"label: {MAX_LABEL_CHARS + 1} characters, at most {MAX_LABEL_CHARS} allowed"):
        SGObject(0, "a" * (MAX_LABEL_CHARS + 1))


def test_label_with_surrounding_whitespace():
    with raises("label: ' cube' has leading or trailing whitespace"):
        SGObject(0, " cube")


def test_attribute_too_long():
    with raises(f"attributes[1]: {MAX_LABEL_CHARS + 1} characters"):
        SGObject(0, "a", ("red", "b" * (MAX_LABEL_CHARS + 1)))


def test_attribute_with_comma():
    with raises("attributes[0]: 'red, big' contains a comma"):
        SGObject(0, "a", ("red, big",))


def test_attributes_as_one_string():
    with raises("attributes: expected a list of strings, got 'red'"):
        SGObject(0, "a", "red")


def test_unknown_kind():
    with raises("kind: expected one of tsg, vsg, 3dsg, got '2dsg'"):
        SceneGraph("2dsg")


def test_objects_must_be_sgobjects():
    with raises("objects[0]: expected an SGObject, got {'id': 0"):
        SceneGraph("tsg", [{"id": 0, "label": "a"}])


# --- JSON ---

def test_json_matches_design_format():
    d = json.loads(example().to_json())
    assert d == {"kind": "3dsg",
                 "objects": [{"id": 0, "label": "cube", "attributes": ["red", "large"],
                              "box": [0.10, 0.42, 0.35, 0.80], "position": [-0.6, 0.5, 4.2],
                              "size": [1.0, 1.0, 1.0]},
                             {"id": 1, "label": "sphere", "attributes": ["blue"]}],
                 "relations": [{"subject": 0, "predicate": "to the left of", "object": 1,
                                "phrase": "left of"},
                               {"subject": 0, "predicate": "next to", "object": 1}]}


def test_json_round_trip():
    g = example()
    assert SceneGraph.from_json(g.to_json(indent=2)) == g
    assert SceneGraph.from_dict(g.to_dict()) == g


def test_from_dict_missing_label():
    d = example_dict()
    del d["objects"][1]["label"]
    with raises("objects[1]: missing key(s) 'label'"):
        SceneGraph.from_dict(d)


def test_from_dict_unknown_keys_are_named():
    d = example_dict()
    d["relations"][0]["confidence"] = 0.9
    with raises("relations[0]: unknown key(s) 'confidence'"):
        SceneGraph.from_dict(d)


def test_from_dict_wrong_type():
    d = example_dict()
    d["objects"][0]["label"] = 3
    with raises("objects[0].label: expected a string, got 3"):
        SceneGraph.from_dict(d)


def test_from_dict_objects_not_a_list():
    with raises("objects: expected a list, got {}"):
        SceneGraph.from_dict({"kind": "tsg", "objects": {}})


def test_from_dict_not_a_dict():
    with raises("scene graph: expected a JSON object (dict), got ['tsg']"):
        SceneGraph.from_dict(["tsg"])


def test_from_json_bad_text():
    with raises("expected a JSON document"):
        SceneGraph.from_json("{kind: tsg}")


# --- networkx ---

def test_networkx_layout():
    g = example().to_networkx()
    assert isinstance(g, nx.DiGraph) and g.graph == {"kind": "3dsg"}
    assert list(g.nodes) == [0, 1] and g.nodes[1]["label"] == "sphere"
    assert [r["predicate"] for r in g.edges[0, 1]["relations"]] == ["to the left of", "next to"]


def test_networkx_round_trip_keeps_relation_order():
    g = SceneGraph("tsg", [SGObject(i, "a") for i in range(3)],
                   [SGRelation(1, "on", 2), SGRelation(0, "in", 1), SGRelation(1, "under", 2)])
    assert SceneGraph.from_networkx(g.to_networkx()) == g


def test_from_networkx_bad_indices():
    g = example().to_networkx()
    g.edges[0, 1]["relations"][1]["index"] = 5
    with raises("indices must be 0..1 once each, got [0, 5]"):
        SceneGraph.from_networkx(g)


def test_from_networkx_names_the_node():
    g = example().to_networkx()
    g.nodes[1]["box"] = (0.5, 0.0, 0.2, 1.0)
    with raises("node 1, box: x1 0.2 < x0 0.5"):
        SceneGraph.from_networkx(g)


def test_from_networkx_rejects_multigraph():
    with raises("expected a networkx DiGraph, got MultiDiGraph"):
        SceneGraph.from_networkx(nx.MultiDiGraph(kind="tsg"))


# --- table rows ---

def test_rows_layout():
    objects, relations = to_rows(example())
    assert len(objects[0]) == len(OBJECT_COLUMNS) and len(relations[0]) == len(RELATION_COLUMNS)
    assert objects[0][:4] == [0, "cube", "red, large", 0.10]
    assert objects[1][3:] == [""] * 10
    assert relations[1] == [0, "next to", 1, ""]


def test_rows_round_trip_through_text_cells():
    g = example()
    objects, relations = to_rows(g)
    as_text = [[f" {c} " for c in row] for row in objects]
    assert from_rows("3dsg", as_text, [[str(c) for c in row] for row in relations]) == g


def test_rows_skip_empty_rows_and_pad_short_ones():
    g = from_rows("tsg", [["", None, ""], [0, "cube"], [], [1, "ball", "red,, shiny"]],
                  [[0, "on", "1"]])
    assert [o.label for o in g.objects] == ["cube", "ball"]
    assert g.objects[1].attributes == ("red", "shiny")
    assert g.relations == (SGRelation(0, "on", 1),)


def test_rows_bad_number_names_row_and_column():
    rows = [[0, "a"], [1, "b"], [2, "c", "", "abc", 0.1, 0.2, 0.3]]
    with raises("object table row 3, column 'x0': 'abc' is not a number"):
        from_rows("vsg", rows, [])


def test_rows_partial_box_names_row():
    with raises("object table row 1, columns x0, y0, x1, y1: fill all or none of the box, "
                "got y1 empty"):
        from_rows("vsg", [[0, "a", "", 0.1, 0.2, 0.3, ""]], [])


def test_rows_partial_size_names_row():
    with raises("object table row 2, columns w, h, d: fill all or none of the size, got d empty"):
        from_rows("3dsg", [[0, "a"], [1, "b", "", "", "", "", "", 0, 0, 1, 1, 1, ""]], [])


def test_rows_bad_id_names_row_and_column():
    with raises("relation table row 2, column 'object': 'x' is not an integer id"):
        from_rows("tsg", [[0, "a"], [1, "b"]], [[0, "on", 1], [1, "on", "x"]])


def test_rows_duplicate_id_names_row():
    with raises("object table row 4, column 'id': duplicate id 1"):
        from_rows("tsg", [[0, "a"], [1, "b"], [], [1, "c"]], [])


def test_rows_missing_object_names_row():
    with raises("relation table row 1, column 'subject': no object with id 9"):
        from_rows("tsg", [[0, "a"]], [[9, "on", 0]])


def test_rows_box_error_names_row():
    with raises("object table row 1, box: x1 0.1 < x0 0.3"):
        from_rows("vsg", [[0, "a", "", 0.3, 0.0, 0.1, 1.0]], [])


def test_rows_too_many_cells():
    with raises("relation table row 1: expected a list of at most 4 cells"):
        from_rows("tsg", [], [[0, "on", 1, "", "extra"]])


# --- sg2im ---

def test_sg2im_maps_predicates_and_keeps_words():
    g = from_sg2im({"objects": ["cube", "sphere", "cone"],
                    "relationships": [[0, "left of", 1], [2, "below", 1], [1, "on top of", 2]]})
    assert g.kind == "tsg" and [o.label for o in g.objects] == ["cube", "sphere", "cone"]
    assert [(r.predicate, r.phrase) for r in g.relations] == [
        ("to the left of", "left of"), ("under", "below"), ("on", "on top of")]


def test_sg2im_unknown_predicate():
    with raises("relationships[1]: predicate 'surrounding' is not one of the known phrases"):
        from_sg2im({"objects": ["a", "b"], "relationships": [[0, "on", 1], [0, "surrounding", 1]]})


def test_sg2im_index_out_of_range():
    with raises("relationships[0]: object index 2 is out of range for 2 objects"):
        from_sg2im({"objects": ["a", "b"], "relationships": [[0, "on", 2]]})


def test_sg2im_object_not_a_name():
    with raises("objects[1], label: expected a string, got 7"):
        from_sg2im({"objects": ["a", 7]})


# --- VSD ---

def vsd_record(triples):
    return {"img_id": "1", "triple_list": triples, "captions": ["x"]}


def test_vsd_boxes_become_x0_y0_x1_y1_in_unit_range():
    g = from_vsd_record(vsd_record([{"s": "window", "o": "house", "p": "on",
                                     "s_bbox": [20, 40, 10, 30], "o_bbox": [0, 100, 0, 200]}]),
                        width=400, height=200)
    assert g.kind == "vsg"
    assert g.objects[0].box == (10 / 400, 20 / 200, 30 / 400, 40 / 200)
    assert g.objects[1].box == (0.0, 0.0, 0.5, 0.5)
    assert g.relations == (SGRelation(0, "on", 1, "on"),)


def test_vsd_without_image_size_divides_by_largest_coordinate():
    g = from_vsd_record(vsd_record([{"s": "cat", "o": "mat", "p": "on",
                                     "s_bbox": [0, 50, 100, 200], "o_bbox": [40, 80, 0, 100]}]))
    assert g.objects[0].box == (0.5, 0.0, 1.0, 0.25)


def test_vsd_shares_objects_between_triples():
    a, b = [0, 10, 0, 10], [20, 30, 20, 30]
    g = from_vsd_record(vsd_record([{"s": "cup", "o": "table", "p": "on", "s_bbox": a, "o_bbox": b},
                                    {"s": "table", "o": "cup", "p": "under", "s_bbox": b,
                                     "o_bbox": a}]))
    assert len(g.objects) == 2
    assert [(r.subject, r.object) for r in g.relations] == [(0, 1), (1, 0)]


def test_vsd_bad_predicate():
    with raises("triple_list[0].p: 'beside' is not one of the nine predicates"):
        from_vsd_record(vsd_record([{"s": "a", "o": "b", "p": "beside", "s_bbox": [0, 1, 0, 1],
                                     "o_bbox": [0, 1, 0, 1]}]))


def test_vsd_bad_box():
    with raises("triple_list[0].o_bbox: expected [y0, y1, x0, x1] with y0 <= y1"):
        from_vsd_record(vsd_record([{"s": "a", "o": "b", "p": "on", "s_bbox": [0, 1, 0, 1],
                                     "o_bbox": [5, 1, 0, 1]}]))


def test_vsd_needs_both_width_and_height():
    with raises("height: expected a positive number of pixels"):
        from_vsd_record(vsd_record([]), width=640)


@pytest.mark.parametrize("name", ["VSDv1_val.json", "VSDv2_val.json"])
def test_vsd_reads_every_record(name):
    path = VSD_DIR / name
    if not path.exists():
        pytest.skip(f"{path} not present")
    records = json.loads(path.read_text())
    for record in records:
        g = from_vsd_record(record)
        assert g.kind == "vsg" and len(g.relations) == len(record["triple_list"])
        assert SceneGraph.from_json(g.to_json()) == g


# --- properties ---

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)
WORDS = TEXT.map(str.strip).filter(bool)
unit = st.floats(0, 1)


@st.composite
def graphs(draw) -> SceneGraph:
    """Random valid graphs of every kind, geometry present or absent per object."""
    kind = draw(st.sampled_from(KINDS))
    ids = draw(st.lists(st.integers(-10**6, 10**6), unique=True, max_size=8))
    objects = []
    for i in ids:
        xs, ys = sorted(draw(st.tuples(unit, unit))), sorted(draw(st.tuples(unit, unit)))
        box = draw(st.none() | st.just((xs[0], ys[0], xs[1], ys[1])))
        position = draw(st.none() | st.tuples(*[st.floats(-1e6, 1e6)] * 3))
        size = draw(st.none() | st.tuples(*[st.floats(0, 1e3)] * 3))
        attributes = draw(st.lists(WORDS.filter(lambda w: "," not in w), max_size=3))
        objects.append(SGObject(i, draw(WORDS), attributes, box, position, size))
    predicates = st.sampled_from(PREDICATES) | (WORDS if kind == "tsg" else st.nothing())
    relations = []
    if len(ids) >= 2:
        for _ in range(draw(st.integers(0, 10))):
            s, o = draw(st.lists(st.sampled_from(ids), min_size=2, max_size=2, unique=True))
            relations.append(SGRelation(s, draw(predicates), o, draw(st.just("") | WORDS)))
    return SceneGraph(kind, objects, relations)


@FAST
@given(graphs())
def test_property_round_trips_are_exact(g):
    assert SceneGraph.from_json(g.to_json()) == g
    assert SceneGraph.from_networkx(g.to_networkx()) == g
    assert from_rows(g.kind, *to_rows(g)) == g
    objects, relations = to_rows(g)
    assert from_rows(g.kind, [[str(c) for c in r] for r in objects],
                     [[str(c) for c in r] for r in relations]) == g


def paths(value, prefix=()):
    """Every (path, value) inside nested dicts and lists."""
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, v in items:
        yield prefix + (key,), v
        if isinstance(v, (dict, list)):
            yield from paths(v, prefix + (key,))


# Values that no field of the format accepts.
JUNK = st.one_of(st.booleans(), st.sampled_from([math.nan, math.inf, -math.inf]),
                 st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
                 st.lists(st.none(), min_size=1, max_size=2))
REQUIRED = {"kind", "id", "label", "subject", "predicate", "object"}


@FAST
@given(graphs(), st.data())
def test_property_bad_input_never_half_builds_a_graph(g, data):
    d = copy.deepcopy(g.to_dict())
    targets = list(paths(d))
    how = data.draw(st.sampled_from(["replace", "delete", "add key"]))
    if how == "delete":
        targets = [(p, v) for p, v in targets if p[-1] in REQUIRED]
    elif how == "add key":
        targets = [((*p, "extra"), v) for p, v in targets if isinstance(v, dict)] + [(("extra",), d)]
    path, _ = data.draw(st.sampled_from(targets))
    parent = d
    for key in path[:-1]:
        parent = parent[key]
    if how == "delete":
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(JUNK)
    with pytest.raises(ValueError):
        SceneGraph.from_dict(d)


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.sampled_from(["kind", "objects", "relations", "id", "label",
                                                       "box", "subject", "predicate", "object"]),
                                      inner, max_size=4),
                    max_leaves=20)


@FAST
@given(JSON)
def test_property_any_json_gives_a_graph_or_value_error(value):
    try:
        assert isinstance(SceneGraph.from_dict(value), SceneGraph)
    except ValueError:
        pass
