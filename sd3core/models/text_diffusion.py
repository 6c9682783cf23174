"""Text diffusion (SI2T): a caption from an image and its 3DSG, by absorbing-state diffusion over words.

A caption is ``max_words`` word tokens over a closed word vocabulary (``caption_words``: every word
the world's caption writer uses, plus "<unk>"), padded with "<pad>"; padding is a class like any
other, so the length is drawn too. All word tokens start masked and ``diffusion.unmask_step``
reveals them a few at a time. The network sees, in one sequence (in-context conditioning):

- the image: its VQ-VAE tokens (``vqvae``), each embedded with its grid cell;
- the 3DSG: ``conditioning.graph_tokens`` (DGAE features, positions and sizes, and each object's
  label and attribute words, so the caption can name what the 3DSG holds; then one token per
  ordered pair of objects with its predicate set, so the caption can state what the 3DSG relates);
- the word tokens, each with its position.

Training drops the 3DSG for ``DROP_GRAPH`` of the samples, so one network also gives the "image
only" ablation.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch
from torch import nn

from ..diffusion import sampling_times, sequence_loss, unmask_step
from ..graph_tokens import DEFAULT_RELATION_SETS
from .conditioning import GEOMETRY_FEATURES, PairTokens, graph_tokens, transformer
from .dgae import Identity

WORD = re.compile(r"[a-z]+|[.,]")
PAD, UNKNOWN = "<pad>", "<unk>"
DROP_GRAPH = 0.15       # training: share of samples without the 3DSG
DEFAULT_STEPS = 16      # sampling steps of the studio and the evaluation


def caption_words() -> tuple[str, ...]:
    """"<pad>", "<unk>", then every lower-case word and punctuation mark the world's caption writer
    uses (``clip.caption_writer_texts``), sorted."""
    from .clip import caption_writer_texts
    return (PAD, UNKNOWN, *sorted({w for text in caption_writer_texts() for w in WORD.findall(text.lower())}))


@dataclass
class Config:
    width: int = 192
    layers: int = 5
    heads: int = 6
    max_words: int = 40            # word tokens of a caption (longer ones are cut)
    grid: int = 8                  # image tokens per side (the VQ-VAE's)
    codebook: int = 1000           # VQ-VAE codes
    graph_width: int = 128         # DGAE feature width
    relation_sets: int = len(DEFAULT_RELATION_SETS)  # predicate sets of a pair (the DGAE's coding)
    words: tuple[str, ...] = field(default_factory=caption_words)

    def __post_init__(self):  # a checkpoint's config comes back with a list
        self.words = tuple(self.words)


def encode_caption(text: str, words: tuple[str, ...], max_words: int) -> torch.Tensor:
    """Caption -> (max_words,) int64 word ids (lower-cased words and . ,; unknown words -> "<unk>",
    padded with "<pad>", cut at ``max_words``)."""
    index = {w: i for i, w in enumerate(words)}
    ids = [index.get(w, 1) for w in WORD.findall(text.lower())][:max_words]
    return torch.tensor(ids + [0] * (max_words - len(ids)), dtype=torch.long)


def decode_caption(ids: torch.Tensor, words: tuple[str, ...]) -> str:
    """(max_words,) word ids -> the caption: padding and "<unk>" dropped, sentences capitalised."""
    out = " ".join(words[i] for i in ids.tolist() if words[i] not in (PAD, UNKNOWN))
    out = re.sub(r" ([.,])", r"\1", out).strip()
    return re.sub(r"(^|[.] )([a-z])", lambda m: m.group(1) + m.group(2).upper(), out)


class TextDiffusion(nn.Module):
    """p(caption words | masked words, image tokens, 3DSG)."""

    def __init__(self, config: Config):
        super().__init__()
        self.config = config
        w = config.width
        self.word = nn.Embedding(len(config.words) + 1, w)                # + the mask
        self.slot = nn.Parameter(torch.randn(config.max_words, w) * 0.02)
        self.image = nn.Embedding(config.codebook, w)
        self.cell = nn.Parameter(torch.randn(config.grid * config.grid, w) * 0.02)
        self.from_graph = nn.Linear(config.graph_width, w)
        self.from_geometry = nn.Linear(GEOMETRY_FEATURES, w)
        self.identity = Identity(w)  # each object's label and attribute words, for the caption to name
        self.pairs = PairTokens(w, config.relation_sets)  # each pair's relations, for the caption to state
        self.null_graph = nn.Parameter(torch.zeros(w))
        self.part = nn.Parameter(torch.randn(3, w) * 0.02)                 # image, 3DSG, words
        self.blocks = transformer(w, config.heads, config.layers)
        self.norm = nn.LayerNorm(w)
        self.head = nn.Linear(w, len(config.words))
        for table in (self.word, self.image):  # as small as the position embeddings, so position is readable
            nn.init.normal_(table.weight, std=0.02)

    def forward(self, words: torch.Tensor, cond: dict[str, torch.Tensor]) -> torch.Tensor:
        """words: (B, max_words) int64 (mask = len(words)); cond: "image" (B, grid**2) int64 VQ
        tokens, "graph" (B, 1 + P, Dg), "graph_valid" (B, 1 + P) bool, "geometry" (B, P, 6),
        "identity" (B, P, 4) int64, "relations" (B, P, P) int64, "use_graph" (B,) bool
        (``dgae.graph_features``). Returns (B, max_words, len(words)) logits of the clean words."""
        image = self.image(cond["image"]) + self.cell
        graph, graph_keep = graph_tokens(self.from_graph, self.from_geometry, self.null_graph, cond,
                                          self.identity, self.pairs)
        text = self.word(words) + self.slot
        h = torch.cat([image + self.part[0], graph + self.part[1], text + self.part[2]], 1)
        keep = torch.cat([torch.ones_like(cond["image"], dtype=torch.bool), graph_keep,
                          torch.ones_like(words, dtype=torch.bool)], 1)
        h = self.blocks(h, src_key_padding_mask=~keep)
        return self.head(self.norm(h[:, -words.shape[1]:]))


def build(config: Config) -> TextDiffusion:
    return TextDiffusion(config)


def loss(model: nn.Module, batch: dict) -> tuple[torch.Tensor, dict]:
    """Masked-diffusion loss over the words (one time t ~ U(0, 1) per caption), the 3DSG dropped
    for ``DROP_GRAPH`` of the samples. Logs the accuracy on masked words."""
    net = model.module if hasattr(model, "module") else model
    clean = batch["words"]
    k = len(net.config.words)
    cond = {**batch["cond"], "use_graph": torch.rand(clean.shape[0], device=clean.device) >= DROP_GRAPH}
    return sequence_loss(lambda noisy: model(noisy, cond), clean, k)


@torch.no_grad()
def sample(model: TextDiffusion, cond: dict[str, torch.Tensor], steps: int = DEFAULT_STEPS,
           generator: torch.Generator | None = None, temperature: float = 0.0) -> list[str]:
    """Draw one caption per condition (as ``forward`` takes them). ``temperature`` 0 takes each
    revealed word's most likely value (the samples then differ by the order of revealing)."""
    b = cond["image"].shape[0]
    k = len(model.config.words)
    words = torch.full((b, model.config.max_words), k, dtype=torch.long, device=cond["image"].device)
    times = sampling_times(steps)
    for t, s in zip(times[:-1], times[1:]):
        words = unmask_step(words, model(words, cond), t, s, generator, temperature=temperature)
    return [decode_caption(w, model.config.words) for w in words.cpu()]


class Examples(torch.utils.data.Dataset):
    """Every caption of every scene as {"words": (max_words,) int64, "cond": {"image", "graph",
    "graph_valid", "geometry", "identity", "relations"}} (``generation_data.scene_examples`` and
    ``image_tokens``)."""

    def __init__(self, tokens: torch.Tensor, scenes: dict, config: Config):
        self.tokens, self.scenes = tokens, scenes
        self.pairs = [(s, c) for s, caps in enumerate(scenes["captions"]) for c in range(len(caps))]
        self.words = torch.stack([encode_caption(scenes["captions"][s][c], config.words, config.max_words)
                                  for s, c in self.pairs])

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> dict:
        s = self.pairs[i][0]
        sc = self.scenes
        return {"words": self.words[i],
                "cond": {"image": self.tokens[s].long().flatten(), "graph": sc["graph"][s].float(),
                         "graph_valid": sc["graph_valid"][s], "geometry": sc["geometry"][s].float(),
                         "identity": sc["identity"][s], "relations": sc["relations"][s]}}


def load_data(data_dir: str, split: str, limit: int = 0) -> Examples:
    """Every caption of the first ``limit`` scenes (0: all) of ``split``, with its image's tokens and
    its gold 3DSG's features."""
    from ..generation_data import image_tokens, scene_examples, split_size
    n = limit or split_size(data_dir, split)
    return Examples(image_tokens(data_dir, split, n), scene_examples(data_dir, split, n), Config())


@torch.no_grad()
def evaluate(model: TextDiffusion, data_dir: str, split: str, limit: int, steps: int = DEFAULT_STEPS,
             seed: int = 0, batch: int = 100, engine=None) -> dict:
    """SI2T on the first ``limit`` scenes of ``split``: the detector reads each render (VSG),
    ``engine``'s graph diffusion (default: a new Engine's, the shipped one) lifts it, and a caption is drawn from image + 3DSG (``full``) and from
    the image alone (``image_only``); the scene's first reference caption is the ``gold`` row.

    Per row: ``relation_correct`` (relations the caption states, parsed by ``textparse``, that hold
    in the gold 3DSG, ``evaluate.relation_correctness``), ``sg_f1`` (``evaluate.scene_graph_f1``
    against the references), ``bleu4`` and ``cider`` (generated rows against all 5 references, the
    gold row against the other 4).
    """
    import numpy as np

    from ..evaluate import caption_scores, relation_correctness, scene_graph_f1
    from ..graph import SceneGraph
    from ..models.graph_diffusion import lift
    from ..pipeline import Engine
    from ..textparse import parse_texts
    from ..world.build import load_split
    engine = engine or Engine()
    engine.set_model("text_diffusion", model)
    arrays, records = load_split(data_dir, split, ("rgb",))
    records, images = records[:limit], list(arrays["rgb"][:limit])
    references = [[c["text"] for c in r["captions"]] for r in records]
    gold = [SceneGraph.from_dict(r["graph3d"]) for r in records]
    vsgs = [d.graph for i in range(0, len(images), batch) for d in engine.detect(images[i:i + batch])]
    generator = torch.Generator(device=engine.device).manual_seed(seed)
    graphs = [g for i in range(0, len(vsgs), 256)
              for g in lift(engine.model("graph_diffusion"), vsgs[i:i + 256], 16, generator)]
    rows = {"gold": ([refs[0] for refs in references], [refs[1:] for refs in references])}
    for row, use_graph in (("full", True), ("image_only", False)):
        captions = [c for i in range(0, len(images), batch)
                    for c in engine.generate_captions(graphs[i:i + batch], images[i:i + batch], steps, seed + i, use_graph)]
        rows[row] = (captions, references)
    parsed_refs = [parse_texts(refs) for refs in references]
    report = {}
    for row, (captions, refs) in rows.items():
        parsed = parse_texts(captions)
        correct = [ok for tsg, g in zip(parsed, gold) for ok in relation_correctness(tsg, g)]
        report[f"{row}_relation_correct"] = float(np.mean(correct)) if correct else 0.0
        report[f"{row}_relations_per_caption"] = len(correct) / len(captions)
        report[f"{row}_sg_f1"] = scene_graph_f1(parsed, parsed_refs)
        report.update({f"{row}_{k}": v for k, v in caption_scores(captions, refs).items()})
    return {k: round(v, 4) for k, v in report.items()}
