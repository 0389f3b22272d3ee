"""FNAC's loss terms as pure functions of the normalised embeddings (spec §2).

Warmup and the weights (100 for each false-negative term) belong to the training loop; here only
the four terms are computed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: Foreground threshold on the min-max normalised map S[i, i] (published: 0.6).
FOREGROUND_THRESHOLD = 0.6


def similarity_logits(v: torch.Tensor, a: torch.Tensor, tau: float) -> torch.Tensor:
    """(B, D, h, w), (B, D) -> (B, B, h, w), S[n, m] = <v_n, a_m> / tau."""
    return torch.einsum("nchw,mc->nmhw", v, a) / tau


def contrastive_loss(logits: torch.Tensor) -> torch.Tensor:
    """Symmetric cross entropy over (B, B) logits whose diagonal holds the positives."""
    labels = torch.arange(logits.shape[0], device=logits.device)
    return F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)


def foreground_features(v: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    """(B, D, h, w), raw maps (B, h, w) -> (B, D): mean of v over the map's hot region.

    Positions outside the mask count as zeros in the mean; only the mask is cut from the graph.
    """
    flat = maps.flatten(1)  # (B, hw)
    lo = flat.min(dim=1, keepdim=True).values
    hi = flat.max(dim=1, keepdim=True).values
    norm = (flat - lo) / (hi - lo + 1e-5)
    mask = (norm > FOREGROUND_THRESHOLD).to(v.dtype).detach()  # (B, hw)
    return (v.flatten(2) * mask.unsqueeze(1)).mean(dim=2)  # (B, D)


def _affinity_l1(target: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of the row-wise softmaxes of two (B, B) matrices."""
    return F.l1_loss(target.softmax(dim=1), logits.softmax(dim=1))


def loss_terms(v: torch.Tensor, a: torch.Tensor, tau: float = 0.03) -> dict[str, torch.Tensor]:
    """The four FNAC terms for image maps v (B, D, h, w) and audio embeddings a (B, D).

    Returns ``contrastive`` (EZ-VSL's max-MIL loss), ``fns_audio`` (FNS-1), ``tns`` and
    ``fns_image`` (FNS-2), each a scalar tensor.
    """
    sim = similarity_logits(v, a, tau)  # (B, B, h, w)
    logits = sim.flatten(2).max(dim=2).values  # (B, B)
    b = torch.arange(v.shape[0], device=v.device)
    maps = sim[b, b]  # (B, h, w)

    audio_affinity = a @ a.t() / tau  # (B, B)
    pooled = v.mean(dim=(2, 3))  # (B, D), not re-normalised
    image_affinity = pooled @ pooled.t() / tau
    fg = foreground_features(v, maps)  # (B, D)
    foreground_affinity = fg @ fg.t() / tau

    return {
        "contrastive": contrastive_loss(logits),
        "fns_audio": _affinity_l1(audio_affinity, logits),
        "tns": _affinity_l1(audio_affinity, foreground_affinity),
        "fns_image": _affinity_l1(image_affinity, logits),
    }
