"""FNAC loss terms against a naive per-element implementation and hand-computed cases."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from fnac.losses import loss_terms


def naive_terms(v: torch.Tensor, a: torch.Tensor, tau: float) -> dict[str, float]:
    """Loop-by-loop reading of spec §2, in float64, sharing no code with fnac.losses."""
    B, D, h, w = v.shape
    v, a = v.double().tolist(), a.double().tolist()
    S = [
        [
            [
                [sum(v[n][c][y][x] * a[m][c] for c in range(D)) / tau for x in range(w)]
                for y in range(h)
            ]
            for m in range(B)
        ]
        for n in range(B)
    ]
    logits = [
        [max(S[n][m][y][x] for y in range(h) for x in range(w)) for m in range(B)] for n in range(B)
    ]

    def ce(rows):  # mean over rows of -log softmax(row)[i]
        total = 0.0
        for i, row in enumerate(rows):
            mx = max(row)
            lse = mx + math.log(sum(math.exp(r - mx) for r in row))
            total += lse - row[i]
        return total / len(rows)

    cols = [[logits[n][m] for n in range(B)] for m in range(B)]
    contrastive = ce(logits) + ce(cols)

    def softmax(row):
        mx = max(row)
        e = [math.exp(r - mx) for r in row]
        return [x / sum(e) for x in e]

    def l1(A, Bm):
        return sum(
            abs(p - q)
            for ra, rb in zip(A, Bm, strict=True)
            for p, q in zip(softmax(ra), softmax(rb), strict=True)
        ) / (B * B)

    Aa = [[sum(a[n][c] * a[m][c] for c in range(D)) / tau for m in range(B)] for n in range(B)]
    p = [
        [sum(v[n][c][y][x] for y in range(h) for x in range(w)) / (h * w) for c in range(D)]
        for n in range(B)
    ]
    Av = [[sum(p[n][c] * p[m][c] for c in range(D)) / tau for m in range(B)] for n in range(B)]
    f = []
    for i in range(B):
        vals = [S[i][i][y][x] for y in range(h) for x in range(w)]
        lo, hi = min(vals), max(vals)
        mask = [[(S[i][i][y][x] - lo) / (hi - lo + 1e-5) > 0.6 for x in range(w)] for y in range(h)]
        f.append(
            [
                sum(v[i][c][y][x] * mask[y][x] for y in range(h) for x in range(w)) / (h * w)
                for c in range(D)
            ]
        )
    Af = [[sum(f[n][c] * f[m][c] for c in range(D)) / tau for m in range(B)] for n in range(B)]
    return {
        "contrastive": contrastive,
        "fns_audio": l1(Aa, logits),
        "tns": l1(Aa, Af),
        "fns_image": l1(Av, logits),
    }


def random_embeddings(B=3, D=5, h=3, w=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    v = F.normalize(torch.randn(B, D, h, w, generator=g), dim=1)
    a = F.normalize(torch.randn(B, D, generator=g), dim=1)
    return v, a


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("tau", [0.03, 0.2])
def test_matches_naive_implementation(seed, tau):
    v, a = random_embeddings(seed=seed)
    got = loss_terms(v, a, tau=tau)
    want = naive_terms(v, a, tau)
    assert set(got) == {"contrastive", "fns_audio", "tns", "fns_image"}
    for key in want:
        assert got[key].item() == pytest.approx(want[key], rel=1e-4, abs=1e-6), key


def test_two_sample_hand_computed():
    # v: 1-dim embeddings on a 1x2 grid; sample 0 points "up" at x=0, sample 1 at x=1.
    v = torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]]], [[[0.0, 1.0]], [[1.0, 0.0]]]])  # (2, 2, 1, 2)
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # (2, 2)
    tau = 1.0
    # S[n, m] = v_n . a_m per position: S[0,0] = [1, 0], S[0,1] = [0, 1], S[1,0] = [0, 1],
    # S[1,1] = [1, 0]; every logit is max = 1, so both cross entropies are log 2.
    got = loss_terms(v, a, tau=tau)
    assert got["contrastive"].item() == pytest.approx(2 * math.log(2), rel=1e-6)
    # softmax(logits) is uniform; A_a = identity -> softmax rows [e/(1+e), 1/(1+e)].
    s = math.e / (1 + math.e)
    assert got["fns_audio"].item() == pytest.approx(abs(s - 0.5), rel=1e-6)
    # p = spatial means = [0.5, 0.5] for both -> A_v constant -> uniform softmax == logits' one.
    assert got["fns_image"].item() == pytest.approx(0.0, abs=1e-7)
    # Masks keep x=0 for both samples: f_0 = [0.5, 0], f_1 = [0, 0.5] -> A_f = diag(0.25).
    t = math.exp(0.25) / (1 + math.exp(0.25))
    assert got["tns"].item() == pytest.approx(abs(s - t), rel=1e-6)


def test_gradients_flow_and_terms_are_finite():
    v, a = random_embeddings(B=4, D=8, h=7, w=7)
    v.requires_grad_(True)
    a.requires_grad_(True)
    terms = loss_terms(v, a)
    total = terms["contrastive"] + 100 * (terms["fns_audio"] + terms["tns"] + terms["fns_image"])
    total.backward()
    assert all(torch.isfinite(t) for t in terms.values())
    assert v.grad.abs().sum() > 0 and a.grad.abs().sum() > 0
