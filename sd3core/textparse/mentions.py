"""Which words of a parsed ``Doc`` name objects (mentions), with their labels and attributes; the
first step of ``reading`` (see its docstring for the rules).
"""
from __future__ import annotations

from dataclasses import dataclass

from spacy.tokens import Token

from . import lexicon as lx

RECIPROCALS = ("other", "another", "eachother")  # "each other", "one another"
# Words standing for a noun said before them: "a blue ONE", "a zebra left of four OTHERS".
STAND_FOR_NOUNS = ("one", "ones", "others")
# Where a number with a determiner names a thing rather than counts one.
NUMBER_OBJECT_DEPS = ("nsubj", "nsubjpass", "pobj", "dobj", "attr", "ROOT")


@dataclass
class Mention:
    """A noun phrase naming an object: ``token`` is its head's index in the Doc.

    ``label`` is None for "one" and "others" (``STAND_FOR_NOUNS``: "a blue one", "left of the
    others": the label of the mention before); a pronoun's is
    the pronoun, used when it has nothing to refer back to.
    ``determiner``: the lower-case determiner ("the", "a", "another"), "" when none.
    """
    token: int
    label: str | None
    attributes: list[str]
    determiner: str = ""
    pronoun: bool = False



def of_object(tok: Token) -> Token | None:
    """The noun after "of" below ``tok`` ("group OF people" -> people), if any."""
    for c in tok.children:
        if c.dep_ == "prep" and c.lower_ == "of":
            for g in c.children:
                if g.dep_ == "pobj" and g.pos_ in ("NOUN", "PROPN"):
                    return g
    return None


def is_nominal(tok: Token) -> bool:
    """A noun, a referring pronoun, "one" standing for a noun ("a blue one"), or a number with a
    determiner named as a thing ("the eight")."""
    if tok.pos_ in ("NOUN", "PROPN") or tok.lower_ in lx.NAMING_PRONOUNS:
        return True
    if tok.lower_ in lx.REFERRING_PRONOUNS and tok.pos_ == "PRON":
        return True
    if tok.pos_ == "NUM" and tok.dep_ in NUMBER_OBJECT_DEPS and any(
            c.dep_ == "det" for c in tok.children):
        return True  # a number named as a thing: "THE EIGHT is right of the seven", "a 45"
    return tok.lower_ == "one" and any(c.dep_ in ("det", "amod") for c in tok.children)


def in_phrase(tok: Token) -> bool:
    """A relational noun inside a multiword preposition: "in FRONT of", "to the LEFT of", and a
    side word before "of" anywhere ("a ball RIGHT of the cube")."""
    if not any(c.dep_ == "prep" and c.lower_ in ("of", "to") for c in tok.children):
        return False
    return (tok.lemma_.lower() in lx.RELATIONAL_NOUNS and tok.dep_ == "pobj") or tok.lower_ in lx.SIDES


def placement(tok: Token) -> str | None:
    """For a noun after a preposition that places rather than names ("on the LEFT", "in YELLOW",
    "in the PICTURE"): "place", "colour" or "frame"; None for an ordinary object."""
    if tok.dep_ != "pobj":
        return None
    word = tok.lemma_.lower()
    if word in lx.LOCATION_NOUNS and not in_phrase(tok) and not any(
            c.dep_ in ("compound", "poss") for c in tok.children):  # "the mountain TOP" is a thing
        return "place"
    if tok.lower_ in lx.COLOUR_WORDS and not any(c.dep_ in ("det", "amod") for c in tok.children):
        return "colour"
    if word in lx.FRAME_NOUNS and tok.head.lower_ in ("in", "on", "within", "inside"):
        return "frame"
    return None


def is_frame_subject(tok: Token) -> bool:
    """"The PICTURE shows ...": a frame noun as (active) subject of a verb of showing."""
    return (tok.lemma_.lower() in lx.FRAME_NOUNS and tok.dep_ == "nsubj"
            and tok.head.lemma_.lower() in lx.PERCEPTION_VERBS)


def _is_compound(tok: Token) -> bool:
    """A noun modifying a noun as part of its name: "TRAFFIC light", "CLOTHES line"."""
    return tok.dep_ in ("compound", "nmod") or (tok.dep_ == "amod" and tok.pos_ in ("NOUN", "PROPN"))


def _compounds(tok: Token) -> list[Token]:
    """The compound modifiers of ``tok``, recursively, in text order."""
    out = []
    for c in tok.lefts:
        if _is_compound(c):
            out += _compounds(c) + [c]
    return sorted(out, key=lambda t: t.i)


def _modifier_words(tok: Token) -> list[str]:
    """Adjectives (with their conjuncts: "black and white") and numbers modifying ``tok``."""
    words = []
    for c in tok.children:
        if (c.dep_ in ("amod", "nummod") and not _is_compound(c)) or (
                c.dep_ == "compound" and c.pos_ in ("ADJ", "NUM")):
            words.append(c.lower_)
            words += [x.lower_ for x in c.conjuncts if x.i > c.i and x.pos_ in ("ADJ", "NUM")]
    return words


def mention_at(tok: Token) -> Mention | None:
    """The mention headed by ``tok``, or None when ``tok`` heads no object (see module docstring)."""
    if not is_nominal(tok) or in_phrase(tok) or placement(tok) or tok.lower_ in RECIPROCALS:
        return None
    if _is_compound(tok) and tok.i < tok.head.i and is_nominal(tok.head) and not in_phrase(tok.head):
        return None  # a compound is part of its noun's label, unless that is no noun ("ball RIGHT of")
    if is_frame_subject(tok) or (tok.lemma_.lower() in lx.COLLECTIVE_NOUNS and of_object(tok)):
        return None
    if tok.lower_ in lx.REFERRING_PRONOUNS:
        return Mention(tok.i, tok.lower_, [], pronoun=True)
    if tok.lower_ == "one" and of_object(tok) is not None:
        return None
    det = next((c.lower_ for c in tok.children if c.dep_ in ("det", "predet")), "")
    attributes = _modifier_words(tok)
    label_words = []
    for c in _compounds(tok):
        attributes += _modifier_words(c)
        if c.lower_ in lx.MATERIAL_NOUNS or c.lower_ in lx.COLOUR_WORDS or c.pos_ in ("ADJ", "NUM"):
            attributes.append(c.lower_)
        else:
            label_words.append(c.lemma_.lower())
    stands_for = tok.lower_ in STAND_FOR_NOUNS and not label_words
    label = None if stands_for else " ".join(label_words + [tok.lemma_.lower()])
    return Mention(tok.i, label, attributes, det)


def mention_token(tok: Token | None, mentions: dict[int, Mention]) -> Token | None:
    """The token of the mention ``tok`` stands for: itself, or through a group noun the noun after
    "of" ("a group of PEOPLE"); None when it names no object."""
    for _ in range(4):
        if tok is None or tok.i in mentions:
            return tok
        tok = of_object(tok) if tok.lemma_.lower() in lx.COLLECTIVE_NOUNS | {"one"} else None
    return None
