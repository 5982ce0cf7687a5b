"""The training target opens walls shared by touching buildings, so components can separate them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from labworks.openbuildings.weights import contact_map, gaussian_edge_weight_map, segmentation_target


def _two_touching() -> np.ndarray:
    inst = np.zeros((20, 30), np.int64)
    inst[5:15, 5:15] = 1
    inst[5:15, 15:25] = 2  # shares the wall between columns 14 and 15
    inst[2:4, 27:29] = 3  # isolated
    return inst


def test_contact_map_marks_both_sides_of_a_shared_wall_only() -> None:
    c = contact_map(torch.from_numpy(_two_touching())).numpy()
    expected = np.zeros((20, 30), bool)
    expected[5:15, 14:16] = True
    np.testing.assert_array_equal(c, expected)


def test_target_separates_touching_buildings() -> None:
    inst = _two_touching()
    _, n_naive = ndimage.label(inst > 0)
    target = segmentation_target(torch.from_numpy(inst)).numpy()
    _, n = ndimage.label(target > 0.5)
    assert n_naive == 2 and n == 3
    assert target.sum() == (inst > 0).sum() - 20
    closed = segmentation_target(torch.from_numpy(inst), open_contacts=False).numpy()
    np.testing.assert_array_equal(closed, (inst > 0).astype(np.float32))
    batch = segmentation_target(torch.from_numpy(np.stack([inst, inst])))
    assert batch.shape == (2, 20, 30) and torch.equal(batch[1], torch.from_numpy(target))


def test_gap_gets_the_largest_edge_weight() -> None:
    inst = torch.from_numpy(_two_touching())
    w = gaussian_edge_weight_map(inst, w0=10.0, sigma=2.0, class_balance=False)
    assert w[10, 14] > w[10, 8] and w[10, 15] > w[10, 21]


def test_split_touching_separates_a_faint_wall_and_keeps_extents() -> None:
    from labworks.openbuildings.instances import label_instances, split_touching

    prob = np.zeros((20, 40), np.float32)
    prob[5:15, 5:15] = 0.95
    prob[5:15, 16:26] = 0.9
    prob[5:15, 15] = 0.6  # faint wall: above 0.5, below the seed threshold
    prob[3:6, 30:34] = 0.65  # a dim building with no seed stays whole
    labels, n = label_instances(prob)
    assert n == 2
    split, m = split_touching(labels, prob, seed_threshold=0.8)
    assert m == 3
    np.testing.assert_array_equal(split > 0, labels > 0)  # extents unchanged
    assert len(np.unique(split[5:15, 5:15])) == 1 and len(np.unique(split[5:15, 16:26])) == 1
    assert split[10, 8] != split[10, 20]
    # numbered in raster order of first pixel, like scipy.ndimage.label
    first = [np.flatnonzero(split.ravel() == k)[0] for k in range(1, m + 1)]
    assert first == sorted(first)
    with pytest.raises(ValueError, match="seed_threshold"):
        split_touching(labels, prob, seed_threshold=1.5)


def test_detect_config_rejects_seed_below_threshold() -> None:
    from labworks.core import ConfigError
    from labworks.openbuildings.config import DetectConfig

    with pytest.raises(ConfigError, match="seed_threshold"):
        DetectConfig.from_dict({"threshold": 0.6, "seed_threshold": 0.55})
