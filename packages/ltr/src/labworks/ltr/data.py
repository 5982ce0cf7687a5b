"""Ranking data: a CSR-style container of query lists, LibSVM/Parquet I/O, batch layouts.

A :class:`RankingDataset` stores every document once, grouped by query:

- ``features: (n_docs, n_features)`` float32, ``labels: (n_docs,)`` float32
- ``offsets: (n_queries + 1,)`` int64 — query ``q`` owns rows ``offsets[q]:offsets[q + 1]``
- ``qids: (n_queries,)`` the query ids as strings
- ``context: (n_queries, n_context)`` optional per-query features

Batches come in two layouts: :class:`ListBatch` (padded ``(batch, list_size, n_features)`` with a
mask, what listwise models such as self-attention need) and :class:`PackedBatch` (documents
concatenated, ``(n_docs, n_features)`` with ``offsets``, so lists of very different lengths waste
no compute in per-document scorers).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import numpy as np
import torch

__all__ = [
    "LibSVMFormatError",
    "ListBatch",
    "PackedBatch",
    "RankingDataset",
    "iter_libsvm",
    "read_libsvm",
    "read_parquet",
    "write_libsvm",
    "write_parquet",
]


class LibSVMFormatError(ValueError):
    """A malformed LibSVM line; the message names the file and the 1-based line number."""


@dataclass
class ListBatch:
    """Padded lists. ``features: (B, N, F)``, ``labels: (B, N)`` (0 where padded), ``mask: (B, N)``
    bool, ``context: (B, C)`` or ``None``, ``queries: (B,)`` indices into the dataset."""

    features: torch.Tensor
    labels: torch.Tensor
    mask: torch.Tensor
    queries: torch.Tensor
    context: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> ListBatch:
        return ListBatch(
            self.features.to(device),
            self.labels.to(device),
            self.mask.to(device),
            self.queries,
            None if self.context is None else self.context.to(device),
        )


@dataclass
class PackedBatch:
    """Concatenated lists. ``features: (T, F)``, ``labels: (T,)``, ``offsets: (B + 1,)`` int64,
    ``context: (B, C)`` or ``None``, ``queries: (B,)``."""

    features: torch.Tensor
    labels: torch.Tensor
    offsets: torch.Tensor
    queries: torch.Tensor
    context: torch.Tensor | None = None

    @property
    def segment_ids(self) -> torch.Tensor:
        """``(T,)`` the list index of every document."""
        sizes = self.offsets[1:] - self.offsets[:-1]
        return torch.repeat_interleave(torch.arange(len(sizes), device=self.offsets.device), sizes)

    def pad(self, values: torch.Tensor, fill: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        """Scatter per-document ``values: (T, ...)`` into ``(B, N_max, ...)`` plus the mask ``(B, N_max)``."""
        sizes = self.offsets[1:] - self.offsets[:-1]
        n_max = int(sizes.max()) if len(sizes) else 0
        seg = self.segment_ids
        pos = torch.arange(values.shape[0], device=values.device) - self.offsets[:-1].to(values.device)[seg]
        out = values.new_full((len(sizes), n_max, *values.shape[1:]), fill)
        out[seg, pos] = values
        mask = torch.zeros(len(sizes), n_max, dtype=torch.bool, device=values.device)
        mask[seg, pos] = True
        return out, mask

    def to(self, device: torch.device | str) -> PackedBatch:
        return PackedBatch(
            self.features.to(device),
            self.labels.to(device),
            self.offsets.to(device),
            self.queries,
            None if self.context is None else self.context.to(device),
        )


@dataclass
class RankingDataset:
    """Query lists in CSR layout (see the module docstring)."""

    features: np.ndarray
    labels: np.ndarray
    offsets: np.ndarray
    qids: np.ndarray
    context: np.ndarray | None = None
    feature_names: list[str] | None = field(default=None)

    def __post_init__(self) -> None:
        self.features = np.ascontiguousarray(self.features, dtype=np.float32)
        self.labels = np.ascontiguousarray(self.labels, dtype=np.float32)
        self.offsets = np.ascontiguousarray(self.offsets, dtype=np.int64)
        self.qids = np.asarray(self.qids).astype(str)
        if self.features.ndim != 2:
            raise ValueError(f"features must be (n_docs, n_features), got shape {self.features.shape}")
        n = self.features.shape[0]
        if self.labels.shape != (n,):
            raise ValueError(f"labels must have shape ({n},), got {self.labels.shape}")
        if (
            self.offsets.ndim != 1
            or self.offsets[0] != 0
            or self.offsets[-1] != n
            or np.any(np.diff(self.offsets) < 0)
        ):
            raise ValueError("offsets must start at 0, end at n_docs and be non-decreasing")
        if len(self.qids) != self.n_queries:
            raise ValueError(f"got {len(self.qids)} qids for {self.n_queries} queries")
        if np.any(np.diff(self.offsets) == 0):
            bad = self.qids[np.flatnonzero(np.diff(self.offsets) == 0)[0]]
            raise ValueError(f"query {bad!r} has an empty list")
        if not np.all(np.isfinite(self.features)):
            row = int(np.argwhere(~np.isfinite(self.features))[0, 0])
            raise ValueError(
                f"features contain NaN or inf (document {row}, query {self.qids[self.query_of(row)]!r})"
            )
        if not np.all(np.isfinite(self.labels)) or np.any(self.labels < 0):
            row = int(np.flatnonzero(~np.isfinite(self.labels) | (self.labels < 0))[0])
            raise ValueError(f"labels must be finite and >= 0, got {self.labels[row]} at document {row}")
        if self.context is not None:
            self.context = np.ascontiguousarray(self.context, dtype=np.float32)
            if self.context.ndim != 2 or self.context.shape[0] != self.n_queries:
                raise ValueError(f"context must be (n_queries, n_context), got shape {self.context.shape}")

    # -- sizes ---------------------------------------------------------------------------------
    @property
    def n_queries(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_docs(self) -> int:
        return int(self.features.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.features.shape[1])

    @property
    def n_context(self) -> int:
        return 0 if self.context is None else int(self.context.shape[1])

    @property
    def list_sizes(self) -> np.ndarray:
        return np.diff(self.offsets)

    def query_of(self, doc: int) -> int:
        return int(np.searchsorted(self.offsets, doc, side="right") - 1)

    def __len__(self) -> int:
        return self.n_queries

    def __repr__(self) -> str:
        sizes = self.list_sizes
        return (
            f"RankingDataset(queries={self.n_queries}, docs={self.n_docs}, features={self.n_features}, "
            f"context={self.n_context}, list sizes {sizes.min()}..{sizes.max()})"
        )

    # -- construction ----------------------------------------------------------------------------
    @classmethod
    def from_arrays(
        cls,
        features: np.ndarray,
        labels: np.ndarray,
        qids: Sequence[object] | np.ndarray,
        context: np.ndarray | None = None,
    ) -> RankingDataset:
        """Group rows by query id. Rows of one query need not be contiguous: queries are ordered by
        first appearance and documents keep their relative order (a stable grouping)."""
        qids = np.asarray(qids).astype(str)
        features = np.asarray(features)
        labels = np.asarray(labels)
        if not (len(qids) == len(features) == len(labels)):
            raise ValueError(
                f"lengths differ: {len(features)} feature rows, {len(labels)} labels, {len(qids)} qids"
            )
        uniq, first, inverse = np.unique(qids, return_index=True, return_inverse=True)
        rank_of_query = np.empty(len(uniq), dtype=np.int64)
        rank_of_query[np.argsort(first, kind="stable")] = np.arange(len(uniq))
        key = rank_of_query[inverse]
        order = np.argsort(key, kind="stable")
        counts = np.bincount(key, minlength=len(uniq))
        offsets = np.concatenate([[0], np.cumsum(counts)])
        return cls(features[order], labels[order], offsets, uniq[np.argsort(first, kind="stable")], context)

    def subset(self, queries: Sequence[int] | np.ndarray) -> RankingDataset:
        """The given queries (in that order) as a new dataset."""
        q = np.asarray(queries, dtype=np.int64)
        sizes = self.list_sizes[q]
        rows = (
            np.concatenate([np.arange(self.offsets[i], self.offsets[i + 1]) for i in q])
            if len(q)
            else np.zeros(0, np.int64)
        )
        return RankingDataset(
            self.features[rows],
            self.labels[rows],
            np.concatenate([[0], np.cumsum(sizes)]),
            self.qids[q],
            None if self.context is None else self.context[q],
            self.feature_names,
        )

    def split(self, fractions: Sequence[float], seed: int = 0) -> list[RankingDataset]:
        """Random split by query, e.g. ``split([0.8, 0.1, 0.1])``."""
        if abs(sum(fractions) - 1.0) > 1e-9 or any(f <= 0 for f in fractions):
            raise ValueError(f"fractions must be positive and sum to 1, got {list(fractions)}")
        perm = np.random.default_rng(seed).permutation(self.n_queries)
        cuts = np.round(np.cumsum(fractions)[:-1] * self.n_queries).astype(int)
        return [self.subset(np.sort(part)) for part in np.split(perm, cuts)]

    # -- batching ------------------------------------------------------------------------------
    def _rows_for(self, q: int, cap: int | None, rng: np.random.Generator | None) -> np.ndarray:
        rows = np.arange(self.offsets[q], self.offsets[q + 1])
        if cap is None or len(rows) <= cap:
            return rows
        if rng is None:  # evaluation: deterministic, keep the first `cap`
            return rows[:cap]
        rows = rows[rng.permutation(len(rows))]  # shuffle before truncating ...
        pos = self.labels[rows] > 0  # ... and keep positives first
        return np.concatenate([rows[pos], rows[~pos]])[:cap]

    def padded(
        self,
        queries: Sequence[int] | np.ndarray,
        *,
        max_list_size: int | None = None,
        rng: np.random.Generator | None = None,
    ) -> ListBatch:
        """Padded batch of ``queries``. Lists longer than ``max_list_size`` are cut: with ``rng``
        (training) after a shuffle that keeps positives first, without it the first documents."""
        q = np.asarray(queries, dtype=np.int64)
        rows = [self._rows_for(int(i), max_list_size, rng) for i in q]
        n_max = max((len(r) for r in rows), default=0)
        feats = np.zeros((len(q), n_max, self.n_features), dtype=np.float32)
        labels = np.zeros((len(q), n_max), dtype=np.float32)
        mask = np.zeros((len(q), n_max), dtype=bool)
        for b, r in enumerate(rows):
            feats[b, : len(r)] = self.features[r]
            labels[b, : len(r)] = self.labels[r]
            mask[b, : len(r)] = True
        return ListBatch(
            torch.from_numpy(feats),
            torch.from_numpy(labels),
            torch.from_numpy(mask),
            torch.from_numpy(q),
            None if self.context is None else torch.from_numpy(self.context[q]),
        )

    def packed(
        self,
        queries: Sequence[int] | np.ndarray,
        *,
        max_list_size: int | None = None,
        rng: np.random.Generator | None = None,
    ) -> PackedBatch:
        """Packed batch of ``queries`` (same truncation rules as :meth:`padded`)."""
        q = np.asarray(queries, dtype=np.int64)
        rows = [self._rows_for(int(i), max_list_size, rng) for i in q]
        flat = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        offsets = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
        return PackedBatch(
            torch.from_numpy(self.features[flat]),
            torch.from_numpy(self.labels[flat]),
            torch.from_numpy(offsets),
            torch.from_numpy(q),
            None if self.context is None else torch.from_numpy(self.context[q]),
        )

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
        bucket: bool = False,
        queries: Sequence[int] | np.ndarray | None = None,
    ) -> Iterator[np.ndarray]:
        """Query-index batches. ``bucket=True`` groups queries of similar list length (less padding);
        ``queries`` restricts to a subset (e.g. this rank's shard)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        idx = np.arange(self.n_queries) if queries is None else np.asarray(queries, dtype=np.int64)
        rng = np.random.default_rng(seed)
        if shuffle:
            idx = idx[rng.permutation(len(idx))]
        if bucket:
            idx = idx[np.argsort(self.list_sizes[idx], kind="stable")]
        chunks = [idx[i : i + batch_size] for i in range(0, len(idx), batch_size)]
        if bucket and shuffle:
            chunks = [chunks[i] for i in rng.permutation(len(chunks))]
        yield from chunks


# ---------------------------------------------------------------------------------------------
# LibSVM / SVMlight
# ---------------------------------------------------------------------------------------------


def _parse_block(
    lines: Sequence[str], path: str, first_line: int
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Parse lines into (labels, qids|None, row_ptr, feature indices, values, comments)."""
    labels = np.empty(len(lines), dtype=np.float64)
    qids: list[str] = []
    feat_parts: list[str] = []
    counts = np.empty(len(lines), dtype=np.int64)
    keep = np.ones(len(lines), dtype=bool)
    for i, raw in enumerate(lines):
        body = raw.split("#", 1)[0]
        tokens = body.split()
        if not tokens:
            keep[i] = False
            counts[i] = 0
            continue
        try:
            labels[i] = float(tokens[0])
        except ValueError:
            raise LibSVMFormatError(f"{path}:{first_line + i}: label {tokens[0]!r} is not a number") from None
        start = 1
        if len(tokens) > 1 and tokens[1].startswith("qid:"):
            qids.append(tokens[1][4:])
            start = 2
        elif qids:
            raise LibSVMFormatError(f"{path}:{first_line + i}: missing 'qid:' (earlier lines have one)")
        counts[i] = len(tokens) - start
        feat_parts.append(" ".join(tokens[start:]))
    if qids and len(qids) != int(keep.sum()):
        first_bad = int(np.flatnonzero(keep)[len(qids)]) if len(qids) < keep.sum() else 0
        raise LibSVMFormatError(f"{path}:{first_line + first_bad}: missing 'qid:' (earlier lines have one)")
    counts = counts[keep]
    text = " ".join(feat_parts).replace(":", " ")
    try:
        numbers = np.array(text.split(), dtype=np.float64) if text.strip() else np.zeros(0)
    except ValueError:
        _locate_bad_pair(lines, path, first_line)
    if len(numbers) != 2 * counts.sum() or not np.all(np.isfinite(numbers[0::2])):
        _locate_bad_pair(lines, path, first_line)
    idx, vals = numbers[0::2], numbers[1::2]
    if np.any(idx != np.round(idx)) or np.any(idx < 0):
        _locate_bad_pair(lines, path, first_line)
    row_ptr = np.concatenate([[0], np.cumsum(counts)])
    return (
        labels[keep],
        (np.array(qids) if qids else None),
        row_ptr,
        idx.astype(np.int64),
        vals,
        np.flatnonzero(keep),
    )


def _locate_bad_pair(lines: Sequence[str], path: str, first_line: int) -> NoReturn:
    for i, raw in enumerate(lines):
        tokens = raw.split("#", 1)[0].split()
        for tok in tokens[1:]:
            if tok.startswith("qid:"):
                continue
            key, sep, val = tok.partition(":")
            try:
                ok = sep == ":" and int(key) >= 0 and np.isfinite(float(key))
                float(val)
            except ValueError:
                ok = False
            if not ok:
                raise LibSVMFormatError(
                    f"{path}:{first_line + i}: bad feature token {tok!r} (expected index:value)"
                )
    raise LibSVMFormatError(f"{path}: lines {first_line}..{first_line + len(lines) - 1} could not be parsed")


def _densify(row_ptr: np.ndarray, idx: np.ndarray, vals: np.ndarray, n_features: int) -> np.ndarray:
    out = np.zeros((len(row_ptr) - 1, n_features), dtype=np.float32)
    rows = np.repeat(np.arange(len(row_ptr) - 1), np.diff(row_ptr))
    out[rows, idx] = vals  # duplicate ids on one line: the last occurrence wins
    return out


def _read_query_file(path: Path) -> np.ndarray:
    sizes = np.loadtxt(path, dtype=np.int64, ndmin=1)
    if np.any(sizes <= 0):
        raise ValueError(f"{path}: group sizes must be positive")
    return sizes


def _finish(
    labels: np.ndarray,
    qids: np.ndarray | None,
    row_ptr: np.ndarray,
    idx: np.ndarray,
    vals: np.ndarray,
    path: str,
    n_features: int | None,
    zero_based: bool | str,
    group_sizes: np.ndarray | None,
) -> RankingDataset:
    if zero_based == "auto":
        zero_based = bool(len(idx)) and int(idx.min()) == 0
    if not zero_based:
        if len(idx) and idx.min() < 1:
            raise LibSVMFormatError(f"{path}: feature index 0 found but zero_based=False")
        idx = idx - 1
    width = int(idx.max()) + 1 if len(idx) else 0
    if n_features is None:
        n_features = width
    elif width > n_features:
        raise LibSVMFormatError(
            f"{path}: feature index {width - (0 if zero_based else -1) - 1} exceeds n_features={n_features}"
        )
    feats = _densify(row_ptr, idx, vals, n_features)
    if qids is None:
        if group_sizes is None:
            raise LibSVMFormatError(f"{path}: lines have no 'qid:' and no .query group file was found")
        if group_sizes.sum() != len(labels):
            raise ValueError(
                f"{path}: group file sums to {group_sizes.sum()} documents but the file has {len(labels)}"
            )
        qids = np.repeat(np.arange(len(group_sizes)).astype(str), group_sizes)
    return RankingDataset.from_arrays(feats, labels, qids)


def read_libsvm(
    path: str | os.PathLike[str],
    *,
    n_features: int | None = None,
    zero_based: bool | str = "auto",
    query_file: str | os.PathLike[str] | None = None,
) -> RankingDataset:
    """Read a LibSVM/SVMlight ranking file (``label qid:Q idx:val ... # comment``).

    Handles comments, sparse and missing feature ids, duplicate ids (the last wins), 0- or
    1-based indices (``"auto"``: 0-based if any index is 0, as scikit-learn), string qids and
    qids whose lines are not contiguous. Without ``qid:`` tokens, group sizes come from
    ``query_file`` or ``<path>.query`` (LightGBM's layout). Malformed lines raise
    :class:`LibSVMFormatError` naming the file and line.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"LibSVM file not found: {p}")
    lines = p.read_text().splitlines()
    labels, qids, row_ptr, idx, vals, _ = _parse_block(lines, str(p), 1)
    group = None
    if qids is None:
        qf = Path(query_file) if query_file is not None else Path(str(p) + ".query")
        group = _read_query_file(qf) if qf.is_file() else None
    return _finish(labels, qids, row_ptr, idx, vals, str(p), n_features, zero_based, group)


def iter_libsvm(
    path: str | os.PathLike[str],
    *,
    n_features: int,
    zero_based: bool = False,
    chunk_docs: int = 100_000,
) -> Iterator[RankingDataset]:
    """Stream a ``qid:`` LibSVM file larger than memory as datasets of whole queries.

    Each chunk holds about ``chunk_docs`` documents; a query is never split across chunks (its
    lines must be contiguous). ``n_features`` and ``zero_based`` must be given, since they cannot
    be inferred from a part of the file.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"LibSVM file not found: {p}")
    pending: list[str] = []
    first_line = 1
    line_no = 0

    def qid_of(line: str) -> str | None:
        tokens = line.split("#", 1)[0].split(None, 2)
        return tokens[1] if len(tokens) > 1 and tokens[1].startswith("qid:") else None

    def flush(block: list[str], start: int) -> RankingDataset:
        labels, qids, row_ptr, idx, vals, _ = _parse_block(block, str(p), start)
        if qids is None:
            raise LibSVMFormatError(f"{p}:{start}: streaming needs 'qid:' on every line")
        return _finish(labels, qids, row_ptr, idx, vals, str(p), n_features, zero_based, None)

    with p.open() as f:
        for line in f:
            line_no += 1
            if len(pending) >= chunk_docs:
                q_new, q_last = qid_of(line), qid_of(pending[-1])
                if q_new is not None and q_new != q_last:
                    yield flush(pending, first_line)
                    pending, first_line = [], line_no
            pending.append(line)
    if pending and any(line.split("#", 1)[0].strip() for line in pending):
        yield flush(pending, first_line)


def write_libsvm(dataset: RankingDataset, path: str | os.PathLike[str], *, zero_based: bool = False) -> Path:
    """Write ``dataset`` as ``label qid:Q idx:val ...`` (non-zero features only), atomically."""
    from labworks.core import atomic_write

    base = 0 if zero_based else 1
    with atomic_write(path, "w") as f:
        for q in range(dataset.n_queries):
            for r in range(dataset.offsets[q], dataset.offsets[q + 1]):
                nz = np.flatnonzero(dataset.features[r])
                feats = " ".join(f"{j + base}:{dataset.features[r, j]:.9g}" for j in nz)
                f.write(f"{dataset.labels[r]:g} qid:{dataset.qids[q]} {feats}\n")
    return Path(path)


# ---------------------------------------------------------------------------------------------
# Parquet (one row per document: label, qid, f0..fN)
# ---------------------------------------------------------------------------------------------


def write_parquet(dataset: RankingDataset, path: str | os.PathLike[str]) -> Path:
    """Write one row per document with columns ``qid``, ``label``, ``f0``... (needs ``pyarrow``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from labworks.core import atomic_path

    names = dataset.feature_names or [f"f{j}" for j in range(dataset.n_features)]
    cols = {"qid": np.repeat(dataset.qids, dataset.list_sizes), "label": dataset.labels}
    cols.update({n: dataset.features[:, j] for j, n in enumerate(names)})
    with atomic_path(path) as tmp:
        pq.write_table(pa.table(cols), tmp)
    return Path(path)


def read_parquet(
    path: str | os.PathLike[str],
    *,
    label: str = "label",
    qid: str = "qid",
    features: Sequence[str] | None = None,
) -> RankingDataset:
    """Read a Parquet file with one row per document (needs ``pyarrow``). ``features`` defaults to
    every column other than ``label`` and ``qid``."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    missing = [c for c in (label, qid, *(features or [])) if c not in table.column_names]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}; has {table.column_names}")
    names = (
        list(features) if features is not None else [c for c in table.column_names if c not in {label, qid}]
    )
    feats = np.stack([table.column(c).to_numpy().astype(np.float32) for c in names], axis=1)
    ds = RankingDataset.from_arrays(feats, table.column(label).to_numpy(), table.column(qid).to_numpy())
    ds.feature_names = names
    return ds
