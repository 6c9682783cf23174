"""A shallow reading, by word order alone, for captions whose dependency parse gives no spatial link.

Captions are often bare noun phrases with a preposition between them ("white towel underneath
pizza box", "bath tub next to the girl", "open can behind keyboard"). The small English model,
trained on full sentences, often mis-tags such fragments so badly (nouns as adverbs, modals,
interjections, prepositions as proper nouns) that no rule over its tree can read them. For those
texts only, a spatial phrase of the lexicon standing between two noun groups is read as a link
between them, the way a caption fragment "NP PREP NP" is read by a person:

- only a *fragment* (no copula, auxiliary, or finite verb with a subject) is read so: in a
  sentence, finding no spatial link is the dependency rules' reading ("the man in the picture");
- a *spatial phrase* is the longest run of words (articles and intensifiers skipped, as in
  ``lexicon.normalise_phrase``) that ``lexicon.PHRASE_TO_PREDICATE`` knows ("in front of", "next
  to", "underneath");
- a link to a place, the picture or a colour ("on the left", "in the photo", "in green") is none;
- its *subject* is the noun group right before it, past a verb of posture or position and a copula
  ("a ducky sitting | next to", "books are | beside"); its head is the group's last word;
- its *object* is the noun group right after it, past articles, numbers and possessives; its head
  is the group's last word ("pizza box"); "each other" links the two coordinated groups before it;
- a noun group is a run of content words (no stop words, punctuation or words of another spatial
  phrase); its head's noun lemma is the label, the group's other nouns its compounds, its colour,
  material and adjective words its attributes.

Links are read left to right, a phrase's subject being the group nearest before it, so a chain "A
on B under C" gives A on B and B under C.
"""
from __future__ import annotations

from spacy.tokens import Doc, Token

from ..vocab import PREDICATES
from . import lexicon as lx
from .mentions import Mention
from .reading import Link, Reading
from .repair import NounLemma, as_noun

# Copulas and auxiliaries: a text with one is a sentence, which the dependency rules read.
FINITE_WORDS = frozenset({"is", "are", "was", "were", "am", "has", "have", "had", "'s", "'re"})
MAX_PHRASE_WORDS = 6  # words in the longest spatial phrase, fillers included
# Words between a subject and its phrase: copulas and auxiliaries ("is", "are", "being").
LINKING_WORDS = frozenset({"is", "are", "was", "were", "be", "being", "been", "'s"})
# Verbs of posture and position between a subject and its phrase ("sitting next to", "parked
# behind"), as written (the model may have tagged them as nouns in a fragment).
POSTURE_WORDS = frozenset({
    "sitting", "sits", "standing", "stands", "lying", "lies", "laying", "lays", "resting", "rests",
    "hanging", "hangs", "leaning", "leans", "perched", "parked", "placed", "put", "set", "located",
    "positioned", "situated", "seated", "floating", "flying", "growing", "walking", "running",
    "shown", "seen", "hovering", "kept", "stored", "mounted", "stacked", "lined", "stuck", "sat",
    "stood", "hung", "lay", "left", "piled", "displayed", "visible"})


def has_spatial_link(reading: Reading) -> bool:
    """Whether the dependency reading found a link with one of the nine predicates."""
    return any(link.predicate in PREDICATES for link in reading.links)


def is_fragment(doc: Doc) -> bool:
    """A caption without a finite clause: no copula or auxiliary, no finite verb with a subject."""
    return not any(t.lower_ in FINITE_WORDS or t.tag_ in ("VBZ", "VBD", "MD") and any(
        c.dep_ in ("nsubj", "nsubjpass", "expl") for c in t.children) for t in doc)


def _phrase_at(doc: Doc, i: int) -> tuple[int, str] | None:
    """(end, predicate) of the longest spatial phrase starting at token ``i`` (end exclusive)."""
    if doc[i].lower_ in lx.PHRASE_FILLERS or not doc[i].is_alpha:
        return None
    best = None
    words: list[str] = []
    for j in range(i, min(i + MAX_PHRASE_WORDS, len(doc))):
        word = doc[j].lower_
        if not (doc[j].is_alpha or word == "-"):
            break
        if word not in lx.PHRASE_FILLERS and word != "-":
            words.append(word)
        predicate = lx.PHRASE_TO_PREDICATE.get(" ".join(words))
        if predicate is not None and word not in lx.PHRASE_FILLERS:
            best = (j + 1, predicate)
    return best


def _phrases(doc: Doc) -> list[tuple[int, int, str]]:
    """(start, end, predicate) of the spatial phrases of ``doc``, left to right, not overlapping."""
    found, i = [], 0
    while i < len(doc):
        hit = _phrase_at(doc, i)
        if hit is None:
            i += 1
            continue
        found.append((i, hit[0], hit[1]))
        i = hit[0]
    return found


def _content(tok: Token) -> bool:
    """A word that can be part of a noun group."""
    return tok.is_alpha and (not tok.is_stop or tok.pos_ == "NOUN") and tok.pos_ not in (
        "ADP", "CCONJ", "SCONJ", "PRON", "DET")


def _places(tok: Token) -> bool:
    """A word after a phrase that says where in the picture, not what is there: "on the LEFT",
    "in the PICTURE", "in GREEN" (as ``reading`` reads them)."""
    word = tok.lemma_.lower()
    return word in lx.LOCATION_NOUNS or word in lx.FRAME_NOUNS or tok.lower_ in lx.COLOUR_WORDS


def _participle(tok: Token) -> bool:
    """A participle, which starts a clause of its own ("building | FACING street")."""
    return tok.tag_ in ("VBG", "VBN")


def _group_before(doc: Doc, end: int, floor: int) -> list[Token]:
    """The noun group ending just before token ``end`` (past posture verbs and copulas), not
    reaching back before ``floor``."""
    i = end - 1
    while i >= floor and (doc[i].lower_ in LINKING_WORDS or doc[i].pos_ == "ADV" and doc[i].is_stop
                          or doc[i].lower_ in POSTURE_WORDS):
        i -= 1
    group = []
    while i >= floor and _content(doc[i]) and not (group and _participle(doc[i])):
        group.insert(0, doc[i])
        i -= 1
    return group


def _group_after(doc: Doc, start: int, stop: int) -> list[Token]:
    """The noun group starting at token ``start`` (past articles, numbers and possessives), ending
    before token ``stop``."""
    i = start
    while i < stop and (doc[i].pos_ in ("DET", "NUM") or doc[i].tag_ == "PRP$" or doc[i].lower_ in (
            "some", "many", "several", "few")):
        i += 1
    group = []
    while i < stop and _content(doc[i]) and not (group and _participle(doc[i])):
        group.append(doc[i])
        i += 1
    if (group and group[-1].lemma_.lower() in lx.RELATIONAL_NOUNS and i + 1 < stop
            and doc[i].lower_ == "of"):  # "the edge of the plate": the plate
        return _group_after(doc, i + 1, stop)
    return group


def _mention(group: list[Token], reading: Reading, noun_lemma: NounLemma) -> int:
    """The head token of ``group``, made a mention if the dependency reading has none there."""
    head = group[-1]
    known = reading.mentions.get(head.i)
    for t in group:  # the group overrides the mentions the parse made of its words
        reading.mentions.pop(t.i, None)
    if head.pos_ not in ("NOUN", "PROPN"):
        as_noun(head, noun_lemma)
    label_words, attributes = [], []
    for t in group[:-1]:
        kind_word = t.lower_ in lx.COLOUR_WORDS or t.lower_ in lx.MATERIAL_NOUNS
        if t.pos_ in ("NOUN", "PROPN") and not kind_word:
            label_words.append(t.lemma_.lower())
        else:
            attributes.append(t.lower_)
    before = head.doc[group[0].i - 1] if group[0].i else None
    det = before.lower_ if before is not None and before.pos_ == "DET" else ""
    if known is not None:
        attributes += [a for a in known.attributes if a not in attributes]
    reading.mentions[head.i] = Mention(head.i, " ".join(label_words + [head.lemma_.lower()]),
                                       attributes, det or (known.determiner if known else ""))
    return head.i


def read_shallow(doc: Doc, reading: Reading, noun_lemma: NounLemma) -> Reading:
    """Add the links of the spatial phrases of ``doc`` read by word order (module docstring) to
    ``reading``, when it has no spatial link; returns ``reading``."""
    if has_spatial_link(reading) or not is_fragment(doc):
        return reading
    phrases = _phrases(doc)
    links = []
    for k, (start, end, predicate) in enumerate(phrases):
        floor = phrases[k - 1][1] if k else 0
        stop = phrases[k + 1][0] if k + 1 < len(phrases) else len(doc)
        subject = _group_before(doc, start, floor)
        if not subject:
            continue
        phrase = " ".join(t.lower_ for t in doc[start:end])
        after = [t.lower_ for t in doc[end:min(end + 2, stop)]]
        if after[-1:] in (["other"], ["another"]) or after[:1] == ["eachother"]:  # "A and B ... each other"
            i = subject[0].i - 1
            first = _group_before(doc, i, floor) if i >= floor and doc[i].lower_ in ("and", "&") else []
            obj, subject = subject, first
        else:
            obj = _group_after(doc, end, stop)
        if subject and obj and not _places(obj[-1]):
            links.append((subject, predicate, obj, phrase))
    for subject, predicate, obj, phrase in links:
        s, o = _mention(subject, reading, noun_lemma), _mention(obj, reading, noun_lemma)
        reading.links.append(Link(s, predicate, o, phrase))
    reading.mentions = dict(sorted(reading.mentions.items()))
    return reading
