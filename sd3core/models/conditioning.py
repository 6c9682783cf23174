"""What the image and text diffusions share: the 3DSG as condition tokens, and the transformer they
run over [condition tokens, noisy tokens] (in-context conditioning, one sequence)."""
from __future__ import annotations

import torch
from torch import nn

from .dgae import IDENTITY_FIELDS
from .graph_transformer import box_features

GEOMETRY_FEATURES = box_features(torch.zeros(6)).numel()   # sin/cos features of position + size


def transformer(width: int, heads: int, layers: int) -> nn.TransformerEncoder:
    """Pre-norm transformer encoder, GELU, no dropout, batch first."""
    layer = nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=0.0, activation="gelu",
                                       batch_first=True, norm_first=True)
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


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
