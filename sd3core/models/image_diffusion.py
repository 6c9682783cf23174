"""Image diffusion (ST2I): VQ image tokens from a caption and its 3DSG, by absorbing-state diffusion.

The state is the (grid x grid) VQ-VAE token map of an image (``vqvae``), flattened row by row; all
tokens start masked and ``diffusion.unmask_step`` reveals them a few at a time (VQ-Diffusion with
the mask-only transition). The network sees, in one sequence, as in-context conditioning:

- the caption: the project's CLIP text embedding (``clip.encode_texts``), one token;
- the 3DSG: ``conditioning.graph_tokens`` (the DGAE features, a scene token and one token per object,
  each object token plus sinusoidal features of its position and size, so that where the 3DSG puts
  an object is easy to read, and its label and attribute words, so that what it is is easy to read);
- the image tokens, each with a learned embedding of its grid cell and, with the 3DSG, the object
  tokens of the objects a camera would see in that cell (``conditioning.project_boxes``, weighted by
  ``conditioning.cell_layout``): a layout map, so the cell that should show the red cube is told so
  and does not have to work out the projection by attention.

A VQ-VAE code is an FSQ code: one digit per latent channel (``vqvae.FSQ``, levels 8, 5, 5, 5). The
network embeds a code as the sum of its digits' embeddings and predicts each digit (one small
softmax per channel); a code's log-probability is the sum of its digits' (``code_log_probs``). So
what it learns of a colour or a shading is shared by every code with that digit, and the diffusion
math (loss, guidance, truncation, sampling) runs on the 1,000 codes unchanged.

Training drops the caption, the 3DSG or both at random (``DROP_*``) so that one network serves the
full model, the "without 3DSG" ablation (the 3DSG dropped) and the unconditional prediction that
classifier-free guidance needs. Sampling mixes them as ``uncond + guidance * (cond - uncond)`` and
truncates each prediction to its most likely tokens (VQ-Diffusion's truncation, ``truncate``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..diffusion import sampling_times, sequence_loss, truncate, unmask_step
from .conditioning import GEOMETRY_FEATURES, Transformer, cell_layout, graph_tokens, project_boxes
from .dgae import Identity
from . import vqvae

DROP_BOTH, DROP_TEXT, DROP_GRAPH = 0.1, 0.1, 0.1   # training: share of samples without caption/3DSG/either
DEFAULT_STEPS = 4           # sampling steps of the studio and the evaluation, for each of the
                            # pipeline.IMAGE_CANDIDATES draws; chosen on val by bench/image_sampling.py
DEFAULT_GUIDANCE = 5.0      # classifier-free guidance scale (1: none); chosen on val by bench/image_sampling.py
DEFAULT_TRUNCATION = 0.9    # probability mass kept of each prediction (1: all)


@dataclass
class Config:
    width: int = 256
    layers: int = 6
    heads: int = 8
    grid: int = 8                  # tokens per side (the VQ-VAE's)
    levels: tuple[int, ...] = vqvae.Config.levels  # the VQ-VAE's FSQ levels
    text_width: int = 128          # CLIP embedding width
    graph_width: int = 128         # DGAE feature width
    fov_deg: float = 40.0          # the training renders' camera: vertical field of view (degrees)
    look_height: float = 0.4       # how high above the ground it looks (metres; ``project_boxes``)
    camera_distance: float = 6.75  # and from how far, typically (metres)

    def __post_init__(self):  # a checkpoint's config comes back with a list
        self.levels = tuple(self.levels)

    @property
    def codebook(self) -> int:
        """VQ-VAE codes: the product of the levels; the mask is index ``codebook``."""
        return math.prod(self.levels)


def code_log_probs(digit_logits: torch.Tensor, levels: tuple[int, ...]) -> torch.Tensor:
    """(..., sum(levels)) logits of each channel's digit -> (..., prod(levels)) log-probabilities of
    the codes, digits independent given the network's input, in ``vqvae.index_digits``' index order."""
    parts = [p.float().log_softmax(-1) for p in digit_logits.split(list(levels), -1)]
    joint = parts[-1]
    for part in reversed(parts[:-1]):   # the first channel varies fastest
        joint = (joint[..., :, None] + part[..., None, :]).flatten(-2)
    return joint


class ImageDiffusion(nn.Module):
    """p(image tokens | masked tokens, caption, 3DSG)."""

    def __init__(self, config: Config):
        super().__init__()
        self.config = config
        w = config.width
        self.digit = nn.ModuleList(nn.Embedding(level, w) for level in config.levels)
        self.mask = nn.Parameter(torch.randn(w) * 0.02)
        self.cell = nn.Parameter(torch.randn(config.grid * config.grid, w) * 0.02)
        self.from_text = nn.Linear(config.text_width, w)
        self.from_graph = nn.Linear(config.graph_width, w)
        self.from_geometry = nn.Linear(GEOMETRY_FEATURES, w)
        self.identity = Identity(w)  # each object's label and attribute words, for the image to show
        self.null_text, self.null_graph = nn.Parameter(torch.zeros(w)), nn.Parameter(torch.zeros(w))
        self.part = nn.Parameter(torch.randn(3, w) * 0.02)                 # caption, 3DSG, image
        self.from_layout = nn.Linear(w, w)     # the layout map into the image tokens, zero at the start
        nn.init.zeros_(self.from_layout.weight), nn.init.zeros_(self.from_layout.bias)
        self.blocks = Transformer(w, config.heads, config.layers)
        self.norm = nn.LayerNorm(w)
        self.head = nn.Linear(w, sum(config.levels))                        # the digits of each code
        for table in self.digit:  # as small as the cell embeddings, so position is readable
            nn.init.normal_(table.weight, std=0.02)

    def object_features(self, cond: dict[str, torch.Tensor]) -> torch.Tensor:
        """The network's own reading of a 3DSG: its final hidden state at each object token, (B, P, W),
        for a fully masked image and no caption (the dual term's targets, ``generation_data.dual_targets``)."""
        b, g = cond["graph"].shape[0], self.config.grid
        masked = torch.full((b, g * g), self.config.codebook, dtype=torch.long, device=cond["graph"].device)
        off = torch.zeros(b, dtype=torch.bool, device=masked.device)
        text = torch.zeros(b, self.config.text_width, device=masked.device)
        h = self._hidden(masked, {**cond, "text": text, "use_text": off, "use_graph": ~off})
        return h[:, 3:3 + cond["geometry"].shape[1]]      # after caption, null-graph and scene tokens

    def _embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L) codes (mask = codebook) -> (B, L, W): the sum of the digits' embeddings, or the mask's."""
        masked = tokens == self.config.codebook
        digits = vqvae.index_digits(tokens.masked_fill(masked, 0), self.config.levels)
        h = sum(table(d) for table, d in zip(self.digit, digits))
        return torch.where(masked[..., None], self.mask, h)

    def object_cells(self, cond: dict[str, torch.Tensor]) -> torch.Tensor:
        """Where the camera shows each of the 3DSG's objects: (B, grid**2, P) ``cell_layout`` weights
        in [0, 1] of the boxes ``project_boxes`` gives; zero for padding and where the 3DSG is not used."""
        valid = cond["graph_valid"][:, 1:] & cond["use_graph"][:, None]
        geometry = cond["geometry"].float()
        boxes, depth = project_boxes(geometry, valid, self.config.fov_deg, self.config.look_height,
                                    self.config.camera_distance)
        return cell_layout(boxes, depth, valid, self.config.grid)

    def _layout(self, objects: torch.Tensor, cond: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, P, W) object tokens -> (B, grid**2, W): per cell, the tokens of the objects seen there,
        weighted by ``object_cells``."""
        return self.object_cells(cond).to(objects.dtype) @ objects

    def _hidden(self, tokens: torch.Tensor, cond: dict[str, torch.Tensor]) -> torch.Tensor:
        """The final hidden states (B, 1 + 2 + P + grid**2, W) of [caption, null 3DSG, scene, objects, image]."""
        use_text = cond["use_text"][:, None]
        text = torch.where(use_text, self.from_text(cond["text"]), self.null_text)[:, None]
        graph, graph_keep = graph_tokens(self.from_graph, self.from_geometry, self.null_graph, cond, self.identity)
        image = self._embed(tokens) + self.cell + self.from_layout(self._layout(graph[:, 2:], cond))
        h = torch.cat([text + self.part[0], graph + self.part[1], image + self.part[2]], 1)
        keep = torch.cat([torch.ones_like(use_text), graph_keep, torch.ones_like(tokens, dtype=torch.bool)], 1)
        return self.norm(self.blocks(h, keep))

    def forward(self, tokens: torch.Tensor, cond: dict[str, torch.Tensor]) -> torch.Tensor:
        """tokens: (B, grid**2) int64 (mask = codebook); cond: "text" (B, Dt), "graph" (B, 1 + P, Dg),
        "graph_valid" (B, 1 + P) bool, "geometry" (B, P, 6), "identity" (B, P, 4) int64,
        "use_text" / "use_graph" (B,) bool (``dgae.graph_features``). Returns (B, grid**2, codebook)
        log-probabilities of the clean tokens (``code_log_probs``), float32."""
        return code_log_probs(self.head(self._hidden(tokens, cond)[:, -tokens.shape[1]:]), self.config.levels)


def build(config: Config) -> ImageDiffusion:
    return ImageDiffusion(config)


def loss(model: nn.Module, batch: dict) -> tuple[torch.Tensor, dict]:
    """Masked-diffusion loss: one time t ~ U(0, 1) per image, each token masked with probability t,
    cross-entropy of the clean tokens at the masked places, averaged over them; caption and 3DSG
    dropped at random (``DROP_*``). Logs the accuracy on masked tokens."""
    net = model.module if hasattr(model, "module") else model
    clean = batch["tokens"]
    b = clean.shape[0]
    k = net.config.codebook
    draw = torch.rand(b, device=clean.device)
    cond = {**batch["cond"], "use_text": ~((draw < DROP_BOTH) | ((draw >= DROP_BOTH) & (draw < DROP_BOTH + DROP_TEXT))),
            "use_graph": ~((draw < DROP_BOTH) | (draw >= 1 - DROP_GRAPH))}
    return sequence_loss(lambda noisy: model(noisy, cond), clean, k)


@torch.no_grad()
def sample(model: ImageDiffusion, cond: dict[str, torch.Tensor], steps: int = DEFAULT_STEPS,
           generator: torch.Generator | None = None, guidance: float = DEFAULT_GUIDANCE,
           truncation: float = DEFAULT_TRUNCATION, on_step=None, start: torch.Tensor | None = None) -> torch.Tensor:
    """Draw (B, grid, grid) VQ tokens for a batch of conditions (as ``forward`` takes them).

    ``guidance`` > 1 mixes in the prediction without caption and 3DSG (one batched forward of both);
    ``truncation`` keeps that much probability mass of each prediction. ``on_step(k, steps)`` is
    called after each step (progress bars). ``start``: (B, grid, grid) tokens to draw around, the
    mask (``config.codebook``) where a token is to be drawn, every other token kept (inpainting);
    default all masked.
    """
    g = model.config.grid
    b = cond["graph"].shape[0]
    device = cond["graph"].device
    tokens = (torch.full((b, g * g), model.config.codebook, dtype=torch.long, device=device)
              if start is None else start.reshape(b, g * g).to(device))
    times = sampling_times(steps)
    if guidance != 1:
        off = torch.zeros(b, dtype=torch.bool, device=device)
        both = {k: torch.cat([v, v]) for k, v in cond.items()}
        both["use_text"] = torch.cat([cond["use_text"], off])
        both["use_graph"] = torch.cat([cond["use_graph"], off])
    for step, (t, s) in enumerate(zip(times[:-1], times[1:])):
        if guidance != 1:
            full, bare = model(torch.cat([tokens, tokens]), both).float().log_softmax(-1).chunk(2)
            logits = bare + guidance * (full - bare)
        else:
            logits = model(tokens, cond).float()
        tokens = unmask_step(tokens, truncate(logits, truncation), t, s, generator)
        if on_step is not None:
            on_step(step + 1, steps)
    return tokens.view(b, g, g)


class Examples(torch.utils.data.Dataset):
    """Aligned captions as {"tokens": (grid**2,) int64 of their scene's image, "cond": {"text",
    "graph", "graph_valid", "geometry", "identity"}} (``generation_data.caption_examples``)."""

    def __init__(self, tokens: torch.Tensor, captions: dict):
        self.tokens, self.captions = tokens, captions

    def __len__(self) -> int:
        return len(self.captions["scene"])

    def __getitem__(self, i: int) -> dict:
        c = self.captions
        return {"tokens": self.tokens[c["scene"][i]].long().flatten(),
                "cond": {"text": c["text"][i].float(), "graph": c["graph"][i].float(),
                         "graph_valid": c["graph_valid"][i], "geometry": c["geometry"][i].float(),
                         "identity": c["identity"][i]}}


def load_data(data_dir: str, split: str, limit: int = 0, config: Config | None = None) -> Examples:
    """Every aligned caption of the first ``limit`` scenes (0: all) of ``split`` with its image's tokens
    (the same for every ``config``)."""
    from ..generation_data import caption_examples, image_tokens, split_size
    n = limit or split_size(data_dir, split)
    return Examples(image_tokens(data_dir, split, n), caption_examples(data_dir, split, n))


@torch.no_grad()
def evaluate(model: ImageDiffusion, data_dir: str, split: str, limit: int, steps: int = DEFAULT_STEPS,
             guidance: float = DEFAULT_GUIDANCE, seed: int = 0, batch: int = 50,
             truncation: float = DEFAULT_TRUNCATION, engine=None, ablations: bool = True,
             candidates: int | None = None, repairs: int | None = None) -> dict:
    """ST2I on the first ``limit`` scenes of ``split``, each scene's first caption: its gold TSG is
    lifted to a 3DSG (``engine``'s graph diffusion; default: a new Engine's, the shipped one), an
    image is drawn from caption + 3DSG (and from the caption alone, the "without 3DSG" row), and the
    detector reads each image (``evaluate.faithfulness``). The real render is read the same way (the
    ceiling), and so is the real render through the VQ-VAE's tokens and back (the ceiling of any
    image diffusion over those tokens).

    The full row keeps the best of ``candidates`` images per caption (default
    ``pipeline.IMAGE_CANDIDATES``; ``Engine.generate_image_tokens``); the ``one_draw`` row is the same
    with one image drawn and kept unread, and the "without 3DSG" row draws one (nothing to verify it
    against).

    Returns per row (``full``, ``one_draw``, ``text_only``, ``real``, ``tokenized``): ``spatial_acc``
    (stated relations that hold), ``object_recall`` (named objects found with their stated words),
    ``clip_score`` (with the caption), and ``fd_clip`` (Fréchet distance of CLIP image features to the
    real renders'). ``ablations=False`` leaves out all but ``full`` and ``real`` (sweeps over sampling
    settings; ``full`` is the same either way).
    """
    import numpy as np

    from ..evaluate import faithfulness, frechet_distance
    from ..graph import SceneGraph
    from ..models.clip import encode_images, input_size
    from ..models.graph_diffusion import lift
    from ..pipeline import IMAGE_CANDIDATES, IMAGE_REPAIRS, Engine
    from ..world.build import load_split
    candidates = IMAGE_CANDIDATES if candidates is None else candidates
    repairs = IMAGE_REPAIRS if repairs is None else repairs
    engine = engine or Engine()
    engine.set_model("image_diffusion", model)
    arrays, records = load_split(data_dir, split, ("rgb",))
    records, real = records[:limit], list(arrays["rgb"][:limit])
    texts = [r["captions"][0]["text"] for r in records]
    tsgs = [SceneGraph.from_dict(r["captions"][0]["tsg"]) for r in records]
    generator = torch.Generator(device=engine.device).manual_seed(seed)
    graphs = []
    for i in range(0, len(tsgs), 256):
        graphs += lift(engine.model("graph_diffusion"), tsgs[i:i + 256], 16, generator)
    rows = {"real": real}
    if ablations:
        rows["tokenized"] = [im for i in range(0, len(real), 100)
                             for im in engine.detokenize(engine.tokenize(real[i:i + 100]))]
    # row -> (use the 3DSG, images drawn per image kept, repair rounds)
    drawn = {"full": (True, candidates, repairs), "one_draw": (True, 1, 0), "text_only": (False, 1, 0)}
    drawn = drawn if ablations else {"full": drawn["full"]}
    rows.update({row: [] for row in drawn})
    for i in range(0, len(texts), batch):
        for row, (use_graph, k, r) in drawn.items():
            rows[row] += engine.generate_images(graphs[i:i + batch], texts[i:i + batch], steps, guidance,
                                                seed + i, use_graph, truncation=truncation, candidates=k,
                                                repairs=r)
    clip = engine.model("clip")
    report = {}
    features = {}
    for row, images in rows.items():
        detections = [d for i in range(0, len(images), 100) for d in engine.detect(images[i:i + 100])]
        found, held = [], []
        for tsg, det in zip(tsgs, detections):
            f, h = faithfulness(tsg, det)
            found += f
            held += h
        scores = [s for i in range(0, len(images), 100)
                  for s in engine.clip_score(images[i:i + 100], texts[i:i + 100])]
        batch_images = engine._batch(images, input_size(clip))
        features[row] = encode_images(clip, batch_images).float().cpu().numpy()
        report.update({f"{row}_spatial_acc": float(np.mean(held)), f"{row}_object_recall": float(np.mean(found)),
                       f"{row}_clip_score": float(np.mean(scores))})
    for row in rows:
        report[f"{row}_fd_clip"] = frechet_distance(features[row], features["real"])
    return {k: round(v, 4) for k, v in report.items()}
