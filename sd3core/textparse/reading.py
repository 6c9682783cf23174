"""Reading one spaCy ``Doc``: which nouns name objects (mentions) and what the text says between them
(links), by rules over the dependency parse. Objects and coreference are the next step
(``assemble``); nothing here decides which mentions are the same object.

The rules, each a short function (mentions in ``mentions``, links below):

- A mention is a noun (or "it", "one", ...) heading a noun phrase; its label is its lemma with its
  compounds ("traffic light"), its attributes the adjectives, numbers and material nouns in front
  ("two", "red", "metal"). Not mentions: nouns inside a multiword preposition ("in FRONT of"),
  places in the picture ("on the LEFT", "in the DISTANCE": an attribute of what they place), the
  picture itself ("in the PICTURE", "the PHOTO shows"), colours after "in" ("the boy in YELLOW").
  A group noun ("a GROUP of people") hands its mention to the noun after "of".
- A link is read from each preposition's object: the preposition, widened to the whole multiword
  expression ("to the left of", "next to"), mapped with ``lexicon.to_predicate``; its subject is
  what the expression is said of (``_subject``: the noun it modifies, or the subject of its clause,
  through copulas, existentials, inversions, passives, relative clauses and coordinated verbs).
  Coordinated subjects and objects give one link each; "each other" links the coordinated subjects.
  "A with B inside" places B in A. A preposition stranded at the end of a relative clause takes
  the noun the clause modifies as its object ("the water the boats are IN").
  After a verb of holding or placing, the expression places the verb's object ("holding a cup IN
  his hand": the cup is in the hand). A place relative to a part is one relative to its whole too:
  "next to the giraffe's head" also links the giraffe, "under the trunk of the tree" the tree, "a
  bottle of shampoo next to" the shampoo (``_owner_pairs``; not "in" a whole, nor for pictures).
- A verb with a direct object gives a link with the verb as predicate ("holding"), or with the
  predicate it states ("riding": on), and "wearing" one with "in" as well; so does a possessive
  ("the man's face": face "of" man).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from spacy.tokens import Doc, Token

from . import lexicon as lx
from .mentions import (RECIPROCALS, Mention, in_phrase, is_frame_subject, is_nominal, mention_at,
                       mention_token, placement)
from .repair import infinitive_slip

SUBJECT_DEPS = ("nsubj", "nsubjpass")
# Dependencies through which a phrase's subject is looked for higher up the tree.
CLIMB_DEPS = frozenset({"conj", "xcomp", "advcl", "acomp", "advmod", "prep", "pcomp", "csubj",
                        "oprd", "npadvmod", "dep", "amod", "attr", "ccomp", "appos", "pobj"})
MAX_CLIMB = 8  # tree levels


@dataclass(frozen=True)
class Link:
    """What the text says between two mentions, by their head token indices."""
    subject: int
    predicate: str
    object: int
    phrase: str


@dataclass
class Reading:
    """Mentions (head token -> mention, in text order), links, and attributes said of a token
    elsewhere in the sentence ("is red", "on the left")."""
    mentions: dict[int, Mention] = field(default_factory=dict)
    links: list[Link] = field(default_factory=list)
    said_of: dict[int, list[str]] = field(default_factory=dict)
    refers: dict[int, int] = field(default_factory=dict)  # pronoun token -> its antecedent's token


def _lower(tokens) -> str:
    """The lower-case text of a token sequence, single-spaced."""
    return " ".join(t.lower_ for t in tokens if not t.is_space)


def _conjuncts(tok: Token) -> list[Token]:
    """``tok`` and the nouns coordinated with it after it ("a cube, a ball and a cone")."""
    return [tok] + [c for c in tok.conjuncts if c.i > tok.i and is_nominal(c)]


def _first(tok: Token, deps) -> Token | None:
    return next((c for c in tok.children if c.dep_ in deps), None)


def _names_object(tok: Token) -> bool:
    """Whether ``tok`` can stand for an object: a nominal outside a multiword preposition, or a
    group noun ("a GROUP of people")."""
    if tok.lemma_.lower() in lx.COLLECTIVE_NOUNS and tok.pos_ == "NOUN":
        return True
    return is_nominal(tok) and not in_phrase(tok) and not placement(tok)


def _subject(tok: Token, avoid: int = -1, depth: int = 0) -> Token | None:
    """What a phrase attached to ``tok`` is said of: ``tok`` itself if nominal, else the subject of
    its clause ("the ball THAT is on": the noun the relative clause modifies; "WE see a ball on":
    the seen object; "Behind the cone is A BALL", "On the box sits A BALL": the thing placed).
    Token ``avoid`` (the phrase's own object) is never the answer."""
    if depth > MAX_CLIMB:
        return None
    if _names_object(tok):
        return tok
    subject = _first(tok, SUBJECT_DEPS)
    if subject is not None:
        if subject.lower_ in lx.RELATIVE_PRONOUNS:
            return tok.head if tok.dep_ in ("relcl", "acl") else None
        if subject.lower_ in lx.OBSERVER_PRONOUNS or is_frame_subject(subject):
            return _first(tok, ("dobj", "attr"))
        if _names_object(subject) and subject.i != avoid:
            return subject
    named = next((c for c in tok.lefts if c.dep_ in ("compound", "npadvmod") and is_nominal(c)), None)
    heads_phrase = tok.pos_ in ("VERB", "ADP") or tok.lower_ in lx.HEAD_WORDS or in_phrase(tok)
    if heads_phrase and named is not None and named.i != avoid:
        return named  # "catcher kneeling behind batter", "a ball right of the cube", "is a glass above"
    placed = _first(tok, ("attr",))
    for aux in (c for c in tok.children if c.dep_ in ("aux", "auxpass") and placed is None):
        placed = _first(aux, ("attr",))  # "Left of the cone is a pyramid": attr below "is"
    if placed is None and (subject is not None or any(c.dep_ in ("prep", "advmod") and c.i < tok.i
                                                      for c in tok.children)):
        placed = _first(tok, ("dobj",))  # inverted: "On the box sits a ball"
    if placed is not None and placed.i != avoid:
        return placed
    if tok.dep_ in ("relcl", "acl"):
        return tok.head
    if tok.dep_ in CLIMB_DEPS and tok.head.i != tok.i:
        return _subject(tok.head, avoid, depth + 1)
    return None


def is_clause_subject(tok: Token) -> bool:
    """Whether ``tok`` is what its clause is about: its subject, the thing placed by an existential
    or inverted clause ("there is A BALL", "on the box sits A BALL"), or a fragment's head noun."""
    if tok.dep_ == "ROOT":
        return is_nominal(tok)
    if tok.dep_ not in SUBJECT_DEPS + ("attr", "dobj"):
        return False
    subject = _subject(tok.head)
    return subject is not None and subject.i == tok.i


def _expression_start(prep: Token) -> Token:
    """The first word of the spatial expression ending in ``prep``: "TO the left of", "NEXT to"."""
    start = prep
    while (start.head.lemma_.lower() in lx.RELATIONAL_NOUNS and start.head.dep_ == "pobj"
           and start.lower_ in ("of", "to") and start.head.head.i < start.head.i):
        start = start.head.head
    head, before = start.head, prep.doc[start.i - 1] if start.i else start
    if head.lower_ in lx.HEAD_WORDS and head.i < start.i and all(
            t.lower_ in lx.PHRASE_FILLERS for t in prep.doc[head.i + 1:start.i]):
        start = head
    elif (before.lower_ in lx.HEAD_WORDS and before.dep_ == "advmod" and before.head.i == head.i
          and start.lower_ in ("to", "of")):  # "parked NEXT | to": "next" hung on the verb
        start = before
    return start


def _governor(start: Token) -> Token:
    """The token the expression beginning at ``start`` is attached to ("left" in "that is left of"
    and in "a ball left of" carries its own subject and is its own governor, as does "above" in
    "there is a glass above", the model hanging "glass" below it)."""
    own = _first(start, SUBJECT_DEPS + ("compound",))
    named = next((c for c in start.lefts if c.dep_ == "npadvmod" and is_nominal(c)), None)
    return start if own is not None or named is not None else start.head


def _relation(prep: Token, start: Token, gov: Token) -> tuple[str, str]:
    """(predicate, phrase) of the expression from ``start`` to ``prep``; the phrase is the words
    from ``start`` to ``prep``, after the governing verb when there is one ("parked behind")."""
    tokens = [t for t in prep.doc[start.i:prep.i + 1] if not t.is_space]
    verb = gov if (gov.pos_ == "VERB" and gov.i < start.i and gov.lemma_.lower() != "be"
                   and gov.lemma_.lower() not in lx.PERCEPTION_VERBS) else None
    lead = [verb.lower_] if verb is not None else []
    phrase = " ".join(lead + [t.lower_ for t in tokens])
    if prep.dep_ == "agent":  # passive "by": a place after "parked" or "seen", else the doer
        positional = gov.lemma_.lower() in lx.POSITION_VERBS | lx.PERCEPTION_VERBS
        return ("next to" if positional else phrase), phrase
    key = " ".join(lead + [t.lemma_.lower() if t.pos_ == "NOUN" else t.lower_ for t in tokens])
    return (lx.to_predicate(key) or phrase), phrase  # nouns as lemmas: "in SIDES of" -> "in side of"


def _say(reading: Reading, tok: Token | None, words: str) -> None:
    """Record an attribute said of ``tok`` elsewhere in the sentence."""
    if tok is not None:
        reading.said_of.setdefault(tok.i, []).append(words)


def _subjects(gov: Token, mentions: dict[int, Mention], spread: bool, avoid: int = -1) -> list[Token]:
    """The mention tokens a phrase governed by ``gov`` is said of, coordination spread out.

    With ``spread``, a noun fragment "a cube and a ball on the table" puts both on the table: a
    phrase after the last conjunct of a coordination heading the sentence goes with every conjunct.
    """
    subject = _subject(gov, avoid)
    if subject is None:
        return []
    root = subject
    if (spread and subject.dep_ == "conj" and subject.head.dep_ == "ROOT"
            and is_nominal(subject.head) and _conjuncts(subject.head)[-1].i == subject.i):
        root = subject.head
    found = [mention_token(t, mentions) for t in _conjuncts(root)]
    return [t for t in found if t is not None]


def _read_preposition(prep: Token, obj: Token, reading: Reading) -> None:
    """The links (or attributes) of preposition ``prep`` with object ``obj``."""
    start = _expression_start(prep)
    gov = _governor(start)
    where = placement(obj)
    if where in ("place", "colour"):
        subject = _subject(gov)
        _say(reading, subject, _lower(obj.doc[start.i:obj.i + 1]))
        return
    if where == "frame":
        return
    if start.i == prep.i and prep.lower_ == "of" and gov.lemma_.lower() in lx.COLLECTIVE_NOUNS:
        return  # "a group OF people" is one mention
    held = _first(gov, ("dobj",)) if gov.lemma_.lower() in lx.HOLDING_VERBS else None
    if held is not None and held.i == obj.i:  # "holding a cup IN his hand": the cup is in it
        held = None
    subjects = _subjects(held if held is not None else gov, reading.mentions, True, obj.i)
    predicate, phrase = _relation(prep, start, gov)
    if obj.lower_ == "eachother" or (obj.lower_ in RECIPROCALS and obj.i
                                     and obj.doc[obj.i - 1].lower_ in ("each", "one")):
        pairs = list(zip(subjects, subjects[1:]))  # "A and B are next to each other"
    else:
        objects = [t for t in (mention_token(c, reading.mentions) for c in _conjuncts(obj)) if t]
        subjects = _held_with(subjects, prep, obj, reading.mentions)
        pairs = [(s, o) for s in subjects for o in objects]
        pairs += _owner_pairs(pairs, predicate, reading.mentions)
        _refer_to_owner(obj, subjects, reading)
    reading.links += [Link(s.i, predicate, o.i, phrase) for s, o in pairs]


def _owners(tok: Token, mentions: dict) -> list[Token]:
    """The mentions a thing is part or content of: its possessor ("on the man's HEAD": the man)
    and the noun after its "of" ("under the TRUNK of the tree", "a BOTTLE of shampoo"); a place
    relative to the part is one relative to the whole. None for pictures ("a picture of a man")."""
    if tok.lemma_.lower() in lx.REPRESENTATION_NOUNS:
        return []
    owners = [c for c in tok.children if c.dep_ == "poss" and c.lower_ not in lx.POSSESSIVE_PRONOUNS]
    owners += [g for c in tok.children if c.dep_ == "prep" and c.lower_ == "of"
               for g in c.children if g.dep_ == "pobj"]
    found = [mention_token(o, mentions) for o in owners]
    return [o for o in found if o is not None and o.i != tok.i]


def _owner_pairs(pairs: list[tuple[Token, Token]], predicate: str, mentions: dict) -> list[tuple[Token, Token]]:
    """The (subject, object) pairs a spatial phrase relates besides ``pairs``, through the wholes
    its ends are part of (``_owners``): "a basket next to the giraffe's head" places the basket next
    to the giraffe, "the window of the building in the square" the building in the square. Not
    into a whole: a napkin "in the man's hand" is not "in" the man."""
    if lx.to_predicate(predicate) is None:
        return []
    out = []
    for s, o in pairs:
        objects = [o] + (_owners(o, mentions) if predicate != "in" else [])
        out += [(s2, o2) for s2 in [s, *_owners(s, mentions)] for o2 in objects
                if (s2, o2) != (s, o) and s2.i != o2.i]
    return out


def _held_with(subjects: list[Token], prep: Token, pronoun: Token, mentions: dict) -> list[Token]:
    """In "A with B PREP it" whose "PREP it" the parser hung on A ("a bench with snow UNDER IT"),
    the relation is B's; ``_refer_to_owner`` then makes "it" A. Other ``subjects`` are kept."""
    if pronoun.lower_ not in lx.REFERRING_PRONOUNS or len(subjects) != 1:
        return subjects
    held = [mention_token(c, mentions) for w in subjects[0].children if w.lower_ == "with" and w.i < prep.i
            for c in w.children if c.dep_ == "pobj"]
    return held if len(held) == 1 and held[0] is not None else subjects


def _refer_to_owner(pronoun: Token, subjects: list[Token], reading: Reading) -> None:
    """In "A with B PREP it" and "A has B PREP it", "it" is A ("a table with a chair next to IT",
    "a chair sitting under a table with a frame behind IT": the chair)."""
    if pronoun.lower_ not in lx.REFERRING_PRONOUNS or len(subjects) != 1:
        return
    held = subjects[0]
    if held.dep_ == "pobj" and held.head.lower_ == "with":
        owner = _subject(held.head.head, pronoun.i)
    elif held.dep_ == "dobj" and held.head.lemma_.lower() == "have":
        owner = _subject(held.head, pronoun.i)
    else:
        return
    owner = mention_token(owner, reading.mentions)
    if owner is not None and owner.i != held.i:
        reading.refers[pronoun.i] = owner.i


def _loose_object(prep: Token) -> Token | None:
    """The object of a preposition the parser left without one (or with a bare adjective: "above
    a LITTLE"), attaching the noun after it to the verb instead ("a house is shown behind a BOY",
    "Above a little cyan CYLINDER sits a ball")."""
    if prep.pos_ != "ADP" or any(c.dep_ == "prep" or (c.dep_ in ("pobj", "pcomp") and (
            is_nominal(c) or c.n_lefts + c.n_rights or placement(c))) for c in prep.children):
        return None
    for tok in prep.doc[prep.i + 1:]:
        if tok.head.i == prep.head.i and is_nominal(tok):
            return tok
        if tok.pos_ not in ("DET", "ADJ", "NUM", "ADV") and tok.dep_ not in ("compound", "pobj"):
            return None
    return None


def _stranded_object(prep: Token) -> Token | None:
    """The object of a preposition left at the end of a relative clause: the noun the clause
    modifies ("the water the boats are IN", "a wall that the giraffes stand in front OF")."""
    if prep.dep_ != "prep" or any(c.dep_ in ("pobj", "pcomp") for c in prep.children):
        return None
    tok = prep.head
    for _ in range(MAX_CLIMB):
        if tok.dep_ == "relcl":
            return tok.head if is_nominal(tok.head) else None
        if tok.head.i == tok.i:
            return None
        tok = tok.head
    return None


def _read_trailing_adverb(word: Token, reading: Reading) -> None:
    """"A with B INSIDE" ("a jar with paper inside", "a car with a bike behind"): a spatial word
    without an object after "A with B" places B relative to A."""
    predicate = lx.to_predicate(word.lower_)
    if predicate is None or word.dep_ not in ("advmod", "prep") or any(word.children):
        return
    owner = word.head if word.head.i in reading.mentions else None
    with_ = next((c for c in owner.children if c.dep_ == "prep" and c.lower_ == "with"
                  and c.i < word.i), None) if owner is not None else None
    held = _first(with_, ("pobj",)) if with_ is not None else None
    if held is not None and held.i in reading.mentions:
        reading.links.append(Link(held.i, predicate, owner.i, word.lower_))


def _read_infinitive_slip(to: Token, reading: Reading) -> None:
    """"bike next to field" read as "next" + infinitive "to field": the link bike - next to - field."""
    obj = infinitive_slip(to)
    head = to.doc[to.i - 1]
    subject = mention_token(_subject(head.head), reading.mentions) if head.head.i != head.i else None
    obj = mention_token(obj, reading.mentions)
    if subject is not None and obj is not None:
        phrase = f"{head.lower_} to"
        reading.links.append(Link(subject.i, lx.to_predicate(phrase) or phrase, obj.i, phrase))


def _read_verb(verb: Token, reading: Reading) -> None:
    """Links of a verb with a direct object: "a man HOLDING an umbrella"."""
    objects = [d for c in verb.children if c.dep_ == "dobj" for d in _conjuncts(c)]
    objects = [t for t in (mention_token(o, reading.mentions) for o in objects) if t is not None]
    if not objects or verb.lemma_.lower() == "be":
        return
    particle = "".join(f" {c.lower_}" for c in verb.children if c.dep_ == "prt")
    phrase = verb.lower_ + particle
    predicates = [lx.VERB_PREDICATES.get(verb.lemma_.lower(), phrase)]
    predicates += [p for p in [lx.VERB_IMPLIED_PREDICATES.get(verb.lemma_.lower())] if p]
    for s in _subjects(verb, reading.mentions, spread=False):
        reading.links += [Link(s.i, p, o.i, phrase) for p in predicates for o in objects if o.i != s.i]


def _read_predicative(adj: Token, reading: Reading) -> None:
    """"The ball is RED": an adjective after a copula is an attribute of the clause's subject."""
    if adj.lower_ in lx.HEAD_WORDS or any(c.dep_ == "prep" for c in adj.children):
        return
    subject = _subject(adj.head)
    for word in [adj] + [c for c in adj.conjuncts if c.i > adj.i and c.pos_ == "ADJ"]:
        _say(reading, subject, word.lower_)


def read(doc: Doc) -> Reading:
    """Mentions, links and said-of attributes of a parsed Doc."""
    reading = Reading()
    for tok in doc:
        m = mention_at(tok)
        if m is not None:
            reading.mentions[tok.i] = m
    for tok in doc:
        loose = _loose_object(tok) if tok.dep_ in ("prep", "advmod") else None
        loose = _stranded_object(tok) if loose is None else loose
        reciprocal = tok.lower_ in RECIPROCALS
        if tok.dep_ in ("pobj", "pcomp") and (is_nominal(tok) or reciprocal) and not in_phrase(tok):
            _read_preposition(tok.head, tok, reading)
        elif loose is not None:
            _read_preposition(tok, loose, reading)
        elif tok.dep_ in ("advmod", "prep") and not any(tok.children):
            _read_trailing_adverb(tok, reading)
        elif infinitive_slip(tok) is not None:
            _read_infinitive_slip(tok, reading)
        elif tok.pos_ == "VERB":
            _read_verb(tok, reading)
        elif tok.dep_ == "acomp" and tok.pos_ == "ADJ":
            _read_predicative(tok, reading)
        elif tok.dep_ == "poss" and tok.i in reading.mentions and tok.head.i in reading.mentions:
            reading.links.append(Link(tok.head.i, "of", tok.i, "of"))
    return reading
