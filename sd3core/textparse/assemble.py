"""From a ``Reading`` to a text scene graph: one object per mention, except that a mention referring
back to an earlier object reuses it; then each link becomes a relation between objects.

Referring back (coreference), by rules:

- "it", "they", "he", ... in subject position: the object of the latest clause subject before it
  ("The cube is left of the ball. IT is on the box" -> the cube); after "A with B PREP" or "A has
  B PREP": A ("a table with a chair next to IT"); elsewhere ("a ball is next to IT"): the latest
  object mentioned before it that is not the relation's other end.
- A definite noun phrase ("the cube", "this ball") reuses the latest earlier object whose label
  ends in the same words, canonical synonyms counting as one ("the ball" after "a big sphere"), and
  whose attributes do not contradict it ("the blue cube" is not "a red cube"), unless the text
  relates the two ("a tree above the trees", "another bus behind the first bus": two things). Indefinite and bare
  noun phrases, and "another ...", are new objects.
- "one" and "others" ("a red cube and a blue ONE", "a zebra left of four OTHERS") take the label
  of the mention before them.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..graph import MAX_LABEL_CHARS, MAX_OBJECTS, MAX_RELATIONS, SceneGraph, SGObject, SGRelation
from ..vocab import ATTRIBUTE_KIND, canonical_word
from . import lexicon as lx
from .mentions import Mention
from .reading import SUBJECT_DEPS, Reading, is_clause_subject


def clean_text(text: str) -> str:
    """``text`` made fit for a graph text field: commas dropped, whitespace runs made one space,
    cut to ``MAX_LABEL_CHARS``, stripped ("" when nothing is left)."""
    return " ".join(text.replace(",", " ").split())[:MAX_LABEL_CHARS].strip()


@dataclass
class _Object:
    """An object being built: its label and its attributes in first-said order."""
    label: str
    attributes: list[str]

    def add(self, words: list[str]) -> None:
        for w in map(clean_text, words):
            if w and w not in self.attributes:
                self.attributes.append(w)


def _canonical_words(words: list[str]) -> tuple[str, ...]:
    return tuple(canonical_word(w) for w in words)


def _contradicts(words: list[str], obj: _Object) -> bool:
    """Whether attributes ``words`` of a new mention rule out that it is ``obj``: a colour, size or
    material other than obj's, or a free attribute obj lacks while it has free ones of its own."""
    old = {canonical_word(a) for a in obj.attributes}
    old_kinds = {ATTRIBUTE_KIND[a] for a in old if a in ATTRIBUTE_KIND}
    old_free = any(a not in ATTRIBUTE_KIND for a in old)
    for a in map(canonical_word, words):
        if a in old:
            continue
        kind = ATTRIBUTE_KIND.get(a)
        if (kind is not None and kind in old_kinds) or (kind is None and old_free):
            return True
    return False


class _Builder:
    """Objects and the object of each mention token, filled in text order."""

    def __init__(self, reading: Reading, doc) -> None:
        self.reading, self.doc = reading, doc
        self.objects: list[_Object] = []
        self.of_token: dict[int, int] = {}  # mention token -> object index
        self.subject_tokens: list[int] = []  # clause-subject tokens seen so far, in text order
        self.partners: dict[int, set[int]] = {}  # mention token -> tokens it is linked with
        for link in reading.links:
            self.partners.setdefault(link.subject, set()).add(link.object)
            self.partners.setdefault(link.object, set()).add(link.subject)

    def _antecedent(self, token: int, label: str, determiner: str, words: list[str]) -> int | None:
        """The earlier object the definite mention at ``token`` refers back to, or None. Never an
        object the mention is linked with (a thing is not placed relative to itself: "another bus
        is behind THE FIRST BUS"). Preferred: an object having all of ``words`` over one merely not
        contradicting them, then the same label over a synonym ("can" over "cylinder"), then the
        latest mentioned."""
        if determiner not in lx.DEFINITE_DETERMINERS or "other" in words:
            return None
        wanted = {canonical_word(w) for w in words}
        linked = {self.of_token[t] for t in self.partners.get(token, ()) if t in self.of_token}
        best, best_key = None, None
        for i in set(self.of_token.values()) - linked:
            obj = self.objects[i]
            same = obj.label.split()[-len(label.split()):] == label.split()
            synonym = _canonical_words(obj.label.split())[-len(label.split()):] == _canonical_words(
                label.split())
            if not (same or synonym) or _contradicts(words, obj):
                continue
            key = (wanted <= {canonical_word(a) for a in obj.attributes}, same, self._last_use(i))
            if best_key is None or key > best_key:
                best, best_key = i, key
        return best

    def _last_use(self, i: int) -> int:
        return max(t for t, o in self.of_token.items() if o == i)

    def _pronoun_object(self, token: int) -> int | None:
        """The object of a subject pronoun: that of the latest clause subject before it."""
        for t in reversed(self.subject_tokens):
            if t < token and t in self.of_token:
                return self.of_token[t]
        earlier = [t for t in self.of_token if t < token]
        return self.of_token[max(earlier)] if earlier else None

    def _give(self, token: int, obj: int | None, label: str, words: list[str]) -> None:
        """Map mention ``token`` to object ``obj``, or to a new object when None (none past
        MAX_OBJECTS), and add ``words`` to its attributes."""
        if obj is None:
            if len(self.objects) >= MAX_OBJECTS:
                return
            self.objects.append(_Object(label, []))
            obj = len(self.objects) - 1
        self.objects[obj].add(words)
        self.of_token[token] = obj
        if is_clause_subject(self.doc[token]):
            self.subject_tokens.append(token)

    def add_pronoun(self, m: Mention) -> None:
        """A subject pronoun takes its object now; one with nothing before it to refer back to
        names a new object ("she is standing beside the light"); others wait for ``end``."""
        if self.doc[m.token].dep_ in SUBJECT_DEPS:
            obj = self._pronoun_object(m.token)
            if obj is not None:
                self._give(m.token, obj, m.label, [])
                return
        if not any(t < m.token for t in self.of_token):
            self._give(m.token, None, m.label, [])

    def add_noun(self, m: Mention) -> None:
        """A noun phrase takes the object it refers back to, or a new one."""
        label = m.label
        if label is None:  # "a blue one", "the others"
            earlier = [self.objects[o].label for t, o in sorted(self.of_token.items()) if t < m.token]
            label = earlier[-1] if earlier else self.doc[m.token].lemma_.lower()
        label = clean_text(label)
        if label:
            words = m.attributes + self.reading.said_of.get(m.token, [])
            self._give(m.token, self._antecedent(m.token, label, m.determiner, words), label, words)

    def end(self, token: int, other: int | None) -> int | None:
        """The object of a link end: its mention's, or for an unresolved pronoun its antecedent's
        (``Reading.refers``) or else the latest object mentioned before it that is not ``other``."""
        if token in self.of_token:
            return self.of_token[token]
        if token not in self.reading.mentions:
            return None
        owner = self.of_token.get(self.reading.refers.get(token, -1))
        if owner is not None and owner != other:
            return owner
        for t in sorted((t for t in self.of_token if t < token), reverse=True):
            if self.of_token[t] != other:
                return self.of_token[t]
        return None


def assemble(reading: Reading, doc) -> SceneGraph:
    """The text scene graph of a Doc's reading (see the module docstring for coreference)."""
    b = _Builder(reading, doc)
    for m in reading.mentions.values():
        b.add_pronoun(m) if m.pronoun else b.add_noun(m)
    for token, words in reading.said_of.items():  # "it is red": said of a pronoun
        if token in b.of_token and token in reading.mentions and reading.mentions[token].pronoun:
            b.objects[b.of_token[token]].add(words)
    relations: dict[tuple[int, str, int], SGRelation] = {}
    for link in reading.links:
        s = b.end(link.subject, None)
        o = b.end(link.object, s)
        predicate, phrase = clean_text(link.predicate), clean_text(link.phrase)
        if s is None or o is None or s == o or not predicate or len(relations) >= MAX_RELATIONS:
            continue
        relations.setdefault((s, predicate, o), SGRelation(s, predicate, o, phrase))
    objects = tuple(SGObject(i, o.label, tuple(o.attributes)) for i, o in enumerate(b.objects))
    return SceneGraph(kind="tsg", objects=objects, relations=tuple(relations.values()))
