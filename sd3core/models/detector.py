"""Detector: image -> VSG (objects with label, colour, size, material, box; 2D relations) + depth.

A CenterNet-style network (Zhou et al. 2019, "Objects as Points"): a small residual CNN reads the
(B, 3, S, S) image in [0, 1] (S = ``image_size``, 128 for world renders) down to stride 16, a
feature pyramid brings it back to one (B, C, G, G) grid of stride 4 (G = S / 4), and 1x1 heads give
per cell (``HEADS``, channel counts in brackets):

- ``heatmap`` [6]: logits of "an object of shape class c has its box centre in this cell";
- ``offset`` [2]: the centre's position inside the cell, (x, y) in cells;
- ``wh`` [2]: box width and height in cells;
- ``colour`` [8], ``size`` [2], ``material`` [2]: attribute logits (``vocab`` order);
- ``depth`` [1]: log of the object's depth in metres: the ``z`` of its 3DSG ``position`` (centre of
  its 3D box, along the camera's horizontal forward axis), which is what the 3DSG needs.

Boxes are the VSG's: ``[x0, y0, x1, y1]`` in 0-1 of the visible pixels. ``detect`` decodes heatmap
peaks (3x3 max-pool, one object per peak whatever its class) into ``Detections``. Metrics are plain
functions of predicted and gold lists in ``sd3core.evaluate``, so they are tested without a model.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..graph import SceneGraph, SGObject, SGRelation
from ..spatial import relations_2d
from ..vocab import ATTRIBUTE_KIND, COLOURS, MATERIALS, SHAPES, SIZES

HEADS = {"heatmap": len(SHAPES), "offset": 2, "wh": 2, "colour": len(COLOURS), "size": len(SIZES),
         "material": len(MATERIALS), "depth": 1}
COLOUR_NAMES = tuple(COLOURS)  # colour class index -> name (``COLOURS`` maps names to RGB)
STRIDE = 4                 # pixels per cell of the output grid
GAUSS_ALPHA = 0.54         # heatmap target: Gaussian sigma = alpha * box side / 6 (TTFNet), in cells
MIN_SIGMA = 0.3            # cells: the smallest Gaussian sigma
WH_WEIGHT = 0.1            # loss weight of the box size (L1 in cells), as in CenterNet
DETECT_THRESHOLD = 0.3     # heatmap score of the VSG that ``evaluate`` reads relations and attributes from
MAP_THRESHOLD = 0.05       # lowest score kept for mAP


@dataclass
class Config:
    image_size: int = 128                        # pixels per side of the input image
    widths: tuple[int, ...] = (16, 32, 80, 128)  # channels of the stages at strides 2, 4, 8, 16
    blocks: tuple[int, ...] = (0, 1, 2, 3)       # residual blocks per stage (after its stride-2 conv)
    head_width: int = 40                         # channels of the stride-4 pyramid and head
    max_objects: int = 8                         # objects per training image (more are dropped)
    max_detections: int = 16                     # peaks decoded per image (<= 16 keeps relations <= 480)


def _conv_bn(cin: int, cout: int, stride: int = 1, relu: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, nn.ReLU(inplace=True)) if relu else nn.Sequential(*layers)


class ResBlock(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(_conv_bn(width, width), _conv_bn(width, width, relu=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.body(x))


class Detector(nn.Module):
    def __init__(self, config: Config):
        super().__init__()
        if len(config.widths) != len(config.blocks) or len(config.widths) < 2:
            raise ValueError(f"widths/blocks: got {config.widths} and {config.blocks}; expected two lists "
                             "of the same length, at least 2 (strides 2, 4, ...)")
        if config.image_size % (2 ** len(config.widths)):
            raise ValueError(f"image_size: got {config.image_size}, expected a multiple of "
                             f"{2 ** len(config.widths)} for {len(config.widths)} stride-2 stages")
        self.config = config
        stages, cin = [], 3
        for width, n in zip(config.widths, config.blocks):
            stages.append(nn.Sequential(_conv_bn(cin, width, stride=2), *[ResBlock(width) for _ in range(n)]))
            cin = width
        self.stages = nn.ModuleList(stages)
        hw = config.head_width
        self.laterals = nn.ModuleList(nn.Conv2d(w, hw, 1) for w in config.widths[1:])
        self.head = nn.Sequential(_conv_bn(hw, hw), nn.Conv2d(hw, sum(HEADS.values()), 1))
        with torch.no_grad():  # CenterNet's prior: every cell starts at heatmap probability 0.1
            self.head[-1].bias[:HEADS["heatmap"]].fill_(-math.log(9.0))
        self.to(memory_format=torch.channels_last)  # ~10% faster convolutions on CPU (oneDNN)

    @property
    def grid(self) -> int:
        """Cells per side of the output grid."""
        return self.config.image_size // STRIDE

    def stage_features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, S, S) float images in [0, 1] -> each stage's output, (B, widths[i], S / 2**(i+1), ...)."""
        x, feats = (images * 2 - 1).contiguous(memory_format=torch.channels_last), []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, 3, S, S) float images in [0, 1] -> {head: (B, HEADS[head], G, G)} raw outputs."""
        feats = self.stage_features(images)
        top = self.laterals[-1](feats[-1])
        for i in reversed(range(len(self.laterals) - 1)):
            top = F.interpolate(top, scale_factor=2.0, mode="nearest") + self.laterals[i](feats[i + 1])
        return dict(zip(HEADS, self.head(top).split(list(HEADS.values()), dim=1)))


def build(config: Config) -> Detector:
    return Detector(config)


# --- data and targets ---

def targets_from_graphs(vsg: dict, graph3d: dict, max_objects: int) -> dict[str, torch.Tensor]:
    """Padded per-object targets of one scene from its record's ``vsg`` and ``graph3d`` dicts.

    Returns ``boxes`` (K, 4) float [x0, y0, x1, y1] in 0-1 (the VSG's visible boxes), ``label``,
    ``colour``, ``size``, ``material`` (K,) int64 class indices (vocab order), ``depth`` (K,) float
    metres (3DSG position z) and ``valid`` (K,) bool; K = ``max_objects``, extra objects dropped.
    """
    by_id = {o["id"]: o for o in graph3d["objects"]}
    out = {"boxes": torch.zeros(max_objects, 4), "depth": torch.ones(max_objects),
           "valid": torch.zeros(max_objects, dtype=torch.bool)}
    out.update({k: torch.zeros(max_objects, dtype=torch.long)
                for k in ("label", "colour", "size", "material")})
    for k, o in enumerate(vsg["objects"][:max_objects]):
        kinds = {ATTRIBUTE_KIND[a]: a for a in by_id[o["id"]]["attributes"]}
        out["boxes"][k] = torch.tensor(o["box"])
        out["label"][k] = SHAPES.index(o["label"])
        out["colour"][k] = COLOUR_NAMES.index(kinds["colour"])
        out["size"][k] = SIZES.index(kinds["size"])
        out["material"][k] = MATERIALS.index(kinds["material"])
        out["depth"][k] = by_id[o["id"]]["position"][2]
        out["valid"][k] = True
    return out


def load_data(data_dir: str, split: str, limit: int = 0, config: Config | None = None) -> list[dict]:
    """World scenes of ``split`` as samples: ``image`` (3, S, S) uint8 plus ``targets_from_graphs``
    for ``config.max_objects`` objects (default: ``Config()``)."""
    from ..world.build import load_split
    arrays, records = load_split(data_dir, split, ("rgb",))
    n = min(limit, len(records)) if limit else len(records)
    max_objects = (config or Config()).max_objects
    images = torch.from_numpy(np.ascontiguousarray(arrays["rgb"][:n])).permute(0, 3, 1, 2).contiguous()
    return [{"image": images[i], **targets_from_graphs(r["vsg"], r["graph3d"], max_objects)}
            for i, r in enumerate(records[:n])]


def heatmap_targets(boxes: torch.Tensor, label: torch.Tensor, valid: torch.Tensor, grid: int) -> torch.Tensor:
    """(B, K, 4) boxes in 0-1, (B, K) labels and valid flags -> (B, len(SHAPES), G, G) targets.

    Each object puts an axis-aligned Gaussian (sigma = GAUSS_ALPHA * side / 6 cells) with value
    exactly 1 on the cell holding its box centre; overlapping Gaussians of a class take the maximum.
    """
    centre = ((boxes[..., :2] + boxes[..., 2:]) / 2 * grid).floor().clamp(0, grid - 1)
    sigma = ((boxes[..., 2:] - boxes[..., :2]) * grid * GAUSS_ALPHA / 6).clamp_min(MIN_SIGMA)
    cells = torch.arange(grid, dtype=boxes.dtype, device=boxes.device)
    g = torch.exp(-(cells - centre[..., :, None]) ** 2 / (2 * sigma[..., :, None] ** 2))  # (B, K, 2, G)
    g = g[..., 1, :, None] * g[..., 0, None, :] * valid[..., None, None]                  # (B, K, G, G)
    onehot = F.one_hot(label, len(SHAPES)).to(g.dtype)                                   # (B, K, C)
    return (g[:, :, None] * onehot[..., None, None]).amax(dim=1)


def focal_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss, summed and divided by the number of peaks."""
    pos = target.eq(1).float()
    log_p, log_not_p = F.logsigmoid(logits), F.logsigmoid(-logits)
    p = log_p.exp()
    pos_loss = (log_p * (1 - p) ** 2 * pos).sum()
    neg_loss = (log_not_p * p ** 2 * (1 - target) ** 4 * (1 - pos)).sum()
    return -(pos_loss + neg_loss) / pos.sum().clamp_min(1)


def _gather(out: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """(B, C, G, G) head output and (B, K) flat cell indices -> (B, K, C)."""
    flat = out.flatten(2)
    return flat.gather(2, index[:, None, :].expand(-1, flat.shape[1], -1)).transpose(1, 2)


def mirror_half(images: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Training augmentation: a random half of the (B, 3, S, S) images mirrored left to right, with
    their (B, K, 4) boxes ``[x0, y0, x1, y1]`` in 0-1 mirrored to match (a mirrored world scene is as
    plausible as the scene; labels, attributes and depths do not change)."""
    flip = torch.rand(images.shape[0], device=images.device) < 0.5
    images = torch.where(flip[:, None, None, None], images.flip(-1), images)
    mirrored = torch.stack([1 - boxes[..., 2], boxes[..., 1], 1 - boxes[..., 0], boxes[..., 3]], -1)
    return images, torch.where(flip[:, None, None], mirrored, boxes)


def loss(model: nn.Module, batch: dict) -> tuple[torch.Tensor, dict]:
    """Focal heatmap loss + L1 offset + 0.1 L1 size + attribute cross-entropies + L1 log depth; in
    training mode on a randomly mirrored half of the batch (``mirror_half``)."""
    images, boxes, valid = batch["image"].float() / 255, batch["boxes"], batch["valid"]
    if model.training:
        images, boxes = mirror_half(images, boxes)
    out = model(images)
    grid = out["heatmap"].shape[-1]
    centre = (boxes[..., :2] + boxes[..., 2:]) / 2 * grid
    cell = centre.floor().clamp(0, grid - 1)
    index = (cell[..., 1] * grid + cell[..., 0]).long()
    heat = focal_loss(out["heatmap"], heatmap_targets(boxes, batch["label"], valid, grid))
    n = valid.sum().clamp_min(1)

    def l1(pred: torch.Tensor, gold: torch.Tensor) -> torch.Tensor:
        return ((pred - gold).abs().sum(-1) * valid).sum() / n

    def ce(head: str) -> torch.Tensor:
        logits = _gather(out[head], index)
        return (F.cross_entropy(logits.flatten(0, 1), batch[head].flatten(), reduction="none")
                * valid.flatten()).sum() / n

    offset = l1(_gather(out["offset"], index), centre - cell)
    wh = l1(_gather(out["wh"], index), (boxes[..., 2:] - boxes[..., :2]) * grid)
    depth = l1(_gather(out["depth"], index)[..., 0:1], batch["depth"].clamp_min(0.1).log()[..., None])
    attrs = {k: ce(k) for k in ("colour", "size", "material")}
    total = heat + offset + WH_WEIGHT * wh + depth + sum(attrs.values())
    logs = {"heat": heat.item(), "offset": offset.item(), "wh": wh.item(), "depth": depth.item(),
            **{k: v.item() for k, v in attrs.items()}}
    return total, logs


# --- inference ---

@dataclass(frozen=True)
class Detections:
    """What ``detect`` reads from one image.

    ``graph``: a ``"vsg"`` SceneGraph, objects with ids 0..n-1 in descending score, ``label`` (a
    shape), ``attributes`` (colour, size, material) and ``box`` ([x0, y0, x1, y1] in 0-1, clipped),
    and the relations ``spatial.relations_2d`` reads from the boxes (phrase = predicate).
    ``depth``: per object, in object order, the estimated depth in metres (the 3DSG position z: the
    object centre along the camera's horizontal forward axis). ``scores``: per object, the heatmap
    confidence in (0, 1).
    """
    graph: SceneGraph
    depth: tuple[float, ...]
    scores: tuple[float, ...]

    def above(self, threshold: float) -> Detections:
        """The detections scoring at least ``threshold``, relations recomputed among them."""
        keep = [i for i, s in enumerate(self.scores) if s >= threshold]
        return make_detections([self.graph.objects[i] for i in keep], [self.depth[i] for i in keep],
                               [self.scores[i] for i in keep])


def make_detections(objects: list[SGObject], depth: list[float], scores: list[float]) -> Detections:
    """Detections from objects (renumbered 0..n-1 in the given order) with their 2D relations."""
    objects = [SGObject(i, o.label, o.attributes, o.box) for i, o in enumerate(objects)]
    relations = [SGRelation(s, p, o, p) for s, p, o in relations_2d(objects)]
    return Detections(SceneGraph("vsg", objects, relations), tuple(depth), tuple(scores))


def check_images(images, size: int) -> torch.Tensor:
    """Raise ValueError unless ``images`` is a (B, 3, size, size) float tensor in [0, 1]."""
    if not torch.is_tensor(images):
        raise ValueError(f"images: got {type(images).__name__}, expected a torch.Tensor of shape "
                         f"(B, 3, {size}, {size}), float in [0, 1]")
    if images.dim() != 4 or tuple(images.shape[1:]) != (3, size, size):
        raise ValueError(f"images: got shape {tuple(images.shape)}, expected (B, 3, {size}, {size}); "
                         f"for (B, H, W, 3) use .permute(0, 3, 1, 2), for another size resize with "
                         f"F.interpolate(images, size=({size}, {size}), mode='area')")
    if not images.is_floating_point():
        raise ValueError(f"images: got dtype {images.dtype}, expected float in [0, 1] "
                         "(for uint8 use images.float() / 255)")
    if images.numel() and (images.min() < 0 or images.max() > 1):
        raise ValueError(f"images: values from {float(images.min()):.3g} to {float(images.max()):.3g}, "
                         "expected [0, 1]")
    return images


def decode(out: dict[str, torch.Tensor], threshold: float, max_detections: int) -> list[Detections]:
    """Raw head outputs (``Detector.forward``) -> per image the peaks scoring at least ``threshold``.

    A peak is a cell whose best class score is the maximum of its 3x3 neighbourhood over all classes
    (so one object is one detection); at most ``max_detections`` per image, by descending score.
    """
    heat = out["heatmap"].float().sigmoid()
    batch, _, grid, _ = heat.shape
    best, label = heat.max(dim=1)                                             # (B, G, G)
    peaks = best * (F.max_pool2d(best[:, None], 3, stride=1, padding=1)[:, 0] == best)
    scores, index = peaks.flatten(1).topk(min(max_detections, grid * grid), dim=1)
    fields = {k: _gather(out[k].float(), index)
              for k in ("offset", "wh", "colour", "size", "material", "depth")}
    results = []
    for b in range(batch):
        objects, depth, kept = [], [], []
        for k in range(index.shape[1]):
            if scores[b, k] < threshold:
                break
            cell = int(index[b, k])
            cx = (cell % grid + float(fields["offset"][b, k, 0])) / grid
            cy = (cell // grid + float(fields["offset"][b, k, 1])) / grid
            w, h = (max(0.0, float(v)) / grid for v in fields["wh"][b, k])
            box = [round(min(1.0, max(0.0, v)), 4) for v in (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)]
            attributes = (COLOUR_NAMES[int(fields["colour"][b, k].argmax())],
                          SIZES[int(fields["size"][b, k].argmax())],
                          MATERIALS[int(fields["material"][b, k].argmax())])
            objects.append(SGObject(len(objects), SHAPES[int(label.flatten(1)[b, cell])], attributes, box))
            depth.append(round(math.exp(float(fields["depth"][b, k, 0])), 3))
            kept.append(round(float(scores[b, k]), 4))
        results.append(make_detections(objects, depth, kept))
    return results


def flip_average(out: dict[str, torch.Tensor], mirrored: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """CenterNet's flip test: the head outputs of images and of their mirror images (flipped left to
    right), each {head: (B, C, G, G)} -> their average in the images' own frame.

    The mirror's maps are flipped back; the offsets are the unflipped pass's alone (a mirrored
    centre sits at 1 - x in its cell, which would blur the peak's sub-cell position). The average
    is in the images' own frame, so boxes, and the left/right relations read from them, are too.
    """
    back = {k: v.flip(-1) for k, v in mirrored.items()}
    return {k: out[k] if k == "offset" else (out[k] + back[k]) / 2 for k in out}


@torch.no_grad()
def detect(model: Detector, images: torch.Tensor, threshold: float = DETECT_THRESHOLD,
           flip_test: bool = True) -> list[Detections]:
    """(B, 3, S, S) float images in [0, 1] -> one ``Detections`` per image (see that class).

    With ``flip_test`` the heads' outputs are averaged with those of the mirrored images
    (``flip_average``): twice the compute, steadier boxes, attributes and depths (measured on the
    world test split in the README). Runs the model in eval mode (its train/eval mode is restored
    after); raises ValueError for images of the wrong type, shape, dtype or range.
    """
    check_images(images, model.config.image_size)
    was_training = model.training
    model.eval()
    try:
        images = images.to(next(model.parameters()).device)
        out = model(images)
        if flip_test:
            out = flip_average(out, model(images.flip(-1)))
    finally:
        model.train(was_training)
    return decode(out, threshold, model.config.max_detections)


@torch.no_grad()
def evaluate(model: Detector, data_dir: str, split: str, limit: int) -> dict:
    """``detection_metrics`` on the first ``limit`` scenes of ``split`` (0: all), rounded."""
    from ..evaluate import detection_metrics
    from ..world.build import load_split
    arrays, records = load_split(data_dir, split, ("rgb",))
    n = min(limit, len(records)) if limit else len(records)
    predicted = []
    for start in range(0, n, 64):
        rgb = torch.from_numpy(np.ascontiguousarray(arrays["rgb"][start:min(n, start + 64)]))
        predicted += detect(model, rgb.permute(0, 3, 1, 2).float() / 255, MAP_THRESHOLD)
    gold = [SceneGraph.from_dict(r["vsg"]) for r in records[:n]]
    gold_3d = [SceneGraph.from_dict(r["graph3d"]) for r in records[:n]]
    return {k: round(v, 4) for k, v in detection_metrics(predicted, gold, gold_3d, DETECT_THRESHOLD).items()}
