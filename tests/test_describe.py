"""The caption writer: every caption is true of its 3DSG, its TSG is canonical, and captions vary."""
import re

import numpy as np
import pytest

from sd3core import vocab
from sd3core.graph import SceneGraph, SGObject, SGRelation
from sd3core.world.describe import PHRASES, describe, describe_many


def graph(objects, triples):
    return SceneGraph(kind="3dsg", objects=tuple(SGObject(i, *o) for i, o in enumerate(objects)),
                      relations=tuple(SGRelation(s, p, o) for s, p, o in triples))


# A ball on a cube (so also above it, the cube under it), a cone in a bucket; all nine predicates.
FOUR = graph([("cube", ("red", "large", "shiny")), ("sphere", ("blue", "small", "matte")),
              ("bucket", ("green", "large", "matte")), ("cone", ("orange", "small", "shiny"))],
             [(1, "on", 0), (1, "above", 0), (0, "under", 1), (3, "in", 2),
              (0, "to the left of", 2), (2, "to the right of", 0), (1, "to the left of", 2),
              (2, "to the right of", 1), (0, "in front of", 2), (2, "behind", 0),
              (0, "next to", 2), (2, "next to", 0), (0, "to the left of", 3), (3, "to the right of", 0)])
# Two identical cubes (twins), two cubes told apart only by material, a sphere next to all of them.
TWINS = graph([("cube", ("red", "large", "shiny")), ("cube", ("red", "large", "shiny")),
               ("cube", ("blue", "small", "matte")), ("cube", ("blue", "small", "shiny")),
               ("sphere", ("white", "small", "matte"))],
              [(4, "next to", i) for i in range(4)] + [(i, "next to", 4) for i in range(4)]
              + [(0, "behind", 2), (2, "in front of", 0), (1, "to the left of", 3),
                 (3, "to the right of", 1), (2, "to the left of", 3), (3, "to the right of", 2)])
ALONE = graph([("sphere", ("yellow", "small", "matte"))], [])

def to_3d(tsg, g3d):
    """TSG id -> 3DSG id, matching label and attributes; asserts the match is unique."""
    out = {}
    for o in tsg.objects:
        hits = [p.id for p in g3d.objects
                if p.label == o.label and set(o.attributes) <= set(p.attributes)]
        assert len(hits) == 1, f"{o} refers to {len(hits)} objects"
        out[o.id] = hits[0]
    return out


def check(caption, tsg, g3d):
    """The caption is well formed and everything its TSG states is true of ``g3d``."""
    assert tsg.kind == "tsg"
    assert caption[0].isupper() and caption.endswith(".") and "  " not in caption
    assert not re.search(r"\b(a|an|the) (a|an|the)\b", caption, re.I)
    assert not re.search(r"\ban [^aeiou]|\ba [aeiou]", caption, re.I), caption
    assert [o.id for o in tsg.objects] == list(range(len(tsg.objects)))
    for o in tsg.objects:
        assert o.label in vocab.SHAPES
        kinds = [vocab.ATTRIBUTE_KIND[a] for a in o.attributes]
        assert kinds == sorted(kinds, key=("colour", "size", "material").index)
    truth = {(r.subject, r.predicate, r.object) for r in g3d.relations}
    ids = to_3d(tsg, g3d) if tsg.relations else {}
    for r in tsg.relations:
        assert r.predicate in vocab.PREDICATES and r.phrase in caption.lower(), (caption, r)
        assert (ids[r.subject], r.predicate, ids[r.object]) in truth, (caption, r)


def shape(caption):
    """The caption with nouns as N, attributes dropped and "an" as "a": its sentence shape."""
    out = []
    for w in re.findall(r"\w+|[.,]", caption.lower()):
        canon = vocab.canonical_word(w)
        if canon not in vocab.ATTRIBUTE_KIND:
            out.append("N" if canon in vocab.SHAPES else "a" if w == "an" else w)
    return " ".join(out)


def test_deterministic_given_seed():
    a = [describe(FOUR, np.random.default_rng(7)) for _ in range(3)]
    b = [describe(FOUR, np.random.default_rng(7)) for _ in range(3)]
    assert a == b
    c, d = (describe_many(FOUR, np.random.default_rng(3), 10) for _ in range(2))
    assert c == d


@pytest.mark.parametrize("g", [FOUR, TWINS], ids=["four", "twins"])
def test_every_caption_is_true_and_canonical(g):
    rng = np.random.default_rng(0)
    for _ in range(300):
        check(*describe(g, rng), g)


def test_variety_of_shapes_predicates_and_order():
    captions = describe_many(FOUR, np.random.default_rng(1), 300)
    assert len({c for c, _ in captions}) == 300
    shapes = {shape(c) for c, _ in captions}
    assert len(shapes) >= 30, shapes
    used = {r.predicate for _, t in captions for r in t.relations}
    assert used == {r.predicate for r in FOUR.relations}
    phrases = {r.phrase for _, t in captions for r in t.relations}
    assert len(phrases) >= 25
    # inverted order: the caption opens with the relation's wording, the subject comes after
    assert any(c.lower().startswith(t.relations[0].phrase) for c, t in captions if t.relations)
    # a later clause refers back with "it", and some captions state all three relations
    assert any(re.search(r"\bit\b", c, re.I) for c, _ in captions)
    assert {len(t.relations) for _, t in captions} == {1, 2, 3}
    # synonyms appear, canonical words are the most common
    text = " ".join(c.lower() for c, _ in captions)
    assert 0 < text.count(" ball") < text.count(" sphere")


def test_n_relations_is_honoured_and_capped():
    rng = np.random.default_rng(2)
    for n in (1, 2, 3):
        for _ in range(20):
            caption, tsg = describe(FOUR, rng, n_relations=n)
            assert len(tsg.relations) == n
            check(caption, tsg, FOUR)
    two = graph([("cube", ("red", "large", "shiny")), ("cone", ("red", "small", "matte"))],
                [(0, "to the left of", 1), (1, "to the right of", 0)])
    # the same pair is never stated twice ("A is left of B and B is right of A")
    assert all(len(describe(two, rng, n_relations=3)[1].relations) == 1 for _ in range(20))
    with pytest.raises(ValueError, match="n_relations"):
        describe(FOUR, rng, n_relations=-1)


def test_twins_are_never_in_relations_and_near_twins_get_material():
    rng = np.random.default_rng(4)
    for _ in range(300):
        caption, tsg = describe(TWINS, rng)
        ids = to_3d(tsg, TWINS)
        assert not {ids[r.subject] for r in tsg.relations} & {0, 1}
        assert not {ids[r.object] for r in tsg.relations} & {0, 1}
        for o in tsg.objects:
            if ids[o.id] in (2, 3):
                assert {"matte", "shiny"} & set(o.attributes), caption


def test_lone_object_and_scene_without_usable_relations():
    rng = np.random.default_rng(5)
    captions = describe_many(ALONE, rng, 20)
    assert len(captions) == 20 and len({c for c, _ in captions}) > 5
    for caption, tsg in captions:
        check(caption, tsg, ALONE)
        assert tsg.relations == () and len(tsg.objects) == 1 and tsg.objects[0].label == "sphere"
        assert re.search(r"\b(sphere|ball|orb)\b", caption)
    caption, tsg = describe(FOUR, rng, n_relations=0)
    assert tsg.relations == () and len(tsg.objects) == 1
    twins_only = graph([("cone", ("red", "large", "shiny"))] * 2, [(0, "next to", 1), (1, "next to", 0)])
    assert describe(twins_only, rng)[1].relations == ()


def test_wordings_are_the_nine_predicates_only():
    assert set(PHRASES) == set(vocab.PREDICATES)
    bad = SceneGraph(kind="tsg", objects=(SGObject(0, "cube"), SGObject(1, "sphere")),
                     relations=(SGRelation(0, "near", 1),))
    with pytest.raises(ValueError, match="near"):
        describe(bad, np.random.default_rng(0))
    with pytest.raises(ValueError, match="hexagon"):
        describe(graph([("hexagon", ())], []), np.random.default_rng(0))
