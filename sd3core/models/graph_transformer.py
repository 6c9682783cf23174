"""The graph transformer the graph diffusion and the DGAE share: a scene token and one token per
object, self-attention with a per-head bias read from the ordered-pair features (as in graph
transformers / DiGress), and pair features updated from their two objects after every layer."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

BOX_FREQUENCIES = 6   # sinusoids per box coordinate, periods 2 down to 2/2**5 of the image side


def box_features(box: torch.Tensor) -> torch.Tensor:
    """(..., 4) box coordinates in 0-1 -> (..., 4 * 2 * BOX_FREQUENCIES) sin/cos features, so that
    small differences of position and size are easy to read."""
    angles = box[..., None] * (torch.pi * 2.0 ** torch.arange(BOX_FREQUENCIES, device=box.device))
    return torch.cat([angles.sin(), angles.cos()], -1).flatten(-2)


class GraphLayer(nn.Module):
    """Self-attention over the scene and object tokens with a per-head bias read from the pair
    features, an MLP, then each pair's features updated from its two tokens."""

    def __init__(self, width: int, pair_width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm_attn, self.norm_mlp, self.norm_pair = nn.LayerNorm(width), nn.LayerNorm(width), nn.LayerNorm(pair_width)
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        self.pair_bias = nn.Linear(pair_width, heads)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))
        self.from_subject, self.from_object = nn.Linear(width, pair_width), nn.Linear(width, pair_width)
        self.pair_mlp = nn.Sequential(nn.Linear(pair_width, 2 * pair_width), nn.GELU(),
                                      nn.Linear(2 * pair_width, pair_width))

    def forward(self, h: torch.Tensor, e: torch.Tensor, keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """h: (B, M, W) tokens, e: (B, M, M, P) pair features, keep: (B, M) bool (False: padding)."""
        b, m, w = h.shape
        q, k, v = self.qkv(self.norm_attn(h)).view(b, m, 3, self.heads, w // self.heads).permute(2, 0, 3, 1, 4)
        bias = self.pair_bias(self.norm_pair(e)).permute(0, 3, 1, 2)               # (B, H, M, M)
        bias = bias.masked_fill(~keep[:, None, None, :], float("-inf"))
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        h = h + self.out(attended.transpose(1, 2).reshape(b, m, w))
        h = h + self.mlp(self.norm_mlp(h))
        e = e + self.pair_mlp(self.norm_pair(e) + self.from_subject(h)[:, :, None] + self.from_object(h)[:, None, :])
        return h, e


def run_graph_layers(layers: nn.ModuleList, scene: torch.Tensor, objects: torch.Tensor, pairs: torch.Tensor,
                     scene_pair: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``GraphLayer``s over a scene token and P object tokens.

    scene: (B, 1, W); objects: (B, P, W); pairs: (B, P, P, PW), [b, i, j] the features of object i
    relative to j; scene_pair: (PW,), the features of every pair with the scene token; valid:
    (B, P) bool, False for padding. Returns the tokens (B, 1 + P, W), position 0 the scene, and the
    object pairs' features (B, P, P, PW).
    """
    h = torch.cat([scene, objects], 1)
    e = F.pad(pairs.permute(0, 3, 1, 2), (1, 0, 1, 0)).permute(0, 2, 3, 1)            # (B, M, M, PW)
    border = torch.zeros_like(e[..., :1])
    border[:, 0], border[:, :, 0] = 1, 1
    e = e + border * scene_pair
    keep = F.pad(valid, (1, 0), value=True)
    for layer in layers:
        h, e = layer(h, e, keep)
    return h, e[:, 1:, 1:]


def token_logits(heads: nn.ModuleDict, h: torch.Tensor, e: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-field linear ``heads`` over the final tokens h (B, 1 + P, W) and pairs e (B, P, P, PW):
    object fields read the object tokens, "ground" the scene token, "relations" the pairs."""
    logits = {f: head(h[:, 1:]) for f, head in heads.items() if f not in ("ground", "relations")}
    logits["ground"] = heads["ground"](h[:, :1])
    logits["relations"] = heads["relations"](e)
    return logits
