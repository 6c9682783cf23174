"""Text diffusion (SI2T): a caption from an image and its 3DSG, by absorbing-state diffusion over words.

A caption is ``max_words`` word tokens over a closed word vocabulary (``caption_words``: every word
the world's caption writer uses, "<unk>", and one slot token "<oK>" per 3DSG object), padded with
"<pad>"; padding is a class like any other, so the length is drawn too. All word tokens start masked
and ``diffusion.unmask_step`` reveals them a few at a time. The network sees, in one sequence
(in-context conditioning):

- the image: its VQ-VAE tokens (``vqvae``), each embedded with its grid cell;
- the 3DSG: ``conditioning.graph_tokens`` (DGAE features, positions and sizes, and each object's
  label and attribute words, so the caption can name what the 3DSG holds; then one token per
  ordered pair of objects with its predicate set, so the caption can state what the 3DSG relates);
- the word tokens, each with its position.

With the 3DSG, the network names an object by pointing at it (Neural Baby Talk's slots, a pointer
network's scores): it learns captions whose every mention of object K is "<oK>"
(``referring.slot_caption``); the score of "<oK>" at a word position is the dot product of that
position's output with object K's output (so an object is found by what it is, not by its index),
a revealed "<oK>" is embedded as object K's condition token, and decoding writes object K's words
from the 3DSG (``referring.object_name``). A relation then joins two objects the network pointed
at, whose words cannot drift to the scene's most salient object.

Training drops the 3DSG for ``DROP_GRAPH`` of the samples, with the caption's own words as the
target, so one network also gives the "image only" ablation.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch
from torch import nn

from ..diffusion import sampling_times, sequence_loss, unmask_step
from ..generation_data import MAX_OBJECTS
from ..graph_tokens import DEFAULT_RELATION_SETS
from ..referring import SLOT, WORD, object_name
from .conditioning import GEOMETRY_FEATURES, PairTokens, Transformer, graph_tokens
from .dgae import Identity

PAD, UNKNOWN = "<pad>", "<unk>"
DROP_GRAPH = 0.15       # training: share of samples without the 3DSG
DEFAULT_STEPS = 8       # sampling steps of the Engine and the evaluation (bench/caption_candidates.py)


def caption_words() -> tuple[str, ...]:
    """"<pad>", "<unk>", every lower-case word and punctuation mark the world's caption writer uses
    (``clip.caption_writer_texts``), sorted, then the slot tokens "<o0>" ... of ``MAX_OBJECTS`` objects."""
    from .clip import caption_writer_texts
    words = sorted({w for text in caption_writer_texts() for w in WORD.findall(text.lower())})
    return (PAD, UNKNOWN, *words, *(SLOT.format(k) for k in range(MAX_OBJECTS)))


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

    @property
    def first_slot(self) -> int:
        """The word id of "<o0>"; "<oK>" is ``first_slot + K``."""
        return self.words.index(SLOT.format(0))

    @property
    def slots(self) -> int:
        return len(self.words) - self.first_slot


def encode_caption(text: str | list[str], words: tuple[str, ...], max_words: int) -> torch.Tensor:
    """Caption (or its words, as ``referring.slot_caption`` gives them) -> (max_words,) int64 word
    ids (lower-cased words and . ,; unknown words -> "<unk>", padded with "<pad>", cut at ``max_words``)."""
    index = {w: i for i, w in enumerate(words)}
    tokens = WORD.findall(text.lower()) if isinstance(text, str) else text
    ids = [index.get(w, 1) for w in tokens][:max_words]
    return torch.tensor(ids + [0] * (max_words - len(ids)), dtype=torch.long)


def decode_caption(ids: torch.Tensor, words: tuple[str, ...], names: list[str] = ()) -> str:
    """(max_words,) word ids -> the caption: "<oK>" replaced by ``names[K]`` (dropped if there is
    none), padding and "<unk>" dropped, "a"/"an" fitted to the next word, an unfinished last sentence
    (no full stop) dropped after a finished one, sentences capitalised."""
    slot = {SLOT.format(k): name for k, name in enumerate(names)}
    out = " ".join(slot.get(words[i], words[i]) for i in ids.tolist()
                   if words[i] not in (PAD, UNKNOWN) and (words[i] in slot or not words[i].startswith("<")))
    out = re.sub(r"\b(a|an) (\w)", lambda m: ("an " if m.group(2) in "aeiou" else "a ") + m.group(2), out)
    out = re.sub(r" ([.,])", r"\1", out).strip()
    if not out.endswith(".") and "." in out:
        out = out[:out.rindex(".") + 1]
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
        self.blocks = Transformer(w, config.heads, config.layers)
        self.norm = nn.LayerNorm(w)
        self.head = nn.Linear(w, config.first_slot)                         # the words but the slots
        self.query, self.key = nn.Linear(w, w), nn.Linear(w, w)           # pointer scores of the slots
        self.from_object = nn.Linear(w, w)                                 # a revealed slot's embedding
        for table in (self.word, self.image):  # as small as the position embeddings, so position is readable
            nn.init.normal_(table.weight, std=0.02)

    def allowed_words(self, cond: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, len(words)) bool: every word, and "<oK>" for each object K of the 3DSG when it is used."""
        c, valid = self.config, cond["graph_valid"][:, 1:1 + self.config.slots] & cond["use_graph"][:, None]
        allowed = torch.ones(valid.shape[0], len(c.words), dtype=torch.bool, device=valid.device)
        allowed[:, c.first_slot:] = False
        allowed[:, c.first_slot:c.first_slot + valid.shape[1]] = valid
        return allowed

    def object_features(self, cond: dict[str, torch.Tensor]) -> torch.Tensor:
        """The network's own reading of a 3DSG beside its image: its final hidden state at each
        object token, (B, P, W), for a fully masked caption (cond as ``forward`` takes it; the dual
        term's targets, ``generation_data.dual_targets``)."""
        b, g = cond["image"].shape
        masked = torch.full((b, self.config.max_words), len(self.config.words), dtype=torch.long,
                            device=cond["image"].device)
        return self._hidden(masked, cond)[0][:, g + 2:g + 2 + cond["geometry"].shape[1]]  # after null, scene

    def _hidden(self, words: torch.Tensor, cond: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """The final hidden states (B, grid**2 + 2 + P [+ P * (P - 1)] + max_words, W) of [image,
        null 3DSG, scene, objects, pairs, words], and which of them may be attended to (same length, bool)."""
        c = self.config
        image = self.image(cond["image"]) + self.cell
        graph, graph_keep = graph_tokens(self.from_graph, self.from_geometry, self.null_graph, cond,
                                          self.identity, self.pairs)
        s = min(cond["geometry"].shape[1], c.slots)      # objects a slot can name
        slot = (words >= c.first_slot) & (words < len(c.words))
        k = (words - c.first_slot).clamp(0, max(s - 1, 0))[..., None].expand(-1, -1, c.width)
        named = self.from_object(graph[:, 2:2 + s].gather(1, k)) if s else torch.zeros_like(k, dtype=graph.dtype)
        text = torch.where(slot[..., None], named, self.word(words)) + self.slot
        h = torch.cat([image + self.part[0], graph + self.part[1], text + self.part[2]], 1)
        keep = torch.cat([torch.ones_like(cond["image"], dtype=torch.bool), graph_keep,
                          torch.ones_like(words, dtype=torch.bool)], 1)
        return self.norm(self.blocks(h, keep)), keep

    def forward(self, words: torch.Tensor, cond: dict[str, torch.Tensor]) -> torch.Tensor:
        """words: (B, max_words) int64 (mask = len(words)); cond: "image" (B, grid**2) int64 VQ
        tokens, "graph" (B, 1 + P, Dg), "graph_valid" (B, 1 + P) bool, "geometry" (B, P, 6),
        "identity" (B, P, 4) int64, "relations" (B, P, P) int64, "use_graph" (B,) bool
        (``dgae.graph_features``). Returns (B, max_words, len(words)) logits of the clean words,
        "<oK>" at -1e4 where object K is padding, past P, or the 3DSG is not used."""
        c, n, g = self.config, words.shape[1], cond["image"].shape[1]
        s = min(cond["geometry"].shape[1], c.slots)      # objects a slot can name
        objects = slice(g + 2, g + 2 + s)                # after the null and scene tokens
        h, keep = self._hidden(words, cond)
        pointer = self.query(h[:, -n:]) @ self.key(h[:, objects]).transpose(1, 2) / c.width ** 0.5
        pointer = pointer.masked_fill(~keep[:, None, objects], -1e4)
        return torch.cat([self.head(h[:, -n:]), pointer, pointer.new_full((*pointer.shape[:2], c.slots - s), -1e4)], -1)


def build(config: Config) -> TextDiffusion:
    return TextDiffusion(config)


def loss(model: nn.Module, batch: dict) -> tuple[torch.Tensor, dict]:
    """Masked-diffusion loss over the words (one time t ~ U(0, 1) per caption): the caption with
    object slots, or, for the ``DROP_GRAPH`` of the samples drawn without the 3DSG, its own words.
    Logs the accuracy on masked words."""
    net = model.module if hasattr(model, "module") else model
    use_graph = torch.rand(batch["words"].shape[0], device=batch["words"].device) >= DROP_GRAPH
    clean = torch.where(use_graph[:, None], batch["words"], batch["plain"])
    k = len(net.config.words)
    cond = {**batch["cond"], "use_graph": use_graph}
    return sequence_loss(lambda noisy: model(noisy, cond), clean, k)


@torch.no_grad()
def sample(model: TextDiffusion, cond: dict[str, torch.Tensor], graphs: list, steps: int = DEFAULT_STEPS,
           generator: torch.Generator | None = None, temperature: float = 0.0,
           copies: int = 1) -> tuple[list[str], torch.Tensor]:
    """Draw ``copies`` captions per condition (as ``forward`` takes them, the features of ``graphs``,
    the 3DSGs as ``SceneGraph``, one per condition), only the slots of each one's objects allowed,
    filled with their words (``referring.object_name``). ``temperature`` 0 takes each revealed word's
    most likely value (the copies then differ by the order of revealing). The first step, where
    every word is masked, runs the network once per condition, not once per copy.

    Returns the B x ``copies`` captions, the copies of a condition one after another, and how likely
    the network found each as it drew it: (B x copies,) float, the sum over the ``max_words``
    positions (padding included) of the log-probability of the word revealed there at the step it
    was revealed, <= 0.
    """
    k = len(model.config.words)
    masked = torch.full((cond["image"].shape[0], model.config.max_words), k, dtype=torch.long,
                        device=cond["image"].device)
    first = model(masked, cond)
    cond = {name: v.repeat_interleave(copies, 0) for name, v in cond.items()}
    words = masked.repeat_interleave(copies, 0)
    allowed = model.allowed_words(cond)[:, None]
    log_prob = torch.zeros(words.shape[0], device=words.device)
    times = sampling_times(steps)
    for step, (t, s) in enumerate(zip(times[:-1], times[1:])):
        logits = first.repeat_interleave(copies, 0) if step == 0 else model(words, cond)
        drawn = unmask_step(words, logits, t, s, generator, allowed, temperature)
        revealed = drawn != words
        word_log_prob = logits.float().masked_fill(~allowed, float("-inf")).log_softmax(-1)
        word_log_prob = word_log_prob.gather(-1, drawn.clamp(max=k - 1)[..., None])[..., 0]
        log_prob += torch.where(revealed, word_log_prob, 0.0).sum(1)
        words = drawn
    names = [[object_name(g, i) for i in range(len(g.objects))] for g in graphs for _ in range(copies)]
    return [decode_caption(w, model.config.words, n) for w, n in zip(words.cpu(), names)], log_prob.cpu()


class Examples(torch.utils.data.Dataset):
    """Every caption of every scene as {"words": (max_words,) int64 with object slots, "plain": its
    own words, "cond": {"image", "graph", "graph_valid", "geometry", "identity", "relations"}}
    (``generation_data.scene_examples`` and ``image_tokens``).

    ``slotted``: per scene, per caption, its words with slots (``referring.slot_caption``), or None
    where the caption does not align with the 3DSG (its own words are then the target either way).
    """

    def __init__(self, tokens: torch.Tensor, scenes: dict, slotted: list[list[list[str] | None]], config: Config):
        self.tokens, self.scenes = tokens, scenes
        self.pairs = [(s, c) for s, caps in enumerate(scenes["captions"]) for c in range(len(caps))]
        self.plain = torch.stack([encode_caption(scenes["captions"][s][c], config.words, config.max_words)
                                  for s, c in self.pairs])
        self.words = torch.stack([self.plain[i] if slotted[s][c] is None else
                                  encode_caption(slotted[s][c], config.words, config.max_words)
                                  for i, (s, c) in enumerate(self.pairs)])

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> dict:
        s = self.pairs[i][0]
        sc = self.scenes
        return {"words": self.words[i], "plain": self.plain[i],
                "cond": {"image": self.tokens[s].long().flatten(), "graph": sc["graph"][s].float(),
                         "graph_valid": sc["graph_valid"][s], "geometry": sc["geometry"][s].float(),
                         "identity": sc["identity"][s], "relations": sc["relations"][s]}}


def load_data(data_dir: str, split: str, limit: int = 0, config: Config | None = None) -> Examples:
    """Every caption of the first ``limit`` scenes (0: all) of ``split``, with its image's tokens,
    its gold 3DSG's features and its words with object slots (the same for every ``config``)."""
    from ..generation_data import image_tokens, scene_examples, split_size
    from ..graph import SceneGraph
    from ..referring import slot_caption
    from ..world.build import load_split
    n = limit or split_size(data_dir, split)
    _, records = load_split(data_dir, split, ())
    slotted = []
    for record in records[:n]:
        graph3d = SceneGraph.from_dict(record["graph3d"])
        slotted.append([slot_caption(c["text"], SceneGraph.from_dict(c["tsg"]), graph3d) for c in record["captions"]])
    return Examples(image_tokens(data_dir, split, n), scene_examples(data_dir, split, n), slotted, Config())


@torch.no_grad()
def evaluate(model: TextDiffusion, data_dir: str, split: str, limit: int, steps: int = DEFAULT_STEPS,
             seed: int = 0, batch: int = 100, engine=None, candidates: tuple[int, ...] | None = None) -> dict:
    """SI2T on the first ``limit`` scenes of ``split``: the detector reads each render (VSG),
    ``engine``'s graph diffusion (default: a new Engine's, the shipped one) lifts it, and a caption
    is drawn from image + 3DSG (``full``) and from the image alone (``image_only``); the scene's
    first reference caption is the ``gold`` row.
    ``candidates``: captions drawn per full-row caption in each round, the one agreeing best with
    its 3DSG kept (``Engine.generate_captions``; None: the Engine's default).

    Per row: ``relation_correct`` (relations the caption states, parsed by ``textparse``, that hold
    in the gold 3DSG, ``evaluate.relation_correctness``), ``sg_f1`` (``evaluate.scene_graph_f1``
    against the references), ``bleu4`` and ``cider`` (generated rows against all 5 references, the
    gold row against the other 4).
    """
    import numpy as np

    from ..evaluate import caption_scores, relation_correctness, scene_graph_f1
    from ..graph import SceneGraph
    from ..models.graph_diffusion import lift
    from ..pipeline import CAPTION_CANDIDATES, Engine
    from ..textparse import parse_texts
    from ..world.build import load_split
    engine = engine or Engine()
    candidates = CAPTION_CANDIDATES if candidates is None else candidates
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
                    for c in engine.generate_captions(graphs[i:i + batch], images[i:i + batch], steps, seed + i,
                                                      use_graph, candidates)]
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
