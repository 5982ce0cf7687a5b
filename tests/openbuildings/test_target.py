"""The training target opens walls shared by touching buildings, so components can separate them."""

from __future__ import annotations

import numpy as np
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
