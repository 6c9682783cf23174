"""The words the text parser knows, as data: spatial phrases -> the nine predicates, and the small
word classes its rules ask about ("front" in "in front of", "picture" in "in the picture").

``to_predicate`` is the one phrase -> predicate mapping of the project; the parser and the bench's
peer (``bench/parser.py`` maps SceneGraphParser's relation phrases with it) both use it.
All words are lower case. Phrases and ``NON_SPATIAL_VERBS`` are words as written; the word classes
are matched against lemmas (nouns, verbs) or the written word (the rest), as ``reading`` says.
"""
from __future__ import annotations

import re

from ..vocab import ATTRIBUTE_KIND, PREDICATES, SYNONYMS

# predicate -> phrases meaning it, after ``normalise_phrase`` (articles and intensifiers dropped:
# "on the left-hand side of" -> "on left side of"). A phrase with a verb in front ("sitting on top
# of") is looked up by its longest listed suffix ("on top of"). "on top of" means "above", as VSD's
# annotators read it (37 of 42 times in VSDv1 val) and as the world's captions use it.
SPATIAL_PHRASES = {
    "on": ("on", "onto", "upon", "atop", "on surface of", "on edge of", "on corner of", "on end of",
           "on side of"),
    "in": ("in", "into", "inside", "inside of", "within", "through", "throughout", "in middle of",
           "in center of", "in centre of", "in corner of", "in between"),
    "under": ("under", "below", "beneath", "underneath", "underneath of", "down below"),
    "above": ("above", "over", "up above", "high above", "on top of", "top of", "at top of", "on top"),
    "behind": ("behind", "in back of", "at back of", "back of", "beyond", "at rear of", "in rear of"),
    "in front of": ("in front of", "front of", "at front of", "ahead of"),
    "to the left of": ("to left of", "left of", "on left of", "on left side of", "to left side of",
                       "at left of", "at left side of", "off to left of"),
    "to the right of": ("to right of", "right of", "on right of", "on right side of", "to right side of",
                        "at right of", "at right side of", "off to right of"),
    "next to": ("next to", "beside", "besides", "by", "near", "near to", "nearby", "close to",
                "adjacent to", "alongside", "alongside of", "along", "along side of", "against",
                "by side of", "at side of", "to side of", "between", "among", "amongst"),
}
PHRASE_TO_PREDICATE = {p: pred for pred, phrases in SPATIAL_PHRASES.items() for p in phrases}
assert set(SPATIAL_PHRASES) == set(PREDICATES)

# Words dropped before a phrase is looked up: articles, "hand" of "left-hand", intensifiers.
PHRASE_FILLERS = frozenset({"the", "a", "an", "hand", "far", "very", "just", "directly", "immediately",
                            "slightly", "partly", "partially", "all", "way", "both"})
# Verbs that make the preposition after them non-spatial ("interested in").
NON_SPATIAL_VERBS = frozenset({"interested", "involved", "engaged"})

# Nouns inside multiword prepositions ("in FRONT of", "on the LEFT side of"): with an "of" after
# them they are part of the phrase, not objects.
RELATIONAL_NOUNS = frozenset({"front", "back", "rear", "top", "bottom", "left", "right", "side",
                              "middle", "center", "centre", "edge", "corner", "surface", "end",
                              "underside", "inside", "outside"})
# Side words: before "of" always part of the expression ("a ball RIGHT of the cube").
SIDES = frozenset({"left", "right"})
# Adverbs and adjectives that head a preposition ("NEXT to", "LEFT of", "CLOSE to").
HEAD_WORDS = frozenset({"next", "close", "adjacent", "near", "left", "right", "ahead", "back",
                        "front", "top", "inside", "across", "away", "far", "out", "up", "apart",
                        "alongside", "off"})
# Nouns that say where in the picture, not what is there: "on the LEFT", "in the DISTANCE".
# After a preposition and without an "of" they become an attribute of the thing they place.
LOCATION_NOUNS = frozenset({"front", "back", "rear", "top", "bottom", "left", "right", "side", "middle",
                            "center", "centre", "distance", "forefront"})
# Nouns for the picture itself: "in the PICTURE", "the PHOTO shows ...": never objects of the scene
# in those two uses.
FRAME_NOUNS = frozenset({"picture", "image", "photo", "photograph", "pic", "scene", "shot", "frame",
                         "view", "snapshot"})
# Nouns for pictures of a thing, which are not where the thing is: "a PAINTING of a man on the wall".
REPRESENTATION_NOUNS = FRAME_NOUNS | {"painting", "drawing", "poster", "reflection", "statue",
                                      "model", "portrait", "sketch", "print", "figure", "toy"}
POSSESSIVE_PRONOUNS = frozenset({"his", "her", "its", "their", "my", "your", "our"})
# Verbs of seeing and showing: with an observer or a frame noun as subject, their object is the
# thing placed ("We can SEE a ball on the cube", "The picture SHOWS a ball on the cube").
PERCEPTION_VERBS = frozenset({"see", "show", "notice", "spot", "observe", "view", "find", "display",
                              "depict", "feature", "capture", "picture", "witness"})
OBSERVER_PRONOUNS = frozenset({"we", "you", "i", "one", "they", "someone", "anyone", "viewer"})
# Pronouns that refer back to an object of the text, and relative pronouns ("the ball THAT is ...").
REFERRING_PRONOUNS = frozenset({"it", "they", "them", "he", "she", "him", "her"})
# Pronouns that name an object of their own ("SOMETHING fuzzy is next to the dog").
NAMING_PRONOUNS = frozenset({"something", "someone", "somebody", "everything", "everyone"})
RELATIVE_PRONOUNS = frozenset({"that", "which", "who", "whom", "whose"})
DEFINITE_DETERMINERS = frozenset({"the", "this", "that", "these", "those"})
# Nouns that count, group or take a part of another ("a GROUP of people", "the TIP of the tree"):
# the object is the thing after "of".
COLLECTIVE_NOUNS = frozenset({"group", "pair", "couple", "bunch", "lot", "lots", "set", "pile",
                              "stack", "row", "line", "number", "herd", "flock", "crowd", "team",
                              "bundle", "cluster", "handful", "collection", "variety", "kind",
                              "type", "sort", "piece", "slice", "bit", "plenty", "series", "array",
                              "assortment",
                              # parts: "a SECTION of bridge in the water" places the bridge
                              "part", "portion", "section", "segment", "tip", "crest", "half",
                              "chunk", "patch", "strip"})
COLOUR_WORDS = frozenset({"red", "orange", "yellow", "green", "cyan", "blue", "purple", "white",
                          "black", "grey", "gray", "brown", "pink", "beige", "tan", "violet",
                          "silver", "gold", "golden"})
# Nouns that say what a thing is made of: "a red METAL ball" is a ball, metal being an attribute.
MATERIAL_NOUNS = frozenset({"metal", "rubber", "wood", "plastic", "glass", "stone", "steel",
                            "iron", "paper", "leather", "concrete", "marble", "brick", "wooden",
                            "ceramic", "clay", "cardboard"}
                           | {w for w, kind in ATTRIBUTE_KIND.items() if kind == "material"}
                           | {w for c, ws in SYNONYMS.items() if ATTRIBUTE_KIND.get(c) == "material"
                              for w in ws})
# Nouns in -ing that the model reads as participles when bare ("blue RAILING on top of the wall").
ING_NOUNS = frozenset({"building", "railing", "siding", "ceiling", "clothing", "painting", "drawing",
                       "writing", "lettering", "wrapping", "covering", "etching", "shelving",
                       "paving", "flooring", "fencing", "netting", "lighting", "awning", "frosting",
                       "icing", "topping", "filling", "stuffing", "bedding", "seating", "opening",
                       "crossing", "landing", "molding", "moulding", "carving", "wiring", "piping",
                       "tiling", "paneling", "panelling", "decking", "housing", "stitching",
                       "dressing", "planting", "clearing", "marking", "markings", "dwelling"})
# Verbs that state where their subject is about their object without a preposition.
VERB_PREDICATES = {"ride": "on", "straddle": "on", "top": "on", "overlook": "above"}
# Verbs kept as a relation of their own that also say where: a person wearing a shirt is in it,
# as in "a man IN a red shirt" (and as VSD's annotators read "wearing": 14 of 16 times in VSDv1 val).
VERB_IMPLIED_PREDICATES = {"wear": "in"}
# Verbs whose object is what a preposition after them places ("holding a cup IN his hand").
HOLDING_VERBS = frozenset({"hold", "have", "carry", "put", "place", "set", "wear", "keep", "grab",
                           "grip", "lay", "hang", "balance", "bring", "store", "stack", "leave",
                           "park", "mount", "rest", "stick", "drop", "throw", "toss", "fly"})
# Participles of posture: "a ball SITTING on", never a noun.
POSTURE_PARTICIPLES = frozenset({"sitting", "standing", "lying", "laying", "resting", "hanging",
                                 "leaning", "perched", "parked", "placed", "seated", "located",
                                 "positioned", "situated", "floating", "hovering"})
# Verbs after which a passive "by" places rather than names the agent ("a bike parked BY the wall").
POSITION_VERBS = frozenset({"park", "place", "put", "set", "locate", "position", "situate", "seat",
                            "stand", "sit", "leave", "lean", "store", "keep", "hang", "lay",
                            "station", "plant"})

_SPLIT = re.compile(r"[\s\-]+")


def normalise_phrase(phrase: str) -> tuple[str, ...]:
    """The words of ``phrase`` in lower case, hyphens split, ``PHRASE_FILLERS`` dropped."""
    return tuple(w for w in _SPLIT.split(phrase.lower().strip()) if w and w not in PHRASE_FILLERS)


def to_predicate(phrase: str) -> str | None:
    """The nine-predicate meaning of a relation phrase, or None when it is not one of them.

    The whole normalised phrase is looked up first, then ever shorter suffixes, so a verb or adverb
    in front is skipped: "parked behind" -> "behind", "sits on top of" -> "above". A phrase starting
    with a ``NON_SPATIAL_VERBS`` word ("dressed in") is never spatial.
    """
    words = normalise_phrase(phrase)
    if words and words[0] in NON_SPATIAL_VERBS:
        return None
    for k in range(len(words)):
        predicate = PHRASE_TO_PREDICATE.get(" ".join(words[k:]))
        if predicate is not None:
            return predicate
    return None
