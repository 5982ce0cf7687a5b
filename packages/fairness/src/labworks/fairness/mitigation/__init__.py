"""Mitigation: pre- (Reweighing), in- (exponentiated gradient, torch surrogates) and post-processing (group thresholds)."""

from labworks.fairness.mitigation.losses import (
    FairnessPenalty,
    LagrangianFairness,
    soft_cells,
    soft_disparity,
    soft_rate,
)
from labworks.fairness.mitigation.postprocessing import (
    CalibratedEqualizedOdds,
    GroupPolicy,
    ThresholdOptimizer,
)
from labworks.fairness.mitigation.reductions import ExponentiatedGradient
from labworks.fairness.mitigation.reweighing import Reweighing, reweighing_weights

__all__ = [
    "CalibratedEqualizedOdds",
    "ExponentiatedGradient",
    "FairnessPenalty",
    "GroupPolicy",
    "LagrangianFairness",
    "Reweighing",
    "ThresholdOptimizer",
    "reweighing_weights",
    "soft_cells",
    "soft_disparity",
    "soft_rate",
]
