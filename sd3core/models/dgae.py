"""DGAE: a discrete graph auto-encoder of 3DSGs, whose features condition the image and text diffusions.

The encoder reads a 3DSG as tokens (``graph_tokens``: per object the bins of x, z and the extents,
the ground height, the predicate set of every ordered pair) with the objects' labels and attribute
words, runs the shared graph transformer, and squeezes each object token and the scene token into
a few finite-scalar-quantised channels (FSQ, as the image tokenizer does): the discrete
bottleneck. The decoder gets only those codes and the labels and attributes, and reconstructs every
token. ``features`` are the decoder's final object and scene tokens: what the later diffusions
attend to as "the 3DSG".
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import nn

from ..graph import SceneGraph
from ..graph_tokens import DEFAULT_BINS, DEFAULT_RELATION_SETS, OBJECT_FIELDS, GraphCoding, graph_to_tokens
from .graph_diffusion import (ATTRIBUTE_WORDS, batch_conditions, condition, pad_condition, pad_tokens,
                              real_tokens, tokens_to_graphs)
from .graph_transformer import GraphLayer, run_graph_layers, token_logits
from ..vocab import SHAPES
from .vqvae import FSQ


@dataclass
class Config:
    width: int = 128                     # object / scene token features
    pair_width: int = 64                 # ordered-pair features
    layers: int = 3                      # graph layers in the encoder and in the decoder each
    heads: int = 4
    levels: tuple[int, ...] = (8, 8, 8, 8, 5, 5)  # FSQ levels per code channel (102,400 codes a token)
    max_objects: int = 16
    train_objects: int = 6
    bins: dict = field(default_factory=lambda: dict(DEFAULT_BINS))
    relation_sets: tuple = DEFAULT_RELATION_SETS

    @property
    def coding(self) -> GraphCoding:
        return GraphCoding(self.bins, tuple(tuple(s) for s in self.relation_sets))


IDENTITY_FIELDS = ("label", *ATTRIBUTE_WORDS)  # what an object is: its shape, colour, size, material


class Identity(nn.Module):
    """Label and attribute words of each object as one (B, P, W) embedding."""

    def __init__(self, width: int):
        super().__init__()
        self.label = nn.Embedding(len(SHAPES), width)
        self.attribute = nn.ModuleDict({k: nn.Embedding(len(v) + 1, width) for k, v in ATTRIBUTE_WORDS.items()})

    def forward(self, cond: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.label(cond["label"]) + sum(self.attribute[k](cond[k]) for k in ATTRIBUTE_WORDS)


class DGAE(nn.Module):
    def __init__(self, config: Config):
        super().__init__()
        self.config = config
        coding = config.coding
        w, pw, d = config.width, config.pair_width, len(config.levels)
        self.classes = {f: coding.num_classes(f) for f in (*OBJECT_FIELDS, "ground", "relations")}
        self.identity_in, self.identity_out = Identity(w), Identity(w)
        self.token = nn.ModuleDict({f: nn.Embedding(k, w if f != "relations" else pw) for f, k in self.classes.items()})
        self.encoder = nn.ModuleList(GraphLayer(w, pw, config.heads) for _ in range(config.layers))
        self.decoder = nn.ModuleList(GraphLayer(w, pw, config.heads) for _ in range(config.layers))
        self.scene_pair_in, self.scene_pair_out = nn.Parameter(torch.zeros(pw)), nn.Parameter(torch.zeros(pw))
        self.pair_out = nn.Parameter(torch.zeros(pw))
        self.to_code, self.from_code = nn.Sequential(nn.LayerNorm(w), nn.Linear(w, d)), nn.Linear(d, w)
        self.fsq = FSQ(config.levels)
        self.norm, self.norm_pair = nn.LayerNorm(w), nn.LayerNorm(pw)
        self.heads = nn.ModuleDict({f: nn.Linear(pw if f == "relations" else w, k) for f, k in self.classes.items()})

    def encode(self, cond: dict[str, torch.Tensor], tokens: dict[str, torch.Tensor]) -> torch.Tensor:
        """Padded conditions (``graph_diffusion.pad_condition``, batched) and clean 3DSG tokens ->
        (B, 1 + P, D) quantised codes in [-1, 1], position 0 the scene."""
        objects = self.identity_in(cond) + sum(self.token[f](tokens[f]) for f in OBJECT_FIELDS)
        h, _ = run_graph_layers(self.encoder, self.token["ground"](tokens["ground"]), objects,
                                self.token["relations"](tokens["relations"]), self.scene_pair_in, cond["valid"])
        codes = self.to_code(h)                                                  # (B, M, D)
        return self.fsq.quantise(codes.transpose(1, 2)[..., None])[..., 0].transpose(1, 2)

    def features(self, cond: dict[str, torch.Tensor], codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Codes (B, 1 + P, D) -> the 3DSG features: tokens (B, 1 + P, W) and pairs (B, P, P, PW)."""
        h = self.from_code(codes)
        b, p = cond["valid"].shape
        pairs = self.pair_out.expand(b, p, p, -1)
        h, e = run_graph_layers(self.decoder, h[:, :1], h[:, 1:] + self.identity_out(cond), pairs,
                                self.scene_pair_out, cond["valid"])
        return self.norm(h), self.norm_pair(e)

    def forward(self, cond: dict[str, torch.Tensor], tokens: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Reconstruction logits {field: (..., K)} of the tokens through the codes."""
        h, e = self.features(cond, self.encode(cond, tokens))
        return token_logits(self.heads, h, e)


def build(config: Config) -> DGAE:
    return DGAE(config)


def load_data(data_dir: str, split: str, limit: int = 0, config: Config | None = None) -> list[dict]:
    """The gold 3DSGs of ``split`` (the first ``limit`` scenes, 0: all) as {"cond", "tokens"} padded
    to ``config.train_objects`` objects (default: ``Config()``), as the graph diffusion's data."""
    from ..world.build import load_split
    _, records = load_split(data_dir, split, ())
    config = config or Config()
    coding, train_objects = config.coding, config.train_objects
    data = []
    for record in records[:limit] if limit else records:
        gold = SceneGraph.from_dict(record["graph3d"])
        ids = [o.id for o in gold.objects]
        data.append({"cond": pad_condition(condition(gold, coding, train_objects), train_objects),
                     "tokens": pad_tokens(graph_to_tokens(gold, ids, coding), train_objects)})
    return data


def loss(model: nn.Module, batch: dict) -> tuple[torch.Tensor, dict]:
    """Cross-entropy of every real token's reconstruction; logs per-field accuracy."""
    net = model.module if hasattr(model, "module") else model
    cond, clean = batch["cond"], batch["tokens"]
    logits = model(cond, clean)
    real = real_tokens(cond)
    total, count, logs = 0.0, 0.0, {}
    for f in net.classes:
        ce = nn.functional.cross_entropy(logits[f][real[f]], clean[f][real[f]], reduction="sum")
        total, count = total + ce, count + real[f].sum()
        logs[f"acc_{f}"] = float((logits[f].argmax(-1) == clean[f])[real[f]].float().mean())
    return total / count, logs


@torch.no_grad()
def reconstruct(model: DGAE, graphs: list[SceneGraph]) -> list[SceneGraph]:
    """3DSGs (every object with position and size) -> the 3DSGs their codes decode to (the most
    likely token of each field)."""
    coding = model.config.coding
    device = next(model.parameters()).device
    cond = batch_conditions(graphs, coding, model.config.max_objects, device)
    size = cond["valid"].shape[1]
    tokens = [pad_tokens(graph_to_tokens(g, [o.id for o in g.objects], coding), size) for g in graphs]
    clean = {k: torch.stack([t[k] for t in tokens]).to(device) for k in tokens[0]}
    return tokens_to_graphs(graphs, {f: v.argmax(-1) for f, v in model(cond, clean).items()}, coding)


GEOMETRY_RANGES = ((-2.5, 5.0), (-2.0, 4.0), (2.5, 7.0), (0.0, 2.0), (0.0, 2.0), (0.0, 2.0))  # (low, span) of x, y, z, w, h, d (m)


@torch.no_grad()
def graph_features(model: DGAE, graphs: list[SceneGraph]) -> dict[str, torch.Tensor]:
    """3DSGs (every object with position and size; boxes are ignored) -> what the image and text
    diffusions attend to as "the 3DSG", padded to the largest graph (P objects):

    "graph": (B, 1 + P, W) the DGAE features (``DGAE.features`` of the graph's codes), position 0
    the scene; "graph_valid": (B, 1 + P) bool, False for padding; "geometry": (B, P, 6) each
    object's position and size (x, y, z, width, height, depth) scaled by ``GEOMETRY_RANGES`` to
    about 0-1, zeros for padding; "identity": (B, P, 4) int64 each object's label and colour, size
    and material word (``IDENTITY_FIELDS``: indices into ``vocab.SHAPES`` and ``ATTRIBUTE_WORDS``, the
    last index of an attribute "unsaid"), zeros for padding; "relations": (B, P, P) int64, [b, i, j]
    the predicate set of object i relative to object j (an index into the DGAE's
    ``relation_sets``; the diagonal and padding hold the index of the empty set). A graph without
    objects has only its scene token.
    """
    coding = model.config.coding
    device = next(model.parameters()).device
    graphs = [SceneGraph("3dsg", [replace(o, box=None) for o in g.objects], g.relations) for g in graphs]
    cond = batch_conditions(graphs, coding, model.config.max_objects, device, constrain=False)
    size = cond["valid"].shape[1]
    tokens = [pad_tokens(graph_to_tokens(g, [o.id for o in g.objects], coding), size) if g.objects
              else {f: torch.zeros((size, size) if f == "relations" else (1 if f == "ground" else size),
                                   dtype=torch.long) for f in (*OBJECT_FIELDS, "ground", "relations")}
              for g in graphs]
    clean = {k: torch.stack([t[k] for t in tokens]).to(device) for k in tokens[0]}
    h, _ = model.features(cond, model.encode(cond, clean))
    low, span = torch.tensor(GEOMETRY_RANGES, device=device).T
    geometry = torch.zeros(len(graphs), size, 6, device=device)
    for b, g in enumerate(graphs):
        if g.objects:
            values = torch.tensor([[*o.position, *o.size] for o in g.objects], device=device)
            geometry[b, :len(g.objects)] = (values - low) / span
    identity = torch.stack([cond[k] for k in IDENTITY_FIELDS], -1)
    no_relation = coding.set_index(())
    relations = torch.where(cond["valid"][:, :, None] & cond["valid"][:, None, :], clean["relations"], no_relation)
    return {"graph": h, "graph_valid": F.pad(cond["valid"], (1, 0), value=True), "geometry": geometry,
            "identity": identity, "relations": relations}


@torch.no_grad()
def evaluate(model: DGAE, data_dir: str, split: str, limit: int) -> dict:
    """On the gold 3DSGs of ``split``: triples of the decoded graph that are gold (precision) and
    gold triples it keeps (recall), and the mean position error (metres)."""
    import numpy as np

    from ..world.build import load_split
    _, records = load_split(data_dir, split, ())
    gold = [SceneGraph.from_dict(r["graph3d"]) for r in records[:limit] if r["graph3d"]["objects"]]
    model.eval()
    decoded = []
    for start in range(0, len(gold), 256):
        decoded += reconstruct(model, gold[start:start + 256])
    hit = n_gold = n_out = 0
    errors = []
    for g, d in zip(gold, decoded):
        gt = {(r.subject, r.predicate, r.object) for r in g.relations}
        dt = {(r.subject, r.predicate, r.object) for r in d.relations}
        hit, n_gold, n_out = hit + len(gt & dt), n_gold + len(gt), n_out + len(dt)
        errors += [float(np.linalg.norm(np.subtract(a.position, b.position))) for a, b in zip(g.objects, d.objects)]
    return {"triplet_recall": round(hit / max(1, n_gold), 4), "triplet_precision": round(hit / max(1, n_out), 4),
            "position_error_m": round(float(np.mean(errors)), 4)}
