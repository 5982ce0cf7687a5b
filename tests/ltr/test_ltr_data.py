from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_svmlight_file

from labworks.ltr.data import (
    LibSVMFormatError,
    RankingDataset,
    iter_libsvm,
    read_libsvm,
    read_parquet,
    write_libsvm,
    write_parquet,
)
from labworks.ltr.synthetic import make_mslr_like

EDGE = """\
# a header comment
2 qid:10 1:0.5 3:-1.25 # docid = a
0 qid:10 2:3 3:4 3:7
1 qid:7 1:1e-3

4 qid:10 5:2.5
0 qid:x9 4:-2
"""


def test_reader_matches_sklearn_on_shared_data(shared_data: Path) -> None:
    path = shared_data / "ltr" / "lightgbm-lambdarank" / "rank.train"
    ds = read_libsvm(path)
    x, y = load_svmlight_file(str(path))
    assert ds.n_docs == 3005 and ds.n_queries == 201 and ds.n_features == x.shape[1] == 300
    np.testing.assert_allclose(ds.features, x.toarray(), rtol=1e-6)
    np.testing.assert_array_equal(ds.labels, y)
    groups = np.loadtxt(str(path) + ".query", dtype=int)
    np.testing.assert_array_equal(ds.list_sizes, groups)


def test_edge_cases_comments_duplicates_string_and_unsorted_qids(tmp_path: Path) -> None:
    f = tmp_path / "edge.svm"
    f.write_text(EDGE)
    ds = read_libsvm(f)
    # qid 10's lines are not contiguous: grouped by first appearance, documents keep their order
    assert list(ds.qids) == ["10", "7", "x9"]
    np.testing.assert_array_equal(ds.list_sizes, [3, 1, 1])
    np.testing.assert_array_equal(ds.labels, [2, 0, 4, 1, 0])
    assert ds.n_features == 5  # 1-based indices detected
    np.testing.assert_allclose(ds.features[0], [0.5, 0, -1.25, 0, 0])
    np.testing.assert_allclose(ds.features[1], [0, 3, 7, 0, 0])  # duplicate id 3: the last wins
    np.testing.assert_allclose(ds.features[2], [0, 0, 0, 0, 2.5])


def test_zero_based_detection(tmp_path: Path) -> None:
    f = tmp_path / "z.svm"
    f.write_text("1 qid:1 0:1 2:3\n0 qid:1 1:2\n")
    ds = read_libsvm(f)
    assert ds.n_features == 3
    np.testing.assert_allclose(ds.features, [[1, 0, 3], [0, 2, 0]])


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        ("1 qid:1 1:0.5\nx qid:1 1:2\n", 2, "label 'x'"),
        ("1 qid:1 1:0.5\n0 qid:1 1:abc\n", 2, "'1:abc'"),
        ("1 qid:1 1:0.5\n0 qid:1 -3:1\n", 2, "'-3:1'"),
        ("1 qid:1 1:0.5\n\n0 1:2\n", 3, "missing 'qid:'"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path: Path, text: str, line: int, what: str) -> None:
    f = tmp_path / "bad.svm"
    f.write_text(text)
    with pytest.raises(LibSVMFormatError) as info:
        read_libsvm(f)
    assert f"bad.svm:{line}" in str(info.value) and what in str(info.value)


def test_bad_values_are_rejected() -> None:
    with pytest.raises(ValueError, match="NaN or inf"):
        RankingDataset.from_arrays(np.array([[np.nan]]), np.array([1.0]), ["q"])
    with pytest.raises(ValueError, match="labels must be finite and >= 0"):
        RankingDataset.from_arrays(np.ones((2, 1)), np.array([1.0, -1.0]), ["q", "q"])
    with pytest.raises(ValueError, match="empty list"):
        RankingDataset(np.ones((1, 1)), np.ones(1), np.array([0, 0, 1]), np.array(["a", "b"]))
    with pytest.raises(ValueError, match="lengths differ"):
        RankingDataset.from_arrays(np.ones((2, 1)), np.ones(3), ["a", "a"])


def test_libsvm_and_parquet_round_trip_and_streaming(tmp_path: Path) -> None:
    ds = make_mslr_like(30, max_list_size=40, seed=3)
    write_libsvm(ds, tmp_path / "d.svm")
    back = read_libsvm(tmp_path / "d.svm", n_features=136)
    np.testing.assert_allclose(back.features, ds.features, rtol=1e-6)
    np.testing.assert_array_equal(back.offsets, ds.offsets)
    chunks = list(iter_libsvm(tmp_path / "d.svm", n_features=136, chunk_docs=100))
    assert len(chunks) > 3 and all(c.n_docs >= 1 for c in chunks)
    assert [q for c in chunks for q in c.qids] == list(ds.qids)  # no query split across chunks
    np.testing.assert_allclose(np.concatenate([c.features for c in chunks]), ds.features, rtol=1e-6)
    write_parquet(ds, tmp_path / "d.parquet")
    pq = read_parquet(tmp_path / "d.parquet")
    np.testing.assert_array_equal(pq.features, ds.features)
    np.testing.assert_array_equal(pq.qids, ds.qids)


def test_padded_and_packed_layouts_agree() -> None:
    ds = make_mslr_like(12, max_list_size=30, n_context=2, seed=1)
    q = np.array([3, 0, 7])
    pad = ds.padded(q)
    pack = ds.packed(q)
    assert pad.features.shape == (3, int(ds.list_sizes[q].max()), 136)
    assert pad.mask.sum() == pack.features.shape[0] == ds.list_sizes[q].sum()
    torch.testing.assert_close(pad.features[pad.mask], pack.features)
    again, mask = pack.pad(pack.labels)
    torch.testing.assert_close(again, pad.labels)
    assert torch.equal(mask, pad.mask)
    assert pad.context.shape == (3, 2)


def test_cap_shuffles_then_keeps_positives() -> None:
    labels = np.zeros(50, dtype=np.float32)
    labels[[5, 40, 49]] = [1, 2, 3]
    ds = RankingDataset.from_arrays(np.arange(50, dtype=np.float32)[:, None], labels, ["q"] * 50)
    rng = np.random.default_rng(0)
    b1 = ds.padded([0], max_list_size=10, rng=rng)
    b2 = ds.padded([0], max_list_size=10, rng=rng)
    assert b1.mask.sum() == 10
    assert sorted(b1.labels[0][b1.labels[0] > 0].tolist()) == [1, 2, 3]  # every positive kept
    assert set(b1.features[0, :, 0].tolist()) != set(b2.features[0, :, 0].tolist())  # negatives resampled
    ev = ds.padded([0], max_list_size=10)
    assert ev.features[0, :, 0].tolist() == list(range(10))  # evaluation: deterministic


def test_bucketing_reduces_padding() -> None:
    ds = make_mslr_like(200, max_list_size=300, seed=0)

    def padding(bucket: bool) -> int:
        total = 0
        for q in ds.batches(16, shuffle=True, bucket=bucket, seed=1):
            total += int(ds.list_sizes[q].max()) * len(q) - int(ds.list_sizes[q].sum())
        return total

    assert padding(True) < 0.3 * padding(False)
    seen = np.concatenate(list(ds.batches(16, shuffle=True, bucket=True)))
    np.testing.assert_array_equal(np.sort(seen), np.arange(200))


def test_synthetic_is_mslr_shaped_and_seeded() -> None:
    a, b = make_mslr_like(300, seed=5), make_mslr_like(300, seed=5)
    np.testing.assert_array_equal(a.features, b.features)
    shares = np.bincount(a.labels.astype(int), minlength=5) / a.n_docs
    assert shares[0] > 0.45 and shares[4] < 0.03
    assert a.list_sizes.min() >= 1 and a.list_sizes.max() <= 1000 and a.list_sizes.max() > 200
    spread = np.log10(a.features.max(0) - a.features.min(0) + 1e-9)
    assert spread.max() - spread.min() > 4  # very different feature scales
    with pytest.raises(ValueError, match="n_features"):
        make_mslr_like(5, n_features=10)
