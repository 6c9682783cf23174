"""Referring expressions: the words an object is named by, and captions with object slots."""
import numpy as np
import pytest

from sd3core.evaluate import relation_correctness
from sd3core.graph import SceneGraph, SGObject, SGRelation
from sd3core.referring import object_name, slot_caption
from sd3core.textparse import parse_texts
from sd3core.world.describe import describe

CUBES = SceneGraph("3dsg", [SGObject(0, "cube", ("red", "large", "shiny")),
                            SGObject(1, "cube", ("red", "small", "shiny")),
                            SGObject(2, "sphere", ("blue", "small", "matte")),
                            SGObject(3, "cone", ()),
                            SGObject(4, "cone", ()),
                            SGObject(5, "bucket", ("green", "large", "matte"))],
                   [SGRelation(0, "to the left of", 2), SGRelation(2, "behind", 1)])


@pytest.mark.parametrize("index, name", [
    (0, "large red cube"),   # colour does not tell it from the other red cube; size does
    (1, "small red cube"),
    (2, "blue sphere"),      # the only sphere: its colour
    (3, "cone"),             # a twin with nothing to say: its label
    (5, "green bucket"),
])
def test_object_names_tell_each_object_apart(index, name):
    assert object_name(CUBES, index) == name


def test_a_caption_gets_one_slot_per_mention_of_an_object():
    tsg = SceneGraph("tsg", [SGObject(0, "cube", ("large",)), SGObject(1, "sphere", ()),
                             SGObject(2, "cube", ("small",))],
                     [SGRelation(0, "to the left of", 1), SGRelation(1, "behind", 2)])
    text = "A big cube is left of a ball, and the ball can be seen behind the tiny block."
    assert slot_caption(text, tsg, CUBES) == [
        "a", "<o0>", "is", "left", "of", "a", "<o2>", ",", "and", "the", "<o2>", "can", "be", "seen",
        "behind", "the", "<o1>", "."]
    assert slot_caption("A cube is left of a ball.", tsg, CUBES) is None  # "cube": two of the TSG's
    unaligned = SceneGraph("tsg", [SGObject(0, "cone", ())], [])
    assert slot_caption("A cone.", unaligned, CUBES) is None               # two cones in the 3DSG


def test_world_captions_survive_slots_and_filled_names(tiny_world):
    """Every caption of the tiny world gets slots, and with each slot filled by ``object_name``
    the parsed relations still hold in the 3DSG."""
    from sd3core.world.build import load_split
    _, records = load_split(tiny_world, "train", ())
    captions, graphs = [], []
    for record in records:
        graph3d = SceneGraph.from_dict(record["graph3d"])
        rng = np.random.default_rng(0)
        for text, tsg in (describe(graph3d, rng) for _ in range(5)):
            words = slot_caption(text, tsg, graph3d)
            assert words is not None, text
            captions.append(" ".join(object_name(graph3d, int(w[2:-1])) if w.startswith("<o") else w
                                     for w in words))
            graphs.append(graph3d)
    held = [ok for tsg, g in zip(parse_texts(captions), graphs) for ok in relation_correctness(tsg, g)]
    assert held and np.mean(held) >= 0.9
