"""labworks.fairness: group-fairness metrics with named conventions, fast intervals and mitigation.

fairlearn-compatible names live at the top level (``demographic_parity_difference``, ``MetricFrame``, …);
AIF360-style signed privileged-group metrics live in :mod:`labworks.fairness.aif360_compat`.
"""

from labworks.fairness.__about__ import __version__
from labworks.fairness.comparators import METHODS
from labworks.fairness.compat import (
    count,
    demographic_parity_difference,
    demographic_parity_ratio,
    equal_opportunity_difference,
    equal_opportunity_ratio,
    equalized_odds_difference,
    equalized_odds_ratio,
    false_negative_rate,
    false_positive_rate,
    mean_prediction,
    selection_rate,
    true_negative_rate,
    true_positive_rate,
)
from labworks.fairness.confusion import RATES, canonical_rate
from labworks.fairness.groups import GroupIndex, encode_groups
from labworks.fairness.metric_frame import MetricFrame
from labworks.fairness.metrics import DEFAULT_METRICS, GroupMetrics, NotEstimableWarning, group_metrics

__all__ = [
    "DEFAULT_METRICS",
    "METHODS",
    "RATES",
    "GroupIndex",
    "GroupMetrics",
    "MetricFrame",
    "NotEstimableWarning",
    "__version__",
    "canonical_rate",
    "count",
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "encode_groups",
    "equal_opportunity_difference",
    "equal_opportunity_ratio",
    "equalized_odds_difference",
    "equalized_odds_ratio",
    "false_negative_rate",
    "false_positive_rate",
    "group_metrics",
    "mean_prediction",
    "selection_rate",
    "true_negative_rate",
    "true_positive_rate",
]
