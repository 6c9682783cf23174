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


def graph_tokens(from_graph: nn.Linear, from_geometry: nn.Linear, null_graph: torch.Tensor,
                 cond: dict[str, torch.Tensor], identity: nn.Module | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """The 3DSG as condition tokens: a learned "no 3DSG" token, the DGAE scene token, and per object
    its DGAE token plus its position and size features (``dgae.graph_features``), plus, with an
    ``identity`` embedding (``dgae.Identity``), its label and attribute words.

    cond: "graph" (B, 1 + P, Dg), "graph_valid" (B, 1 + P) bool, "geometry" (B, P, 6), "use_graph"
    (B,) bool, and with ``identity`` "identity" (B, P, 4) int64. Returns tokens (B, 2 + P, W) and
    which to attend to (B, 2 + P) bool: the null token always, the others where valid and the 3DSG
    is used.
    """
    h = from_graph(cond["graph"])
    objects = from_geometry(box_features(cond["geometry"]))
    if identity is not None:
        objects = objects + identity({k: cond["identity"][..., i] for i, k in enumerate(IDENTITY_FIELDS)})
    h = h + torch.cat([torch.zeros_like(h[:, :1]), objects], 1)
    h = torch.cat([null_graph.expand(h.shape[0], 1, -1), h], 1)
    use = cond["use_graph"][:, None]
    return h, torch.cat([torch.ones_like(use), cond["graph_valid"] & use], 1)
