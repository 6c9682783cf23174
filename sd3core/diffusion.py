"""Discrete diffusion with an absorbing (mask) state: the math all three SD3 diffusions share.

Conventions, the same for every diffusion in ``sd3core``:

- a variable with ``K`` classes holds an int64 class index in ``0..K-1``; the mask (absorbing) state
  is the extra index ``K``, the last one. Logits a network predicts are over the ``K`` real classes.
- time is continuous, ``t`` in [0, 1]: at time ``t`` each variable has been replaced by the mask with
  probability ``t`` (the linear schedule of masked diffusion, Austin et al. 2021; Sahoo et al. 2024),
  independently of the others; ``t = 0`` is the data, ``t = 1`` is all masks.
- the network predicts the clean data, p(x_0 | x_t), for every variable; training is cross-entropy
  on the masked variables (``masked_cross_entropy``).
- sampling walks ``t`` from 1 to 0 (``sampling_times``); from ``t`` to ``s < t`` the exact posterior
  of the absorbing process unmasks each still-masked variable with probability ``(t - s) / t`` and
  draws its class from the network's prediction (``unmask_step``). Fewer steps skip ahead on the same
  schedule (fast sampling). Unmasked variables never change, so clamped (given) variables stay put.

Nothing here knows about networks, graphs or images: tensors in, tensors out, and an explicit
``torch.Generator`` wherever there is randomness.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def mask_noise(x0: torch.Tensor, num_classes: int, t: torch.Tensor, generator: torch.Generator | None = None,
               maskable: torch.Tensor | None = None) -> torch.Tensor:
    """Forward process q(x_t | x_0): mask each variable with probability ``t``.

    ``x0``: (B, ...) int64 classes in 0..num_classes-1. ``t``: (B,) float in [0, 1], one time per
    sample. ``maskable``: optional bool tensor of ``x0``'s shape, False for variables that stay as they
    are (padding, clamped values). Returns x_t, same shape, masked entries set to ``num_classes``.
    """
    shape = (-1,) + (1,) * (x0.dim() - 1)
    hit = torch.rand(x0.shape, generator=generator, device=x0.device) < t.view(shape)
    if maskable is not None:
        hit &= maskable
    return torch.where(hit, torch.full_like(x0, num_classes), x0)


def masked_cross_entropy(logits: torch.Tensor, x0: torch.Tensor, xt: torch.Tensor, num_classes: int,
                         target_spread: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed cross-entropy of ``logits`` (..., K) against ``x0`` (...) over the entries masked in
    ``xt`` (those equal to ``num_classes``), and the number of such entries (a float tensor).

    ``target_spread`` > 0 is for ordered classes (bins of a quantity): the target is then a Gaussian
    over the class indices around the true one with that standard deviation (in classes), so a
    near miss costs less than a far one.
    """
    masked = xt == num_classes
    if not masked.any():
        return logits.sum() * 0.0, masked.sum().float()
    logits, target = logits[masked].float(), x0[masked]
    if target_spread <= 0:
        return F.cross_entropy(logits, target, reduction="sum"), masked.sum().float()
    classes = torch.arange(num_classes, device=logits.device)
    soft = torch.softmax(-0.5 * ((classes - target[:, None]) / target_spread) ** 2, dim=-1)
    return -(soft * F.log_softmax(logits, -1)).sum(), masked.sum().float()


def sequence_loss(predict, x0: torch.Tensor, num_classes: int) -> tuple[torch.Tensor, dict]:
    """The masked-diffusion training loss of a batch of token sequences ``x0`` (B, L): one time
    t ~ U(0, 1) per sequence, each token masked with probability t, ``predict(x_t)`` -> (B, L, K)
    logits of the clean tokens, cross-entropy at the masked places averaged over them. Returns the
    loss and {"acc": share of masked tokens whose most likely class is right}."""
    noisy = mask_noise(x0, num_classes, torch.rand(x0.shape[0], device=x0.device))
    logits = predict(noisy)
    ce, n = masked_cross_entropy(logits, x0, noisy, num_classes)
    hit = ((logits.argmax(-1) == x0) & (noisy == num_classes)).sum()
    return ce / n.clamp_min(1), {"acc": float(hit / n.clamp_min(1))}


def sampling_times(steps: int) -> list[float]:
    """The ``steps + 1`` times 1, ..., 0 that a sampler of ``steps`` steps visits, evenly spaced."""
    if steps < 1:
        raise ValueError(f"steps: got {steps}, expected at least 1")
    return [1.0 - k / steps for k in range(steps + 1)]


def unmask_step(xt: torch.Tensor, logits: torch.Tensor, t: float, s: float,
                generator: torch.Generator | None = None, allowed: torch.Tensor | None = None,
                temperature: float = 1.0) -> torch.Tensor:
    """One reverse step from time ``t`` to ``s < t``: returns x_s.

    ``xt``: (...) int64, mask = K. ``logits``: (..., K) the network's prediction of x_0. ``allowed``:
    optional bool (..., K), False for classes a variable may not take (constrained sampling; each
    variable needs at least one allowed class). ``temperature`` scales the logits (0: the most likely
    class). At ``s = 0`` every masked variable is unmasked.
    """
    num_classes = logits.shape[-1]
    logits = logits.float()
    if allowed is not None:
        logits = logits.masked_fill(~allowed, float("-inf"))
    if temperature > 0:
        probs = F.softmax(logits / temperature, dim=-1).reshape(-1, num_classes)
        drawn = torch.multinomial(probs, 1, generator=generator).view(xt.shape)
    else:
        drawn = logits.argmax(-1)
    masked = xt == num_classes
    reveal = masked if s <= 0 else masked & (
        torch.rand(xt.shape, generator=generator, device=xt.device) < (t - s) / t)
    return torch.where(reveal, drawn, xt)


def truncate(logits: torch.Tensor, keep: float) -> torch.Tensor:
    """Keep each prediction's most likely classes up to ``keep`` of its probability mass (at least
    the top one), the rest set to -inf (VQ-Diffusion's truncation; ``keep`` = 1: unchanged).
    ``logits``: (..., K)."""
    if keep >= 1:
        return logits
    probs, order = logits.softmax(-1).sort(-1, descending=True)
    drop_sorted = probs.cumsum(-1) - probs > keep       # the mass before a class already exceeds keep
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))
