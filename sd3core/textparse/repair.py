"""Fixing the small English model's usual slips before the rules read a Doc.

Before parsing (``stand_in_doc``): an article run into the next word, a slip of typed captions
("a mouse in front of ACHERRY"), is split off when the run-together word is in no dictionary and
the rest is a noun ("a cherry"), and so is a noun run into the preposition after it ("bus
next TOA dog": ``glued_words``); the synthetic world's shape nouns after an article or adjective
("a blue CAN", "a big ORB", "a little DRUM") or before a preposition or copula ("garbage CAN under
the sink") are parsed as a common noun ("ball"), which the model reads reliably ("can" is otherwise
read as the modal verb, "drum sits" as a compound); each stand-in token gets its own word back as
lemma once the Doc is parsed (``restore``).

A side phrase's "of" left out before a noun phrase ("a suitcase on left A MAN") is put in.

After parsing (``repair``):
captions are often bare noun phrases ("sign above urinal", "leaves on the tree", "trees behind
building", "bike next to field"), which the model tends to read as imperatives or infinitives. Each
rule here finds one such slip by its shape in the parse and re-tags the word as a noun (part of
speech and lemma; the dependency tree is left as it is and ``reading`` copes with it, but for two
labels: the noun before a re-tagged subject becomes its compound, and the adjective-tagged noun
before a posture verb that verb's subject):

- a sentence-initial verb heading a fragment: no subject but a determiner, no object, a
  preposition after it ("LEAVES on the tree", "a ROSE in a vase");
- a verb right after a preposition, with nothing below it ("trees behind BUILDING");
- an adjective or verb as a preposition's object with nothing below it ("sign above URINAL");
- a verb after "next to" / "close to" read as an infinitive ("bike next to FIELD");
- a noun in -ing read as a participle, without auxiliary or object ("blue RAILING on the wall");
- an adjective between an article and a posture verb heading the text ("a DUCKY sitting next
  to a cap": the subject of "sitting");
- an adjective with an article as a clause's subject ("a PETAL is shown above a pollen"), and a
  verb, or a pronoun with an article, as one ("the bamboo LEAVES are", "the BOOKSHELF is");
and one the other way round: a posture verb read as the head of a compound noun ("a cylinder RESTS
on the cube" as "cylinder rests") becomes a verb again.
"""
from __future__ import annotations

from typing import Callable

from spacy.tokens import Doc, Token

from ..vocab import ATTRIBUTE_KIND, SHAPES, SYNONYMS
from . import lexicon as lx

NounLemma = Callable[[Token], str]  # a token re-tagged as a noun -> its noun lemma
IsVerb = Callable[[str], bool]  # lower-case word -> whether the English dictionary has it as a verb
# (lower-case word, nouns only?) -> whether the English dictionary has it (as a noun, or as any word)
Dictionary = Callable[[str, bool], bool]
# Words typed captions run into the next word ("ACHERRY") or the previous one ("next TOA"),
# longest first.
GLUED_AFTER = ("the", "some", "an", "a")
GLUED_BEFORE = ("behind", "under", "above", "next", "near", "the", "to", "on", "in", "of", "by",
                "an", "a")
INFINITIVE_SLIP_HEADS = frozenset({"next", "close", "adjacent"})  # "next TO field" read as "to field"
ARTICLES = frozenset({"a", "an", "the", "some"})
SIDE_OPENERS = frozenset({"on", "to", "at"})  # "ON the left (of)"
# Third-person forms of posture verbs -> lemma.
POSTURE_VERBS = {"sits": "sit", "rests": "rest", "lies": "lie", "stands": "stand", "hangs": "hang",
                 "leans": "lean", "perches": "perch"}


def _plural(noun: str) -> str:
    return noun + ("es" if noun.endswith(("s", "x", "sh", "ch")) else "s")


_SHAPE_NOUNS = {w for shape in SHAPES for w in (shape, *SYNONYMS.get(shape, ()))}
# word -> (stand-in word, lemma of the word)
STAND_INS = {**{n: ("ball", n) for n in _SHAPE_NOUNS}, **{_plural(n): ("balls", n) for n in _SHAPE_NOUNS}}
# Words after which a stand-in word is a noun: articles, numbers, the world's attribute words.
NOUN_CUES = (ARTICLES | {"another", "each", "this", "that", "two", "three", "little", "big", "tiny",
                         "huge", "small", "large"} | lx.COLOUR_WORDS | set(ATTRIBUTE_KIND)
             | {w for c in ATTRIBUTE_KIND for w in SYNONYMS.get(c, ())})
# Words after which a stand-in word is a noun, never the modal "can": a spatial phrase's first word
# or a copula ("garbage CAN under the sink", "the CAN is red"); also punctuation and the text's end.
NOUN_FOLLOWERS = ({phrase.split()[0] for phrase in lx.PHRASE_TO_PREDICATE}
                  | {"is", "are", "was", "were", "with", "and"} | lx.POSTURE_PARTICIPLES)
STAND_IN_KEY = "sd3core_stand_ins"  # Doc.user_data key: token index -> lemma of the original word


def _word_forms(word: str) -> tuple[str, ...]:
    """``word`` and the singulars it may be the plural of ("cherries" -> "cherry")."""
    forms = [word]
    if word.endswith("ies"):
        forms.append(word[:-3] + "y")
    if word.endswith("es"):
        forms.append(word[:-2])
    if word.endswith("s"):
        forms.append(word[:-1])
    return tuple(forms)


def _known(word: str, dictionary: Dictionary, noun: bool) -> bool:
    """Whether ``word`` (lower case) is a dictionary word (a noun, with ``noun``) in some form."""
    return any(dictionary(f, noun) for f in _word_forms(word))


def glued_words(word: str, dictionary: Dictionary) -> tuple[str, str] | None:
    """The two words of a word that is two run together, a common slip of typed captions, or None.

    Only a word no dictionary knows, in any form, is split, and only at a ``GLUED_AFTER`` or
    ``GLUED_BEFORE`` word: an article run into a dictionary noun of three letters or more ("in front
    of ACHERRY", "on THETORCH"), or a noun, number or article run into the preposition or article
    after it ("a bed next TOA chair", "BUSNEXT to the sidewalk", "number 80ON the column").
    """
    lower = word.lower()
    if not lower.isalnum() or _known(lower, dictionary, False):
        return None
    for glue in GLUED_AFTER:
        rest = lower[len(glue):]
        if lower.startswith(glue) and len(rest) >= 3 and _known(rest, dictionary, True):
            return word[:len(glue)], word[len(glue):]
    for glue in GLUED_BEFORE:
        rest = lower[:-len(glue)]
        if lower.endswith(glue) and rest and (rest.isdigit() or rest in GLUED_BEFORE or (
                len(rest) >= 3 and _known(rest, dictionary, True))):
            return word[:len(rest)], word[len(rest):]
    return None


def missing_of(lower: list[str]) -> list[int]:
    """Where typed captions leave out the "of" of a side phrase before a noun phrase ("a suitcase
    on left | a man", "a pot on right side | a bench"): the word indices to put "of" in front of."""
    places = []
    for i, w in enumerate(lower[:-1]):
        opened = i and (lower[i - 1] in SIDE_OPENERS or (lower[i - 1] == "the" and i > 1
                                                         and lower[i - 2] in SIDE_OPENERS))
        if w not in lx.SIDES or not opened:
            continue
        j = i + 1 + (lower[i + 1] == "side") + 2 * (lower[i + 1:i + 3] == ["hand", "side"])
        if j < len(lower) and lower[j] in ARTICLES | {"this", "that"}:
            places.append(j)
    return places


def stand_in_doc(make_doc: Callable[[str], Doc], text: str, dictionary: Dictionary) -> Doc:
    """``text`` tokenized, with glued words split (``glued_words``; not in names: capitalised words
    after the first), a side phrase's missing "of" put in (``missing_of``), and stand-ins put in
    for the words of ``STAND_INS`` after a cue word."""
    doc = make_doc(text)
    words, spaces = [], []
    for t in doc:
        name = t.i > 0 and t.text[:1].isupper()
        split = None if name else glued_words(t.text, dictionary)
        words += list(split) if split else [t.text]
        spaces += [True, bool(t.whitespace_)] if split else [bool(t.whitespace_)]
    for j in reversed(missing_of([w.lower() for w in words])):
        words.insert(j, "of")
        spaces.insert(j, True)
    lower = [w.lower() for w in words]
    after = lower[1:] + [""]
    lemmas = {i: STAND_INS[w][1] for i, w in enumerate(lower) if w in STAND_INS and (
        (i and lower[i - 1] in NOUN_CUES) or after[i] in NOUN_FOLLOWERS or not after[i].isalpha())}
    if not lemmas and len(words) == len(doc):
        return doc
    words = [STAND_INS[w][0] if i in lemmas else words[i] for i, w in enumerate(lower)]
    new = Doc(doc.vocab, words=words, spaces=spaces)
    new.user_data[STAND_IN_KEY] = lemmas
    return new


def restore(doc: Doc) -> Doc:
    """Give each stand-in token of a parsed ``doc`` its own word's lemma back; returns ``doc``."""
    for i, lemma in doc.user_data.get(STAND_IN_KEY, {}).items():
        doc[i].lemma_ = lemma
    return doc


def _fragment_head(tok: Token) -> bool:
    """A verb heading the whole text as if imperative: "LEAVES on the tree", "a ROSE in a vase"."""
    if tok.dep_ != "ROOT" or tok.pos_ != "VERB" or tok.tag_ not in ("VB", "VBP", "VBZ", "VBD", "VBG"):
        return False
    if _noun_before_posture(tok) is not None:
        return False  # "a ducky SITTING next to": the verb is one
    if tok.lemma_ == "be" or any(c.dep_ in ("dobj", "attr", "ccomp", "aux", "auxpass", "expl")
                                 for c in tok.children):
        return False
    if any(c.dep_ in ("nsubj", "nsubjpass") and c.lower_ not in ARTICLES for c in tok.children):
        return False  # "a ROSE in a vase": the "subject" is the article
    before = tok.doc[:tok.i]
    allowed = ("DET", "ADJ", "NUM") if tok.tag_ == "VBG" else ("DET", "ADJ", "NOUN", "PROPN", "NUM", "PRON")
    return (all(t.pos_ in allowed for t in before)
            and any(c.dep_ in ("prep", "advmod", "xcomp") for c in tok.rights))


def _noun_before_posture(tok: Token) -> Token | None:
    """The noun of "a DUCKY sitting next to a cap", read as an adjective modifying the posture
    verb heading the fragment: the one adjective between an article and that verb."""
    if tok.dep_ != "ROOT" or tok.tag_ != "VBG" or tok.lower_ not in lx.POSTURE_PARTICIPLES or tok.i < 2:
        return None
    adj, det = tok.doc[tok.i - 1], tok.doc[tok.i - 2]
    if (adj.pos_ == "ADJ" and adj.dep_ == "amod" and adj.head.i == tok.i and det.lower_ in ARTICLES
            and tok.doc[:tok.i - 2].text.strip() == ""):
        return adj
    return None


def _bare_object(tok: Token) -> bool:
    """A preposition's object or complement tagged verb or adjective, with nothing below it and
    no noun after it ("sign above URINAL", but not "above a LITTLE cyan cylinder")."""
    after = tok.doc[tok.i + 1] if tok.i + 1 < len(tok.doc) else None
    return (tok.dep_ in ("pobj", "pcomp") and tok.pos_ in ("VERB", "ADJ")
            and all(c.dep_ == "det" for c in tok.children) and tok.head.pos_ == "ADP"
            and (after is None or after.pos_ not in ("NOUN", "PROPN", "ADJ"))
            and tok.lower_ not in lx.COLOUR_WORDS and tok.lower_ not in lx.LOCATION_NOUNS)


def _ing_noun(tok: Token) -> bool:
    """A noun in -ing read as a bare participle ("blue RAILING on top of cement wall"): no
    auxiliary, no object."""
    return (tok.tag_ == "VBG" and tok.lower_ in lx.ING_NOUNS
            and not any(c.dep_ in ("aux", "auxpass", "dobj") for c in tok.children))


def _adjective_subject(tok: Token) -> bool:
    """An adjective with an article, read as a clause's subject: "a PETAL is shown above a pollen"."""
    return (tok.pos_ == "ADJ" and tok.dep_ in ("nsubj", "nsubjpass")
            and any(c.dep_ == "det" and c.lower_ in ARTICLES for c in tok.children))


def _verb_subject(tok: Token) -> bool:
    """A noun read as a verb or pronoun heading a clause's subject: "the bamboo LEAVES on the right
    are in front of", "the BOOKSHELF is in front of" (a verb never is a subject; a pronoun takes no
    article)."""
    if tok.dep_ not in ("nsubj", "nsubjpass"):
        return False
    if tok.pos_ == "PRON":
        return any(c.dep_ == "det" and c.lower_ in ARTICLES for c in tok.children)
    return tok.pos_ == "VERB" and tok.tag_ in ("VBZ", "NNS", "VBP")


def _no_verb(tok: Token, is_verb: IsVerb) -> bool:
    """A word tagged verb that English has no verb for, without auxiliary or object: "cooking
    UTENSILS beside the stove"."""
    return (tok.pos_ == "VERB" and tok.tag_ in ("VB", "VBP", "VBZ") and not _english_verb(tok, is_verb)
            and not any(c.dep_ in ("aux", "auxpass", "dobj") for c in tok.children))


def _posture_verb(tok: Token) -> bool:
    """"a dull cylinder RESTS on the cube" read as the compound noun "cylinder rests"."""
    return (tok.pos_ == "NOUN" and tok.lower_ in POSTURE_VERBS
            and any(c.dep_ == "compound" for c in tok.lefts)
            and any(c.dep_ == "prep" for c in tok.rights))


def infinitive_slip(to: Token) -> Token | None:
    """For a "to" of "next to" read as an infinitive marker, the word after it ("field"), else None."""
    if to.lower_ != "to" or to.pos_ not in ("PART", "AUX") or to.i == 0:
        return None
    before = to.doc[to.i - 1]
    if before.lower_ not in INFINITIVE_SLIP_HEADS or to.head.i <= to.i:
        return None
    return to.head


def _english_verb(tok: Token, is_verb: IsVerb) -> bool:
    """Whether English has a verb ``tok`` can be: its lemma or a form of its word ("is", "sleeps")."""
    return tok.lemma_ == "be" or any(is_verb(f) for f in (tok.lemma_.lower(), *_word_forms(tok.lower_)))


def _final_noun_slip(doc: Doc, is_verb: IsVerb) -> tuple[Token, Token, Token | None] | None:
    """"mirror above the bathroom SINK", "hood above STOVES": the text's last word read as its root,
    with the noun the phrase is about as its subject, while it ends the preposition's object. A
    word tagged verb is taken for a noun only when English has no such verb ("a cat on the mat
    SLEEPS" stays). Returns (last word, preposition, the noun before it that becomes its compound,
    or None)."""
    words = [t for t in doc if not (t.is_punct or t.is_space)]
    if len(words) < 3:
        return None
    last = words[-1]
    subject = next((c for c in last.children if c.dep_ == "nsubj"), None)
    if (last.dep_ != "ROOT" or last.pos_ not in ("NOUN", "PROPN", "VERB") or last.tag_ in ("VBD", "VBG", "VBN")
            or subject is None or any(c.dep_ not in ("nsubj", "punct") for c in last.children)
            or (last.pos_ == "VERB" and _english_verb(last, is_verb))):
        return None
    before = doc[last.i - 1]
    if before.pos_ == "ADP" and not any(before.children):
        prep, compound = before, None                       # "hood above | stoves"
    elif before.dep_ == "pobj" and before.pos_ in ("NOUN", "PROPN") and not before.n_rights:
        prep, compound = before.head, before                # "above the bathroom | sink"
    else:
        return None
    if prep.pos_ != "ADP" or prep not in subject.subtree:
        return None
    return last, prep, compound


def _rehang_final_noun(slip: tuple[Token, Token, Token | None], noun_lemma: NounLemma) -> None:
    """Make the last word the preposition's object and the subject the text's root (see
    ``_final_noun_slip``)."""
    last, prep, compound = slip
    subject = next(c for c in last.children if c.dep_ == "nsubj")
    for c in list(last.children):
        if c.dep_ == "punct":
            c.head = subject
    subject.head, subject.dep_ = subject, "ROOT"
    last.head, last.dep_ = prep, "pobj"
    if compound is not None:
        compound.head, compound.dep_ = last, "compound"
    if last.pos_ == "VERB":
        as_noun(last, noun_lemma)


def as_noun(tok: Token, noun_lemma: NounLemma) -> None:
    tok.pos_ = "NOUN"
    tok.tag_ = "NNS" if tok.lower_.endswith("s") and not tok.lower_.endswith("ss") else "NN"
    tok.lemma_ = noun_lemma(tok)


def repair(doc: Doc, noun_lemma: NounLemma, is_verb: IsVerb) -> Doc:
    """Re-tag the verbs and adjectives of ``doc`` that are nouns by the rules above; returns ``doc``."""
    slips = [t for t in doc if _fragment_head(t) or _bare_object(t) or _ing_noun(t)
             or _adjective_subject(t) or _verb_subject(t) or _no_verb(t, is_verb)]
    slips += [w for w in map(infinitive_slip, doc) if w is not None and w.pos_ != "NOUN"]
    for tok in slips:
        as_noun(tok, noun_lemma)
        for c in tok.lefts:  # "the BAMBOO leaves": the verb's subject was the noun's compound
            if c.dep_ == "nsubj" and c.i == tok.i - 1 and c.pos_ == "NOUN":
                c.dep_ = "compound"
    for tok in filter(None, map(_noun_before_posture, doc)):
        as_noun(tok, noun_lemma)
        tok.dep_ = "nsubj"
    for tok in filter(_posture_verb, doc):
        tok.pos_, tok.tag_, tok.lemma_ = "VERB", "VBZ", POSTURE_VERBS[tok.lower_]
    slip = _final_noun_slip(doc, is_verb)
    if slip is not None:
        _rehang_final_noun(slip, noun_lemma)
    return doc
