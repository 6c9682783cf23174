"""What the image and text diffusions share: the 3DSG as condition tokens, and the transformer they
run over [condition tokens, noisy tokens] (in-context conditioning, one sequence)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .dgae import GEOMETRY_RANGES, IDENTITY_FIELDS
from .graph_transformer import box_features

GEOMETRY_FEATURES = box_features(torch.zeros(6)).numel()   # sin/cos features of position + size
# ``project_boxes``' two estimates of how far ahead the camera looks, their spreads (metres): from a
# typical camera distance, and from the depth of each object (the world puts them within 2 m of it)
DISTANCE_SPREAD, OBJECT_SPREAD = 0.45, 1.0


class SelfAttention(nn.Module):
    """Multi-head self-attention through ``F.scaled_dot_product_attention``; parameters named as in
    ``nn.MultiheadAttention`` (whose inference fast path spends much of its time in a masked softmax
    on CPU: ``bench/attention.py``)."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * width))
        self.out_proj = nn.Linear(width, width)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, h: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """h: (B, L, W); keep: (B, L) bool, False for padding no token attends to. Returns (B, L, W)."""
        b, n, w = h.shape
        qkv = F.linear(h, self.in_proj_weight, self.in_proj_bias).view(b, n, 3, self.heads, w // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=keep[:, None, None, :])
        return self.out_proj(attended.transpose(1, 2).reshape(b, n, w))


class Block(nn.Module):
    """Pre-norm transformer layer: self-attention, then a GELU MLP of 4 x the width; each added to
    its input. Parameters named as in ``nn.TransformerEncoderLayer``."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.self_attn = SelfAttention(width, heads)
        self.linear1, self.linear2 = nn.Linear(width, 4 * width), nn.Linear(4 * width, width)

    def forward(self, h: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        h = h + self.self_attn(self.norm1(h), keep)
        return h + self.linear2(F.gelu(self.linear1(self.norm2(h))))


class Transformer(nn.Module):
    """A stack of ``Block``s over (B, L, W) tokens, batch first, no dropout; its state dict reads
    like ``nn.TransformerEncoder``'s (``layers.{i}.self_attn.in_proj_weight`` ...)."""

    def __init__(self, width: int, heads: int, layers: int):
        super().__init__()
        if width % heads:
            raise ValueError(f"heads: got {heads}, expected a divisor of the width {width}")
        self.layers = nn.ModuleList(Block(width, heads) for _ in range(layers))

    def forward(self, h: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """h: (B, L, W) tokens; keep: (B, L) bool, False for padding (attended by none). Returns (B, L, W)."""
        for layer in self.layers:
            h = layer(h, keep)
        return h


class PairTokens(nn.Module):
    """One token per ordered pair of objects (i, j), i != j: the embedding of the predicate set of i
    relative to j plus a projection of the two object tokens, so a relation is read off one token
    together with what its two ends are."""

    def __init__(self, width: int, relation_sets: int):
        super().__init__()
        self.relation = nn.Embedding(relation_sets, width)
        self.ends = nn.Linear(2 * width, width)

    def forward(self, objects: torch.Tensor, valid: torch.Tensor, relations: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """objects (B, P, W) tokens, valid (B, P) bool, relations (B, P, P) int64 set indices ->
        tokens (B, P * (P - 1), W) in row order (i, then j), and which are real (both ends valid)."""
        p = objects.shape[1]
        i, j = (~torch.eye(p, dtype=torch.bool, device=objects.device)).nonzero(as_tuple=True)
        h = self.relation(relations[:, i, j]) + self.ends(torch.cat([objects[:, i], objects[:, j]], -1))
        return h, valid[:, i] & valid[:, j]


def graph_tokens(from_graph: nn.Linear, from_geometry: nn.Linear, null_graph: torch.Tensor,
                 cond: dict[str, torch.Tensor], identity: nn.Module | None = None,
                 pairs: PairTokens | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The 3DSG as condition tokens: a learned "no 3DSG" token, the DGAE scene token, and per object
    its DGAE token plus its position and size features (``dgae.graph_features``), plus, with an
    ``identity`` embedding (``dgae.Identity``), its label and attribute words; with ``pairs``
    (``PairTokens``), then one token per ordered pair of objects with its relations.

    cond: "graph" (B, 1 + P, Dg), "graph_valid" (B, 1 + P) bool, "geometry" (B, P, 6), "use_graph"
    (B,) bool, with ``identity`` "identity" (B, P, 4) int64, with ``pairs`` "relations" (B, P, P)
    int64. Returns tokens (B, 2 + P [+ P * (P - 1)], W) and which to attend to, bool of the same
    length: the null token always, the others where valid and the 3DSG is used.
    """
    h = from_graph(cond["graph"])
    objects = from_geometry(box_features(cond["geometry"]))
    if identity is not None:
        objects = objects + identity({k: cond["identity"][..., i] for i, k in enumerate(IDENTITY_FIELDS)})
    h = h + torch.cat([torch.zeros_like(h[:, :1]), objects], 1)
    valid = cond["graph_valid"]
    if pairs is not None:
        pair_h, pair_valid = pairs(h[:, 1:], valid[:, 1:], cond["relations"])
        h, valid = torch.cat([h, pair_h], 1), torch.cat([valid, pair_valid], 1)
    h = torch.cat([null_graph.expand(h.shape[0], 1, -1), h], 1)
    use = cond["use_graph"][:, None]
    return h, torch.cat([torch.ones_like(use), valid & use], 1)


def project_boxes(geometry: torch.Tensor, valid: torch.Tensor, fov_deg: float, look_height: float,
                  distance: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Where a camera sees a 3DSG's objects: each object's 3D box (position and size, gravity-aligned
    camera frame) through a pinhole camera of vertical field of view ``fov_deg`` whose pitch is read
    off the 3DSG itself. The camera is as high above the ground as the lowest object bottom is below
    it, and looks at a point ``look_height`` metres above the ground, at a horizontal distance
    estimated twice and averaged by precision: from the camera height and a typical ``distance`` to
    that point (metres; ``DISTANCE_SPREAD``), and as the objects' mean depth (``OBJECT_SPREAD`` each).

    geometry: (B, P, 6) as ``dgae.graph_features`` gives it; valid: (B, P) bool. Returns boxes
    (B, P, 4) as x0, y0, x1, y1 in image coordinates (0-1, y down, not clipped) and the depth of each
    box centre along the viewing direction (B, P), metres. Padding objects give finite junk.
    """
    low, span = torch.tensor(GEOMETRY_RANGES, device=geometry.device, dtype=geometry.dtype).T
    values = geometry * span + low
    position, size = values[..., :3], values[..., 3:]
    height = -torch.where(valid, position[..., 1] - size[..., 1] / 2, torch.inf).amin(1).clamp(max=-0.5)
    count = valid.sum(1)
    mean_depth = torch.where(valid, position[..., 2], 0).sum(1) / count.clamp(min=1)
    from_distance = (distance ** 2 - height ** 2).clamp(min=1.0).sqrt()
    w_distance, w_objects = 1 / DISTANCE_SPREAD ** 2, count / OBJECT_SPREAD ** 2
    ahead = (from_distance * w_distance + mean_depth * w_objects) / (w_distance + w_objects)
    pitch = torch.atan2(height - look_height, ahead)[:, None, None]                      # (B, 1, 1)
    signs = torch.tensor([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)],
                         device=geometry.device, dtype=geometry.dtype)                     # (8, 3)
    corners = position[..., None, :] + signs * size[..., None, :] / 2                        # (B, P, 8, 3)
    x, y, z = corners.unbind(-1)
    up = y * pitch.cos() + z * pitch.sin()
    forward = (z * pitch.cos() - y * pitch.sin()).clamp(min=0.1)
    focal = 0.5 / math.tan(math.radians(fov_deg) / 2)
    u, v = 0.5 + focal * x / forward, 0.5 - focal * up / forward
    boxes = torch.stack([u.amin(-1), v.amin(-1), u.amax(-1), v.amax(-1)], -1)
    depth = position[..., 2] * pitch[..., 0].cos() - position[..., 1] * pitch[..., 0].sin()
    return boxes, depth


def cell_layout(boxes: torch.Tensor, depth: torch.Tensor, valid: torch.Tensor, grid: int) -> torch.Tensor:
    """How much of each cell of a (grid x grid) image each object shows in: the share of the cell its
    box covers, times the share the boxes nearer the camera leave uncovered.

    boxes (B, P, 4) in 0-1 (``project_boxes``), depth (B, P) metres, valid (B, P) bool -> (B, grid**2, P)
    weights in [0, 1], cells row by row, zero for padding.
    """
    edges = torch.arange(grid + 1, device=boxes.device, dtype=boxes.dtype) / grid
    def overlap(lo, hi):   # (B, P) -> (B, P, grid): share of each cell's span inside [lo, hi]
        return ((torch.minimum(hi[..., None], edges[1:]) - torch.maximum(lo[..., None], edges[:-1])) * grid).clamp(0, 1)
    cover = overlap(boxes[..., 1], boxes[..., 3])[..., :, None] * overlap(boxes[..., 0], boxes[..., 2])[..., None, :]
    cover = cover.flatten(2) * valid[..., None]                                             # (B, P, cells)
    nearer = (depth[:, None, :] < depth[:, :, None]) & valid[:, None, :]                     # [b, o, o'] o' nearer
    hidden = torch.einsum("bop,bpc->boc", nearer.to(cover.dtype), torch.log1p(-cover.clamp(max=0.99)))
    return (cover * hidden.exp()).transpose(1, 2)
