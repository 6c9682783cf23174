"""Referring expressions: which words name which object of a scene graph, and back.

- ``distinguishing``: the fewest attributes that tell an object from the others of its shape (the
  world's caption writer refers to objects this way);
- ``object_name``: the words the studio uses for an object of a 3DSG ("large red cube");
- ``slot_caption``: a caption with each mention of an object replaced by that object's slot token
  ``<oK>`` (K its index in the 3DSG), the form the text diffusion learns to write (Neural Baby Talk's
  slots: the network points at objects, their words come from the graph).
"""
from __future__ import annotations

import re
from itertools import combinations

from . import vocab
from .graph import SceneGraph, SGObject

ATTRIBUTE_ORDER = ("colour", "size", "material")
# Attribute sets tried when telling an object from others of its shape: fewest first, colour first.
ATTRIBUTE_SETS = tuple(c for r in (1, 2, 3) for c in combinations(ATTRIBUTE_ORDER, r))
# English adjective order: "a big shiny red ball", "a big red metal ball" (material nouns last).
ADJECTIVE_ORDER = ("size", "material", "colour", "noun material")
WORD = re.compile(r"[a-z]+|[.,]")
SLOT = "<o{}>"


def attribute_kinds(obj: SGObject) -> dict[str, str]:
    """Attribute kind ("colour", "size", "material") -> canonical word, for one object."""
    return {vocab.ATTRIBUTE_KIND[a]: a for a in obj.attributes if a in vocab.ATTRIBUTE_KIND}


def distinguishing(obj: SGObject, objects: tuple[SGObject, ...]) -> tuple[str, ...] | None:
    """The fewest attributes telling ``obj`` from the other ``objects`` of its shape, in kind order;
    ``()`` when its shape is unique, ``None`` when nothing tells it apart (a twin)."""
    own = attribute_kinds(obj)
    others = [attribute_kinds(o) for o in objects if o.id != obj.id and o.label == obj.label]
    for kinds in ATTRIBUTE_SETS if others else ((),):
        if all(k in own for k in kinds) and all(any(o.get(k) != own[k] for k in kinds) for o in others):
            return tuple(own[k] for k in kinds)
    return None


def object_name(graph: SceneGraph, index: int) -> str:
    """The words for object ``index`` of ``graph`` (its position in ``graph.objects``): its colour and
    the attributes that tell it from the graph's other objects of its shape (all it has for a twin),
    in English adjective order, then its label: "large red cube"."""
    obj = graph.objects[index]
    own = attribute_kinds(obj)
    told = distinguishing(obj, graph.objects)
    said = set(own.values()) if told is None else {*told, *(own[k] for k in ("colour",) if k in own)}
    adjectives = sorted(said, key=lambda a: ADJECTIVE_ORDER.index(vocab.ATTRIBUTE_KIND[a]))
    return " ".join([*adjectives, obj.label])


def mentions(words: list[str]) -> list[tuple[int, int, str, set[str]]]:
    """(start, end, canonical label, canonical attributes) of each run of attribute words ending in a
    shape word ("can" before "be" or "see" is the verb)."""
    out, start = [], 0
    for k, w in enumerate(words):
        canon = vocab.canonical_word(w)
        if canon in vocab.SHAPES and not (w == "can" and words[k + 1:k + 2] in (["be"], ["see"])):
            attrs = {vocab.canonical_word(a) for a in words[start:k]}
            out.append((start, k + 1, canon, attrs))
            start = k + 1
        elif canon not in vocab.ATTRIBUTE_KIND:
            start = k + 1
    return out


def slot_caption(text: str, tsg: SceneGraph, graph3d: SceneGraph) -> list[str] | None:
    """The words of ``text`` (lower case, . and , kept) with each mention of an object replaced by
    ``<oK>``, K the index in ``graph3d.objects`` of the object the caption's gold ``tsg`` says it is;
    None when a mention does not name exactly one object of ``tsg``, or a TSG object not exactly
    one of ``graph3d`` (``lift_data.align_tsg``)."""
    from .lift_data import align_tsg
    ids = align_tsg(tsg, graph3d)
    if ids is None:
        return None
    index = {o.id: k for k, o in enumerate(graph3d.objects)}
    words = WORD.findall(text.lower())
    out, last = [], 0
    for start, end, label, attrs in mentions(words):
        fits = [o.id for o in tsg.objects if o.label == label and attrs <= set(o.attributes)]
        if len(fits) != 1:
            return None
        out += words[last:start] + [SLOT.format(index[ids[fits[0]]])]
        last = end
    return out + words[last:]
