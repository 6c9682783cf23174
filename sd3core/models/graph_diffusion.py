"""Graph diffusion: lift a TSG or VSG to a 3DSG by absorbing-state discrete diffusion.

The state is the 3DSG's tokens (``graph_tokens``): per object the bins of x, z, width, height and
depth, per scene the ground height, per ordered pair the predicate set. All start masked; a graph
transformer predicts every clean token from the masked state and the input graph; ``diffusion``
unmasks them a few at a time, where things are first and how they relate second (``sample``), so
that relations are read off a placed scene. The input graph conditions every step:

- per object: label (one of the world's shapes), colour, size and material words (or "unsaid"),
  and the box for a VSG (``[x0, y0, x1, y1]`` in 0-1; absent for a TSG);
- per ordered pair: the input's predicates, multi-hot over the nine;
- per graph: whether it came from text (TSG) or an image (VSG).

Relations a TSG states are constraints, not hints: sampling only draws predicate sets that contain
them (and their inverses on the reversed pair), so they hold in the output. A VSG's relations are
2D readings, which depth can overturn, so they only condition.

The network: a scene token and one token per object; self-attention with a per-head bias from the
pair features (as in graph transformers / DiGress); pair features updated from their two objects
after each layer; linear heads for each token kind.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..diffusion import mask_noise, masked_cross_entropy, sampling_times, unmask_step
from ..graph import SceneGraph
from ..graph_tokens import (DEFAULT_BINS, DEFAULT_RELATION_SETS, OBJECT_FIELDS, GraphCoding, graph_to_tokens,
                            sets_agreeing_with_positions, tokens_to_3dsg)
from ..vocab import ATTRIBUTE_KIND, COLOURS, INVERSE_PREDICATE, MATERIALS, PREDICATES, SHAPES, SIZES, canonical_word
from .graph_transformer import GraphLayer, box_features, run_graph_layers, token_logits

BIN_SPREAD = 1.0     # classes: standard deviation of the Gaussian target of a binned quantity
BOUND_REFERENCE_SCENES = 2000  # train scenes whose pair statistics give the TSG recall ceiling
POSITION_TEMPERATURE = 0.0  # object and scene tokens: the most likely bin (README: faithfulness vs variety)
RELATION_TEMPERATURE = 0.0  # pairs take their most likely set once the scene is placed (README)
DEFAULT_STEPS = 16   # sampling steps of the studio and the evaluation (README: quality vs steps)
ATTRIBUTE_WORDS = {"colour": tuple(COLOURS), "size": SIZES, "material": MATERIALS}
KINDS = ("tsg", "vsg")
# The pair inverse used for constraints: "on" is not invertible as a relation, but A on B does put
# B under A in the world's geometry (spatial.relations_3d).
CONSTRAINT_INVERSE = {**INVERSE_PREDICATE, "on": "under"}


@dataclass
class Config:
    width: int = 128                 # object / scene token features
    pair_width: int = 64             # ordered-pair features
    layers: int = 6
    heads: int = 4
    max_objects: int = 16            # largest graph the lifter accepts
    train_objects: int = 6           # objects per padded training example (the world's maximum)
    bins: dict = field(default_factory=lambda: dict(DEFAULT_BINS))
    relation_sets: tuple = DEFAULT_RELATION_SETS
    dual_weight: float = 0.0         # weight of the dual term in the loss (0: off, no dual head)
    dual_width: int = 256 + 192      # object features it matches: the image diffusion's, then the text's

    @property
    def coding(self) -> GraphCoding:
        return GraphCoding(self.bins, tuple(tuple(s) for s in self.relation_sets))


# --- the input graph as condition tensors ---

def condition(graph: SceneGraph, coding: GraphCoding, max_objects: int,
              constrain: bool = True) -> dict[str, torch.Tensor]:
    """The condition tensors of one input graph (N objects, in ``graph.objects`` order).

    Returns "label", "colour", "size", "material": (N,) int64 (the last index of the attribute ones
    is "unsaid"); "box": (N, 4) float (zeros where absent); "has_box": (N,) float; "stated": (N, N, 9)
    float, [i, j, p] = 1 when the input relates object i to j by predicate p; "kind": (1,) int64;
    "allowed": (N, N, R) bool, the predicate sets each pair may take. Non-spatial relations and
    attribute words outside the vocabulary are ignored. Raises ValueError naming the field for an
    unknown label, too many objects, or (with ``constrain``, for a TSG) stated relations that contradict
    each other; without ``constrain`` every pair may take every set.
    """
    n = len(graph.objects)
    if n > max_objects:
        raise ValueError(f"objects: the graph has {n} objects; the lifter handles at most {max_objects}")
    labels = []
    for i, o in enumerate(graph.objects):
        label = canonical_word(o.label)
        if label not in SHAPES:
            raise ValueError(f"objects[{i}].label: {o.label!r} is not a shape the lifter knows "
                             f"({', '.join(SHAPES)})")
        labels.append(SHAPES.index(label))
    attributes = {kind: [] for kind in ATTRIBUTE_WORDS}
    for o in graph.objects:
        said = {ATTRIBUTE_KIND[w]: w for w in map(canonical_word, o.attributes) if w in ATTRIBUTE_KIND}
        for kind, words in ATTRIBUTE_WORDS.items():
            attributes[kind].append(words.index(said[kind]) if kind in said else len(words))
    index = {o.id: i for i, o in enumerate(graph.objects)}
    stated = torch.zeros(n, n, len(PREDICATES))
    for r in graph.spatial_relations():
        stated[index[r.subject], index[r.object], PREDICATES.index(r.predicate)] = 1
    kind = "vsg" if graph.kind == "vsg" else "tsg"
    return {"label": torch.tensor(labels, dtype=torch.long),
            **{k: torch.tensor(v, dtype=torch.long) for k, v in attributes.items()},
            "box": torch.tensor([o.box or (0.0,) * 4 for o in graph.objects], dtype=torch.float).view(n, 4),
            "has_box": torch.tensor([float(o.box is not None) for o in graph.objects]),
            "stated": stated, "kind": torch.tensor([KINDS.index(kind)]),
            "allowed": _allowed_sets(graph, index, coding) if kind == "tsg" and constrain
            else torch.ones(n, n, coding.num_classes("relations"), dtype=torch.bool)}


def required_predicates(graph: SceneGraph) -> dict[tuple[int, int], dict[str, int]]:
    """(subject id, object id) -> {predicate the pair must hold: index in ``graph.spatial_relations()``
    of the relation that requires it}: each stated predicate, and the inverse of each predicate stated
    for the reversed pair (``CONSTRAINT_INVERSE``)."""
    required: dict[tuple[int, int], dict[str, int]] = {}
    for k, r in enumerate(graph.spatial_relations()):
        required.setdefault((r.subject, r.object), {})[r.predicate] = k
        inverse = CONSTRAINT_INVERSE[r.predicate]
        if inverse is not None:
            required.setdefault((r.object, r.subject), {})[inverse] = k
    return required


def _allowed_sets(graph: SceneGraph, index: dict[int, int], coding: GraphCoding) -> torch.Tensor:
    """(N, N, R) bool: for each ordered pair the sets holding all its ``required_predicates``;
    ValueError when none does."""
    n = len(index)
    allowed = torch.ones(n, n, coding.num_classes("relations"), dtype=torch.bool)
    for (subject, obj), predicates in required_predicates(graph).items():
        a, b = index[subject], index[obj]
        allowed[a, b] = coding.sets_containing(predicates)
        if not allowed[a, b].any():
            rels = graph.spatial_relations()
            said = "; ".join(f"relations[{k}] ({rels[k].subject} {rels[k].predicate} {rels[k].object})"
                             for k in sorted(set(predicates.values())))
            raise ValueError(f"relations: {said} contradict each other: no arrangement of objects "
                             f"{graph.objects[a].id} and {graph.objects[b].id} satisfies them all")
    return allowed


def pad_condition(cond: dict[str, torch.Tensor], size: int) -> dict[str, torch.Tensor]:
    """One graph's condition tensors (``condition``) padded to ``size`` objects, with "valid": (size,)
    bool marking the real ones. Padded pairs allow every set (they are never sampled or scored)."""
    n = cond["label"].shape[0]
    out = {"valid": torch.arange(size) < n, "kind": cond["kind"]}
    for key, value in cond.items():
        if key == "kind":
            continue
        if key in ("stated", "allowed"):  # (N, N, C)
            out[key] = F.pad(value, (0, 0, 0, size - n, 0, size - n), value=key == "allowed")
        else:  # (N,) or (N, 4)
            out[key] = F.pad(value, (0, 0) * (value.dim() - 1) + (0, size - n))
    return out


# --- the network ---

class GraphDiffusion(nn.Module):
    """p(3DSG tokens | masked tokens, input graph). Sequence position 0 is the scene token, 1..P the
    objects."""

    def __init__(self, config: Config):
        super().__init__()
        self.config = config
        coding = config.coding
        w, pw = config.width, config.pair_width
        self.classes = {f: coding.num_classes(f) for f in (*OBJECT_FIELDS, "ground", "relations")}
        self.label = nn.Embedding(len(SHAPES), w)
        self.attribute = nn.ModuleDict({k: nn.Embedding(len(v) + 1, w) for k, v in ATTRIBUTE_WORDS.items()})
        self.box = nn.Linear(box_features(torch.zeros(4)).shape[-1] + 1, w)
        self.kind = nn.Embedding(len(KINDS), w)
        # token embeddings: each field's classes plus the mask (the last index)
        self.token = nn.ModuleDict({f: nn.Embedding(k + 1, w if f != "relations" else pw)
                                    for f, k in self.classes.items()})
        self.stated = nn.Linear(2 * len(PREDICATES), pw)
        self.scene_pair = nn.Parameter(torch.zeros(pw))
        self.layers = nn.ModuleList(GraphLayer(w, pw, config.heads) for _ in range(config.layers))
        self.norm, self.norm_pair = nn.LayerNorm(w), nn.LayerNorm(pw)
        self.heads = nn.ModuleDict({f: nn.Linear(pw if f == "relations" else w, k) for f, k in self.classes.items()})
        self.dual = nn.Linear(w, config.dual_width) if config.dual_weight > 0 else None

    def forward(self, cond: dict[str, torch.Tensor], tokens: dict[str, torch.Tensor],
                dual: bool = False) -> dict[str, torch.Tensor]:
        """cond: ``pad_condition`` tensors batched (leading B); tokens: {field: (B, P)}, "ground":
        (B, 1), "relations": (B, P, P), mask = number of classes. Returns logits {field: (..., K)},
        and with ``dual`` also "dual": (B, P, dual_width), the object tokens read by the dual head."""
        objects = self.label(cond["label"]) + self.box(torch.cat([box_features(cond["box"]), cond["has_box"][..., None]], -1))
        objects = objects + sum(self.attribute[k](cond[k]) for k in ATTRIBUTE_WORDS)
        objects = objects + sum(self.token[f](tokens[f]) for f in OBJECT_FIELDS)
        scene = self.kind(cond["kind"]) + self.token["ground"](tokens["ground"])          # (B, 1, W)
        stated = cond["stated"]
        pairs = self.token["relations"](tokens["relations"]) + self.stated(
            torch.cat([stated, stated.transpose(1, 2)], -1))                                # (B, P, P, PW)
        h, e = run_graph_layers(self.layers, scene, objects, pairs, self.scene_pair, cond["valid"])
        h, e = self.norm(h), self.norm_pair(e)
        logits = token_logits(self.heads, h, e)
        if dual:
            logits["dual"] = self.dual(h[:, 1:])
        return logits


def build(config: Config) -> GraphDiffusion:
    return GraphDiffusion(config)


# --- training and sampling ---

def real_tokens(cond: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Which tokens are real variables: objects that exist, pairs of two different ones."""
    valid = cond["valid"]
    eye = torch.eye(valid.shape[1], dtype=torch.bool, device=valid.device)
    pairs = valid[:, :, None] & valid[:, None, :] & ~eye
    return {**{f: valid for f in OBJECT_FIELDS}, "ground": torch.ones_like(valid[:, :1]), "relations": pairs}


def loss(model: nn.Module, batch: dict) -> tuple[torch.Tensor, dict]:
    """Masked-diffusion loss: per graph one time t ~ U(0, 1) for the object and scene tokens and
    another for the pair tokens (so the network learns every stage of ``sample``'s order), each
    token masked with probability its t; cross-entropy of the clean tokens at the masked places
    (binned quantities with a ``BIN_SPREAD`` Gaussian target), averaged over them. Logs per-field
    accuracy of the masked tokens."""
    net = model.module if hasattr(model, "module") else model
    cond, clean = batch["cond"], batch["tokens"]
    times = torch.rand(2, cond["valid"].shape[0], device=cond["valid"].device)
    maskable = real_tokens(cond)
    noisy = {f: mask_noise(clean[f], k, times[int(f == "relations")], maskable=maskable[f])
             for f, k in net.classes.items()}
    logits = model(cond, noisy, net.dual is not None)
    total, count, logs = 0.0, 0.0, {}
    for f, k in net.classes.items():
        spread = 0.0 if f == "relations" else BIN_SPREAD
        ce, n = masked_cross_entropy(logits[f], clean[f], noisy[f], k, spread)
        total, count = total + ce, count + n
        hit = (logits[f].argmax(-1) == clean[f]) & (noisy[f] == k)
        logs[f"acc_{f}"] = float(hit.sum() / n.clamp_min(1))
    loss = total / count.clamp_min(1)
    if net.dual is not None:
        dual = F.mse_loss(logits["dual"][cond["valid"]], batch["dual"][cond["valid"]].float())
        loss, logs["dual"] = loss + net.config.dual_weight * dual, dual.item()
    return loss, logs


@torch.no_grad()
def sample(model: GraphDiffusion, cond: dict[str, torch.Tensor], steps: int,
           generator: torch.Generator | None = None, temperature: float = POSITION_TEMPERATURE,
           relation_temperature: float = RELATION_TEMPERATURE) -> dict[str, torch.Tensor]:
    """Draw 3DSG tokens for a batch of padded conditions (``pad_condition``, batched).

    All tokens start masked. The first ``ceil(steps / 2)`` steps unmask the object and scene tokens
    (where things are), the rest (at least one) the pair tokens (how they relate), so relations are
    read off a placed scene; pair tokens draw only ``allowed`` sets that agree with the placed
    objects (``agreeing_sets``); the diagonal and padding hold the "no relation" set.
    ``temperature`` scales the object and scene tokens' logits, ``relation_temperature`` the
    pairs' (0: the most likely set). Returns {field: int64} shaped like the tokens. A step that
    reveals nothing leaves the network's input as it was, so the next step reuses its prediction
    instead of running the network again (the same tokens drawn; small graphs have few tokens to
    reveal over the steps, so many steps reveal none).
    """
    coding = model.config.coding
    maskable = real_tokens(cond)
    empty = coding.set_index(())
    tokens = {f: torch.where(maskable[f], k, 0 if f != "relations" else empty)
              for f, k in model.classes.items()}
    first = (steps + 1) // 2
    stages = [([f for f in model.classes if f != "relations"], sampling_times(first))]
    stages.append((["relations"], sampling_times(max(1, steps - first))))
    predicted_from = None  # the tokens the last prediction was made from
    for fields, times in stages:
        allowed = agreeing_sets(cond, tokens, coding) if "relations" in fields else None
        for t, s in zip(times[:-1], times[1:]):
            if predicted_from is None or not all(torch.equal(v, predicted_from[f]) for f, v in tokens.items()):
                logits, predicted_from = model(cond, tokens), dict(tokens)
            for f in fields:
                if f == "relations":
                    tokens[f] = unmask_step(tokens[f], logits[f], t, s, generator, allowed,
                                            relation_temperature)
                else:
                    tokens[f] = unmask_step(tokens[f], logits[f], t, s, generator, temperature=temperature)
    return tokens


def agreeing_sets(cond: dict[str, torch.Tensor], tokens: dict[str, torch.Tensor],
                  coding: GraphCoding) -> torch.Tensor:
    """(B, N, N, R) bool: ``cond["allowed"]`` narrowed, pair by pair, to the sets that agree with
    the objects ``tokens`` place (``graph_tokens.sets_agreeing_with_positions``). A pair whose
    allowed sets all disagree (a stated relation the positions missed) keeps them all, so what the
    text states always holds in the relations."""
    allowed = cond["allowed"].clone()
    for b in range(allowed.shape[0]):
        n = int(cond["valid"][b].sum())
        labels = [SHAPES[int(k)] for k in cond["label"][b, :n]]
        placed = {f: tokens[f][b, :n].cpu() for f in OBJECT_FIELDS}
        agree = sets_agreeing_with_positions(labels, placed, coding).to(allowed.device)
        narrowed = allowed[b, :n, :n] & agree
        allowed[b, :n, :n] = torch.where(narrowed.any(-1, keepdim=True), narrowed, allowed[b, :n, :n])
    return allowed


def pad_tokens(tokens: dict[str, torch.Tensor], size: int) -> dict[str, torch.Tensor]:
    """One graph's tokens (``graph_tokens.graph_to_tokens``) padded with zeros to ``size`` objects."""
    n = tokens["relations"].shape[0]
    out = {f: F.pad(v, (0, size - n)) for f, v in tokens.items() if f in OBJECT_FIELDS}
    out["ground"] = tokens["ground"]
    out["relations"] = F.pad(tokens["relations"], (0, size - n, 0, size - n))
    return out


def batch_conditions(graphs: list[SceneGraph], coding: GraphCoding, max_objects: int,
                     device: torch.device, constrain: bool = True) -> dict[str, torch.Tensor]:
    """The ``condition`` tensors of graphs, padded to the largest and stacked, on ``device``."""
    size = max([len(g.objects) for g in graphs] + [1])
    padded = [pad_condition(condition(g, coding, max_objects, constrain), size) for g in graphs]
    return {k: torch.stack([c[k] for c in padded]).to(device) for k in padded[0]}


def tokens_to_graphs(graphs: list[SceneGraph], tokens: dict[str, torch.Tensor], coding: GraphCoding) -> list[SceneGraph]:
    """Batched tokens of ``graphs`` (padded, no masks left) -> the 3DSG of each (``tokens_to_3dsg``)."""
    out = []
    for b, g in enumerate(graphs):
        n = len(g.objects)
        mine = {f: v[b, :n].cpu() if f != "relations" else v[b, :n, :n].cpu() for f, v in tokens.items()}
        mine["ground"] = tokens["ground"][b].cpu()
        out.append(tokens_to_3dsg(g, mine, coding) if n else SceneGraph("3dsg"))
    return out


def lift(model: GraphDiffusion, graphs: list[SceneGraph], steps: int,
         generator: torch.Generator | None = None, temperature: float = POSITION_TEMPERATURE) -> list[SceneGraph]:
    """Input graphs (TSG or VSG) -> one sampled 3DSG each, batched in one diffusion run.

    ``temperature`` scales the position and size predictions: 0 takes the most likely bins (the
    samples of one graph then differ only by the order in which tokens are revealed), 1 draws them.

    Each output keeps its input's objects (ids, labels, attributes, boxes) and adds ``position`` and
    ``size`` (metres) and the full set of nine-predicate relations (``graph_tokens.tokens_to_3dsg``).
    An input without objects gives an empty 3DSG. Raises ValueError as ``condition`` does.
    """
    if not any(g.objects for g in graphs):
        return [SceneGraph("3dsg") for _ in graphs]
    coding = model.config.coding
    cond = batch_conditions(graphs, coding, model.config.max_objects, next(model.parameters()).device)
    return tokens_to_graphs(graphs, sample(model, cond, steps, generator, temperature), coding)


def load_data(data_dir: str, split: str, limit: int = 0, config: Config | None = None) -> list[dict]:
    """Training examples of ``split`` (``lift_data.lift_examples``: each caption's gold TSG and the
    detector's VSG of each scene, with the gold 3DSG of their objects) as padded tensors:
    {"cond": ``pad_condition``, "tokens": ``graph_tokens.graph_to_tokens`` padded to
    ``config.train_objects``}, and when ``config.dual_weight`` > 0 "dual": the dual term's targets
    (``generation_data.dual_targets``). ``config`` defaults to ``Config()``."""
    from ..generation_data import dual_targets, split_size
    from ..lift_data import lift_examples
    config = config or Config()
    coding, train_objects = config.coding, config.train_objects
    n = limit or split_size(data_dir, split)
    examples = [ex for ex in lift_examples(data_dir, split, n) if 0 < len(ex.ids) <= train_objects]
    data = [{"cond": pad_condition(condition(ex.graph, coding, train_objects), train_objects),
             "tokens": pad_tokens(graph_to_tokens(ex.gold, ex.ids, coding), train_objects)} for ex in examples]
    if config.dual_weight > 0:
        for sample, target in zip(data, dual_targets(data_dir, split, n, examples)):
            sample["dual"] = target
    return data


@torch.no_grad()
def evaluate(model: GraphDiffusion, data_dir: str, split: str, limit: int, steps: int = DEFAULT_STEPS,
             seed: int = 0, with_bound: bool = False, temperature: float = POSITION_TEMPERATURE) -> dict:
    """``evaluate.lift_metrics`` on the first ``limit`` scenes of ``split``: each scene's first
    caption's gold TSG and its detected VSG, lifted with ``steps`` steps and position ``temperature``
    from ``seed``. With ``with_bound``, also ``evaluate.tsg_recall_bound`` from the first ``BOUND_REFERENCE_SCENES``
    train scenes' TSGs (the train split must be built in ``data_dir``)."""
    from ..evaluate import lift_metrics, tsg_recall_bound
    from ..lift_data import lift_examples
    model.eval()
    examples = lift_examples(data_dir, split, limit, captions_per_scene=1)
    generator = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
    lifted = []
    for start in range(0, len(examples), 256):
        lifted += lift(model, [ex.graph for ex in examples[start:start + 256]], steps, generator, temperature)
    report = lift_metrics(examples, lifted)
    if with_bound:
        tsg = lambda exs: [ex for ex in exs if ex.graph.kind == "tsg"]  # noqa: E731
        reference = tsg(lift_examples(data_dir, "train", BOUND_REFERENCE_SCENES))
        report["tsg_triplet_recall_bound"] = tsg_recall_bound(reference, tsg(examples))
    return {k: round(v, 4) for k, v in report.items()}
