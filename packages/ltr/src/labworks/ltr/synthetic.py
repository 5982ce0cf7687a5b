"""A seeded generator of MSLR-Web30K-shaped ranking data.

Shape like MSLR: 136 features with skewed, very different scales (heavy-tailed counts, small
ratios, binary flags, pure noise), list lengths from 1 to ``max_list_size`` with a long tail
(log-normal, median ~70), graded labels 0-4 with MSLR's skew (about half 0, ~1% 4).

Relevance is built from a per-document latent vector ``v`` and a per-query intent ``u``:
``r = u·v + sin(2·v_0)·v_1 + (v_2 − mean over the list of v_2)``. The last term makes relevance
depend on the other documents in the list. Observed features are noisy, skewed transforms of
``v`` and of ``u ⊙ v`` (query-document match features, like BM25 variants in MSLR) with
query-dependent scales and offsets, as real retrieval features have: comparing documents within
a list (what listwise models such as self-attention do) removes them; global thresholds cannot.
"""

from __future__ import annotations

import numpy as np

from labworks.ltr.data import RankingDataset

__all__ = ["make_mslr_like"]

_LATENT = 8
_LABEL_SHARE = np.array([0.52, 0.32, 0.12, 0.03, 0.01])  # MSLR-Web30K-like label distribution


def make_mslr_like(
    n_queries: int = 1000,
    *,
    n_features: int = 136,
    min_list_size: int = 1,
    max_list_size: int = 1000,
    median_list_size: float = 70.0,
    n_context: int = 0,
    seed: int = 0,
) -> RankingDataset:
    """Generate ``n_queries`` lists (see the module docstring).

    Args:
        n_features: at least 24; features beyond the informative ones are noise.
        n_context: number of per-query context features (noisy views of the query intent).
    """
    if n_queries < 1:
        raise ValueError(f"n_queries must be >= 1, got {n_queries}")
    if n_features < 24:
        raise ValueError(f"n_features must be >= 24, got {n_features}")
    if not 1 <= min_list_size <= max_list_size:
        raise ValueError(f"need 1 <= min_list_size <= max_list_size, got {min_list_size}, {max_list_size}")
    rng = np.random.default_rng(seed)
    raw = np.round(rng.lognormal(np.log(median_list_size), 0.9, n_queries))
    sizes = np.clip(raw, min_list_size, max_list_size).astype(np.int64)
    n_docs = int(sizes.sum())
    qidx = np.repeat(np.arange(n_queries), sizes)

    u = rng.normal(size=(n_queries, _LATENT))
    v = rng.normal(size=(n_docs, _LATENT))
    v[:, 2] += rng.normal(scale=1.5, size=n_queries)[qidx]  # lists differ in their overall level
    list_mean_v2 = np.bincount(qidx, v[:, 2], n_queries) / sizes
    score = (
        (u[qidx] * v).sum(1) / np.sqrt(_LATENT)
        + np.sin(2 * v[:, 0]) * v[:, 1]
        + 1.5 * (v[:, 2] - list_mean_v2[qidx])
    )
    score += rng.normal(scale=0.5, size=n_docs)

    # graded labels by per-dataset quantiles of the score, MSLR-like shares
    cuts = np.quantile(score, np.cumsum(_LABEL_SHARE)[:-1])
    labels = np.digitize(score, cuts).astype(np.float32)

    # Observed features, as in MSLR, carry query-dependent scales and offsets (BM25 and counts grow
    # with query length and term rarity): a per-query factor c_q multiplies the positive
    # features, a per-query shift s_q moves the signed ones. Within a list they cancel out.
    c_q = np.exp(rng.normal(scale=1.0, size=n_queries))[qidx, None]
    s_q = rng.normal(scale=1.0, size=n_queries)[qidx, None]
    match = u[qidx] * v  # query-document match signals
    blocks = [
        c_q
        * np.exp(v + rng.normal(scale=0.3, size=v.shape))
        * 10.0 ** rng.integers(0, 4, _LATENT),  # heavy-tailed
        rng.poisson(c_q * np.exp(np.clip(match, -3, 3)) * 3).astype(np.float64),  # counts
        match + s_q + rng.normal(scale=0.3, size=match.shape),  # scores around a per-query level
    ]
    informative = np.concatenate(blocks, axis=1)
    flags = (informative[:, 16:20] > 0).astype(np.float64)  # binary features
    n_noise = n_features - informative.shape[1] - flags.shape[1]
    noise = np.abs(rng.standard_cauchy(size=(n_docs, n_noise))) * 10.0 ** rng.integers(-2, 3, n_noise)
    feats = np.concatenate([informative, flags, noise], axis=1)
    feats = feats[:, rng.permutation(n_features)]  # informative columns are not the first ones

    context = None
    if n_context > 0:
        mix = rng.normal(size=(_LATENT, n_context)) / np.sqrt(_LATENT)
        context = u @ mix + rng.normal(scale=0.1, size=(n_queries, n_context))
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    return RankingDataset(
        feats.astype(np.float32), labels, offsets, np.array([f"q{i}" for i in range(n_queries)]), context
    )
