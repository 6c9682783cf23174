"""The caption writer of the synthetic world: a gold 3DSG in, captions a person could have written out,
each with the gold text scene graph (TSG) it states.

A caption states 1-3 relations of the 3DSG; a scene without usable relations gets a caption that
describes one object alone. Sentence shapes, predicate wordings, noun and attribute synonyms and
referring expressions are sampled from the tables below, so no caption is one template with slots.

Every stated relation is a relation of the 3DSG. An object is referred to with the fewest attributes
(colour first, then size, then material) that set it apart from the scene's other objects of its
shape, sometimes with one more for variety; an object that nothing sets apart (an identical twin) is
never put in a relation.

The gold TSG (kind ``"tsg"``): ``objects`` are the mentioned objects only, TSG id k being the k-th
object mentioned (first mentions in text order; "it" and "the ball" are later mentions, not new
objects); ``label`` and ``attributes`` are canonical vocabulary words ("sphere" for "ball",
``("large", "shiny")`` for "big metal"), attributes in the order colour, size, material; each
relation has its canonical predicate and, as ``phrase``, the words the caption used ("left of",
"sitting on top of").
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from sd3core import vocab
from sd3core.graph import SceneGraph, SGObject, SGRelation
from sd3core.referring import ADJECTIVE_ORDER, ATTRIBUTE_ORDER, attribute_kinds, distinguishing


# Sampling weight of a predicate when a relation is picked: the relations that geometry makes
# rare in the world (on, in, above, under, depth) are favoured, so the captions cover all nine.
PREDICATE_WEIGHTS = {"on": 3.0, "in": 3.0, "above": 2.0, "under": 2.0, "behind": 2.0,
                     "in front of": 2.0, "to the left of": 1.0, "to the right of": 1.0, "next to": 1.0}

# predicate -> wording kind -> wordings, the most common first. Kinds:
#   prep: a preposition, after "is" or a noun ("is on", "a ball on");  part: a participle, the same uses
#   and sentence-initial ("Sitting on the cube is ...");  verb: a finite verb phrase ("sits on");
#   sym: a symmetric wording for "A and B are ... each other".
PHRASES = {
    "on": {"prep": ("on", "upon"),
           "part": ("sitting on", "resting on", "stacked on"),
           "verb": ("sits on", "rests on", "lies on")},
    "above": {"prep": ("above", "over", "on top of"), "part": ("sitting on top of",)},
    "under": {"prep": ("under", "below", "beneath", "underneath")},
    "in": {"prep": ("in", "inside", "within"),
           "part": ("sitting in", "resting in", "lying in"),
           "verb": ("sits in", "rests in", "lies in")},
    "to the left of": {"prep": ("to the left of", "left of", "on the left of"),
                       "verb": ("sits to the left of", "stands to the left of")},
    "to the right of": {"prep": ("to the right of", "right of", "on the right of"),
                        "verb": ("sits to the right of", "stands to the right of")},
    "behind": {"prep": ("behind", "in back of"), "verb": ("sits behind", "stands behind")},
    "in front of": {"prep": ("in front of",), "verb": ("sits in front of", "stands in front of")},
    "next to": {"prep": ("next to", "beside", "by"), "verb": ("sits next to", "stands beside"),
                "sym": ("next to", "beside")},
}
KIND_WEIGHTS = {"prep": 2.0, "part": 1.0, "verb": 1.0, "sym": 1.0}

MATERIAL_NOUNS = ("metal", "rubber")

COPULA, PREP, VERB, SYM = ("prep", "part"), ("prep",), ("verb",), ("sym",)
ONE = (("a", "b"),)
SHARED_SUBJECT = (("a", "b"), ("a", "c"))
CHAIN = (("a", "b"), ("b", "c"))
SHARED_OBJECT = (("a", "c"), ("b", "c"))


@dataclass(frozen=True)
class Template:
    """One sentence shape (a clause; clauses are joined into captions).

    ``text`` slots: ``{a}`` ``{b}`` ``{c}`` the objects, by role; ``{a:the}`` role a with "the";
    ``{a:attr}`` a predicative attribute of a, stated in the TSG; ``{p1}`` ``{p2}`` the wordings of
    relation 1 and 2. A text without ``{p2}`` states relation 2 with the wording of relation 1, so
    the two relations must share the predicate.
    ``roles``: (subject role, object role) of each relation stated; roles are distinct objects.
    ``kinds``: the wording kinds (keys of ``PHRASES[predicate]``) allowed for ``{p1}``, ``{p2}``.
    ``new``: roles that must not have been mentioned before (they take "a", or "the" + a clause).
    ``it``: the subject may be "it" when it was the previous clause's subject.
    """
    text: str
    roles: tuple[tuple[str, str], ...]
    kinds: tuple[tuple[str, ...], ...]
    weight: float = 1.0
    new: str = ""
    it: bool = False


TEMPLATES = (
    Template("{a} is {p1} {b}", ONE, (COPULA,), 4.0, it=True),
    Template("{a} {p1} {b}", ONE, (VERB,), 3.0, it=True),
    Template("there is {a} {p1} {b}", ONE, (COPULA,), 2.0, new="a"),
    Template("{p1} {b} is {a}", ONE, (COPULA,), 1.5, new="a"),
    Template("{p1} {b} there is {a}", ONE, (PREP,), 1.0, new="a"),
    Template("{p1} {b} sits {a}", ONE, (PREP,), 1.0, new="a"),
    Template("we can see {a} {p1} {b}", ONE, (COPULA,), 1.0, new="a"),
    Template("{a} can be seen {p1} {b}", ONE, (COPULA,), 0.7, it=True),
    Template("{a} and {b} are {p1} each other", ONE, (SYM,), 1.5),
    Template("{a:the} that is {p1} {b} is {a:attr}", ONE, (COPULA,), 1.0, new="a"),
    Template("{a:the} {p1} {b} is {a:attr}", ONE, (COPULA,), 1.0, new="a"),
    Template("{a} is {p1} {b} and {p2} {c}", SHARED_SUBJECT, (COPULA, COPULA), 3.0, it=True),
    Template("{a} {p1} {b} and is {p2} {c}", SHARED_SUBJECT, (VERB, COPULA), 1.5, it=True),
    Template("{a} {p1} {b} and {p2} {c}", SHARED_SUBJECT, (VERB, VERB), 1.0, it=True),
    Template("{a} is {p1} {b} and {c}", SHARED_SUBJECT, (PREP,), 1.0, it=True),
    Template("{a} is {p1} both {b} and {c}", SHARED_SUBJECT, (PREP,), 0.7, it=True),
    Template("{a} is {p1} {b}, which is {p2} {c}", CHAIN, (COPULA, COPULA), 2.0, it=True),
    Template("{a} {p1} {b}, which {p2} {c}", CHAIN, (VERB, VERB), 1.0, it=True),
    Template("there is {a} {p1} {b}, which is {p2} {c}", CHAIN, (COPULA, COPULA), 1.0, new="a"),
    Template("{a} and {b} are {p1} {c}", SHARED_OBJECT, (PREP,), 1.5),
    Template("{a} and {b} are both {p1} {c}", SHARED_OBJECT, (PREP,), 0.7),
)
# Captions of one object alone.
ALONE_TEMPLATES = ("{a}", "there is {a}", "the picture shows {a}", "we can see {a}")
# Joins of two clauses; at most one "and" per sentence.
CONNECTORS = {". ": 2.0, ", and ": 1.5, " and ": 1.0}
SLOT = re.compile(r"\{(\w+)(?::(\w+))?\}")


def _pick(rng: np.random.Generator, items, weights=None):
    """One of ``items`` (a sequence), with probability proportional to ``weights`` (uniform if None)."""
    w = np.ones(len(items)) if weights is None else np.asarray(weights, float)
    return items[rng.choice(len(items), p=w / w.sum())]


def _word(rng: np.random.Generator, canon: str) -> str:
    """A word for a canonical noun or attribute: the canonical word most often, else a synonym."""
    others = [w for w in vocab.SYNONYMS.get(canon, ()) if w != canon]
    return canon if not others or rng.random() < 0.6 else _pick(rng, others)


def _check(graph3d: SceneGraph) -> None:
    """Raise ValueError unless the graph speaks the world's vocabulary."""
    for o in graph3d.objects:
        if o.label not in vocab.SHAPES:
            raise ValueError(f"object {o.id}: label {o.label!r} is not a shape of vocab.SHAPES")
        unknown = [a for a in o.attributes if a not in vocab.ATTRIBUTE_KIND]
        if unknown:
            raise ValueError(f"object {o.id}: attributes {unknown} are not colours, sizes or materials")
    for r in graph3d.relations:
        if r.predicate not in vocab.PREDICATES:
            raise ValueError(f"relation {r.subject}->{r.object}: predicate {r.predicate!r} is not one "
                             f"of vocab.PREDICATES")


def _choose_relations(pool: list[SGRelation], n: int, rng: np.random.Generator) -> list[SGRelation]:
    """Up to ``n`` relations of ``pool``, predicates weighted by PREDICATE_WEIGHTS, no object pair
    twice, later ones mostly sharing an object with those already chosen."""
    chosen: list[SGRelation] = []
    while len(chosen) < n:
        pairs = {frozenset((r.subject, r.object)) for r in chosen}
        free = [r for r in pool if frozenset((r.subject, r.object)) not in pairs]
        seen = {i for r in chosen for i in (r.subject, r.object)}
        linked = [r for r in free if r.subject in seen or r.object in seen]
        cands = linked if linked and rng.random() < 0.75 else free
        if not cands:
            break
        predicates = sorted({r.predicate for r in cands})
        p = _pick(rng, predicates, [PREDICATE_WEIGHTS[q] for q in predicates])
        chosen.append(_pick(rng, [r for r in cands if r.predicate == p]))
    return chosen


@dataclass
class _Caption:
    """The state of one caption being written: word choices, mentions, what the TSG states.

    ``described``: 3DSG id -> canonical attributes used to refer to that object (kind order).
    ``repeated``: labels of which the caption mentions two objects (later mentions keep adjectives).
    """
    objects: dict[int, SGObject]
    described: dict[int, tuple[str, ...]]
    rng: np.random.Generator
    repeated: set[str] = field(default_factory=set)
    words: dict[tuple[int, str], str] = field(default_factory=dict)  # (id, canonical) -> word
    stated: dict[int, list[str]] = field(default_factory=dict)  # id -> attributes, in mention order
    relations: list[tuple[int, str, int, str]] = field(default_factory=list)
    last_subject: int | None = None

    def word(self, i: int, canon: str) -> str:
        """The word this caption uses for object i's noun or attribute ``canon`` (chosen once)."""
        return self.words.setdefault((i, canon), _word(self.rng, canon))

    def noun_phrase(self, i: int, article: str) -> str:
        """Mention object i: "a big red ball" / "the ball"; records a first mention."""
        first = i not in self.stated
        self.stated.setdefault(i, list(self.described[i]))
        attrs = self.described[i]
        if not first and self.objects[i].label not in self.repeated and self.rng.random() < 0.5:
            attrs = ()
        words = sorted((self.word(i, a) for a in attrs), key=lambda w: ADJECTIVE_ORDER.index(
            "noun material" if w in MATERIAL_NOUNS else vocab.ATTRIBUTE_KIND[vocab.canonical_word(w)]))
        words.append(self.word(i, self.objects[i].label))
        if article == "a" and words[0][0] in "aeiou":
            article = "an"
        return " ".join([article, *words])

    def predicative(self, i: int) -> str | None:
        """A colour or size of object i that its description does not state yet, else None."""
        own = attribute_kinds(self.objects[i])
        extra = [own[k] for k in ("colour", "size") if k in own and own[k] not in self.described[i]]
        return extra[0] if extra else None

    def fits(self, t: Template, rels: tuple[SGRelation, ...]) -> dict[str, int] | None:
        """Role -> 3DSG id if template ``t`` can state ``rels`` now, else None."""
        if len(t.roles) != len(rels):
            return None
        roles: dict[str, int] = {}
        for (s, o), r in zip(t.roles, rels):
            for role, i in ((s, r.subject), (o, r.object)):
                if roles.setdefault(role, i) != i:
                    return None
        if len(set(roles.values())) != len(roles) or any(roles[x] in self.stated for x in t.new):
            return None
        if "{p2}" not in t.text and len(rels) == 2 and rels[0].predicate != rels[1].predicate:
            return None
        if not all(set(PHRASES[r.predicate]) & set(k) for r, k in zip(rels, t.kinds)):
            return None
        if "{a:attr}" in t.text and self.predicative(roles["a"]) is None:
            return None
        return roles

    def clause(self, t: Template, rels: tuple[SGRelation, ...], roles: dict[str, int]) -> str:
        """Write template ``t`` stating ``rels`` and record the mentions and relations."""
        phrases = []
        for r, allowed in zip(rels, t.kinds):
            kinds = [k for k in allowed if k in PHRASES[r.predicate]]
            options = PHRASES[r.predicate][_pick(self.rng, kinds, [KIND_WEIGHTS[k] for k in kinds])]
            phrases.append(_pick(self.rng, options, [2.0] + [1.0] * (len(options) - 1)))
        phrases += phrases[:1] * (len(rels) - len(phrases))  # shared wording, no {p2}
        subject = roles["a"]
        pronoun = t.it and subject == self.last_subject and self.rng.random() < 0.6

        def fill(m: re.Match) -> str:
            name, mod = m.groups()
            if name.startswith("p"):
                return phrases[int(name[1]) - 1]
            i = roles[name]
            if mod == "attr":
                attr = self.predicative(i)
                self.stated[i].append(attr)
                return self.word(i, attr)
            if pronoun and m.start() == 0:
                return "it"
            definite = mod == "the" or i in self.stated or (name != "a" and self.rng.random() < 0.3)
            return self.noun_phrase(i, "the" if definite else "a")

        text = SLOT.sub(fill, t.text)
        self.relations += [(r.subject, r.predicate, r.object, p) for r, p in zip(rels, phrases)]
        self.last_subject = None if "{a} and {b}" in t.text else subject  # two subjects: no "it"
        return text

    def graph(self) -> SceneGraph:
        """The TSG of what was written: mentioned objects in order of first mention."""
        ids = {i: k for k, i in enumerate(self.stated)}
        objects = tuple(SGObject(k, self.objects[i].label, tuple(
            sorted(set(self.stated[i]), key=lambda a: ATTRIBUTE_ORDER.index(vocab.ATTRIBUTE_KIND[a]))))
            for i, k in ids.items())
        relations = tuple(SGRelation(ids[s], p, ids[o], w) for s, p, o, w in self.relations)
        return SceneGraph(kind="tsg", objects=objects, relations=relations)


def _sentence_case(text: str) -> str:
    """Capitalise each sentence of ``text`` and end it with a period."""
    return ". ".join(s[:1].upper() + s[1:] for s in text.split(". ")) + "."


def _descriptions(objects: dict[int, SGObject], minimal: dict[int, tuple[str, ...]],
                  rng: np.random.Generator) -> dict[int, tuple[str, ...]]:
    """The attributes each object is referred to by in one caption, in kind order: the ``minimal``
    ones, half the time with one more for variety (colour most often)."""
    out = {}
    for i, base in minimal.items():
        own = attribute_kinds(objects[i])
        missing = [k for k in ATTRIBUTE_ORDER if k in own and own[k] not in base]
        if missing and rng.random() < 0.5:
            base += (own[_pick(rng, missing, [3.0 if k == "colour" else 1.0 for k in missing])],)
        out[i] = tuple(own[k] for k in ATTRIBUTE_ORDER if k in own and own[k] in base)
    return out


def _alone(objects: dict[int, SGObject], i: int, rng: np.random.Generator) -> tuple[str, SceneGraph]:
    """A caption of object i alone, with a random selection of its attributes."""
    own = attribute_kinds(objects[i])
    keep = {"colour": 0.8, "size": 0.5, "material": 0.4}
    stated = tuple(own[k] for k in ATTRIBUTE_ORDER if k in own and rng.random() < keep[k])
    cap = _Caption(objects, {i: stated}, rng)
    text = _pick(rng, ALONE_TEMPLATES).replace("{a}", cap.noun_phrase(i, "a"))
    return _sentence_case(text), cap.graph()


def describe(graph3d: SceneGraph, rng: np.random.Generator,
             n_relations: int | None = None) -> tuple[str, SceneGraph]:
    """One caption of the scene ``graph3d`` (a 3DSG in the world's vocabulary) and its gold TSG.

    ``n_relations``: how many relations to state, capped by what the scene offers; None draws 1-3.
    Zero, or a scene with no relation between objects that can be told apart, gives a caption of
    one object alone and a TSG without relations. TSG object k is the k-th object mentioned.
    """
    if n_relations is not None and n_relations < 0:
        raise ValueError(f"n_relations must be >= 0 or None, got {n_relations}")
    _check(graph3d)
    objects = {o.id: o for o in graph3d.objects}
    if not objects:
        raise ValueError("graph3d has no objects; a caption needs at least one")
    minimal = {i: d for i, o in objects.items()
               if (d := distinguishing(o, graph3d.objects)) is not None}
    pool = list(dict.fromkeys(r for r in graph3d.relations
                              if r.subject in minimal and r.object in minimal))
    n = int(rng.integers(1, 4)) if n_relations is None else n_relations
    chosen = _choose_relations(pool, n, rng)
    if not chosen:
        return _alone(objects, _pick(rng, sorted(minimal or objects)), rng)

    labels = [objects[i].label for i in {j for r in chosen for j in (r.subject, r.object)}]
    cap = _Caption(objects, _descriptions(objects, minimal, rng), rng,
                   repeated={x for x in labels if labels.count(x) > 1})
    text, sentence_has_and, k = "", False, 0
    while k < len(chosen):  # one clause per step, stating one relation or the next two
        groups = [(r,) for r in chosen[k:k + 1]]
        if k + 1 < len(chosen):
            groups += [(chosen[k], chosen[k + 1]), (chosen[k + 1], chosen[k])]
        options = [(t, g, roles) for g in groups for t in TEMPLATES if (roles := cap.fits(t, g))]
        t, g, roles = _pick(rng, options, [t.weight for t, _, _ in options])
        if k:
            joins = list(CONNECTORS) if not sentence_has_and and len(g) == 1 else [". "]
            join = _pick(rng, joins, [CONNECTORS[j] for j in joins])
            text += join
            sentence_has_and = join != ". "
        text += cap.clause(t, g, roles)
        sentence_has_and |= len(g) == 2
        k += len(g)
    return _sentence_case(text), cap.graph()


def describe_many(graph3d: SceneGraph, rng: np.random.Generator,
                  n: int) -> list[tuple[str, SceneGraph]]:
    """``n`` captions of the scene with their TSGs, distinct captions where the scene allows them;
    when it does not (a lone object has few), the distinct ones found are repeated in turn."""
    found: dict[str, SceneGraph] = {}
    for _ in range(20 * n):
        if len(found) == n:
            break
        caption, tsg = describe(graph3d, rng)
        found.setdefault(caption, tsg)
    distinct = list(found.items())
    return [distinct[k % len(distinct)] for k in range(n)] if distinct else []
