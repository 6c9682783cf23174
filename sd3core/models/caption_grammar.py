"""Caption grammar (SI2T): the word trigrams of the training captions, to tell a fluent generated
caption from a garbled one ("There is an a green cone.", "… is in front of of a white cone.").

A count model, fitted by counting instead of gradient steps (``fit``): every caption of the
training split is read as tokens (``caption_tokens``: lower-case words and . , each object mention
as one ``OBJECT`` token, so any object may stand where one stood in training), and each trigram of
them is kept. A caption is fluent when every trigram of it was seen in training (``unseen`` counts
the others). The Engine's caption verification prefers, among the captions that agree equally with
the 3DSG, a fluent one, and draws again for a pair whose best caption is not
(``Engine.generate_captions``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..referring import WORD, mentions

START, END, OBJECT, UNKNOWN = "<s>", "</s>", "<object>", "<unk>"
ORDER = 3   # tokens per n-gram


def caption_tokens(text: str) -> list[str]:
    """``text`` as the grammar reads it: two ``START``, the lower-case words and . , with each object
    mention (attribute words ending in a shape word, ``referring.mentions``) as one ``OBJECT``, then
    ``END``."""
    words = WORD.findall(text.lower())
    tokens, last = [], 0
    for start, end, *_ in mentions(words):
        tokens += [*words[last:start], OBJECT]
        last = end
    return [START] * (ORDER - 1) + tokens + words[last:] + [END]


def _ngrams(tokens: list[str]) -> set[tuple[str, ...]]:
    return {tuple(tokens[i:i + ORDER]) for i in range(len(tokens) - ORDER + 1)}


@dataclass
class Config:
    tokens: tuple[str, ...] = (UNKNOWN,)   # every token of the training captions, sorted, after "<unk>"
    size: int = 0                          # trigrams seen in training

    def __post_init__(self):  # a checkpoint's config comes back with a list
        self.tokens = tuple(self.tokens)


class CaptionGrammar(nn.Module):
    """The trigrams seen in training, as a (size, 3) int64 buffer of indices into ``config.tokens``."""

    def __init__(self, config: Config):
        super().__init__()
        self.config = config
        self.register_buffer("trigrams", torch.zeros(config.size, ORDER, dtype=torch.long))

    def unseen(self, texts: list[str]) -> list[int]:
        """Per caption, how many of its distinct trigrams were not seen in training (0: fluent)."""
        words = self.config.tokens
        seen = {tuple(words[i] for i in row) for row in self.trigrams.tolist()}
        return [len(_ngrams(caption_tokens(text)) - seen) for text in texts]


def build(config: Config) -> CaptionGrammar:
    return CaptionGrammar(config)


def from_captions(texts: list[str]) -> CaptionGrammar:
    """The grammar of ``texts``: every trigram they contain."""
    grams = set().union(*(_ngrams(caption_tokens(t)) for t in texts))
    tokens = (UNKNOWN, *sorted({w for g in grams for w in g}))
    index = {w: i for i, w in enumerate(tokens)}
    model = CaptionGrammar(Config(tokens, len(grams)))
    model.trigrams.copy_(torch.tensor([[index[w] for w in g] for g in sorted(grams)], dtype=torch.long)
                         .view(len(grams), ORDER))
    return model


def _captions(data_dir: str, split: str, limit: int) -> list[str]:
    from ..world.build import load_split
    _, records = load_split(data_dir, split, ())
    return [c["text"] for r in records[:limit or None] for c in r["captions"]]


def fit(data_dir: str, split: str, limit: int = 0) -> CaptionGrammar:
    """The grammar of every caption of the first ``limit`` scenes (0: all) of ``split``."""
    return from_captions(_captions(data_dir, split, limit))


def evaluate(model: CaptionGrammar, data_dir: str, split: str, limit: int) -> dict:
    """On the captions of the first ``limit`` scenes of ``split`` (held out): ``gold_fluent``, the share
    the grammar judges fluent (a false alarm on each other one), and ``trigrams``, how many it holds."""
    unseen = model.unseen(_captions(data_dir, split, limit))
    return {"gold_fluent": round(sum(u == 0 for u in unseen) / max(len(unseen), 1), 4),
            "trigrams": model.config.size}
