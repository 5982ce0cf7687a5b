"""labworks.fairness: group-fairness metrics with named conventions, fast intervals and mitigation.

fairlearn-compatible names live at the top level (``demographic_parity_difference``, ``MetricFrame``, …);
AIF360-style signed privileged-group metrics live in :mod:`labworks.fairness.aif360_compat`.
"""

from labworks.fairness.__about__ import __version__
from labworks.fairness.bootstrap import BootstrapResult, bootstrap, bootstrap_ci, bootstrap_statistic
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
from labworks.fairness.impossibility import WORLDVIEWS, chouldechova_fpr, explore, impossibility_check
from labworks.fairness.individual import (
    coefficient_of_variation,
    consistency_score,
    generalized_entropy_index,
    theil_index,
)
from labworks.fairness.intervals import difference_interval, newcombe_interval, wilson_interval
from labworks.fairness.measures import (
    error_rate_difference,
    error_rate_ratio,
    metric_difference,
    metric_ratio,
    predictive_parity_difference,
    predictive_parity_ratio,
)
from labworks.fairness.metric_frame import MetricFrame
from labworks.fairness.metrics import DEFAULT_METRICS, GroupMetrics, NotEstimableWarning, group_metrics
from labworks.fairness.mitigation import (
    CalibratedEqualizedOdds,
    ExponentiatedGradient,
    FairnessPenalty,
    LagrangianFairness,
    Reweighing,
    ThresholdOptimizer,
    reweighing_weights,
)
from labworks.fairness.multiclass import MulticlassGroupMetrics, multiclass_group_metrics
from labworks.fairness.plots import plot_group_rates
from labworks.fairness.regression import regression_disparity, regression_group_metrics
from labworks.fairness.report import ReportConfig, run_report
from labworks.fairness.scores import (
    auc_by_group,
    average_precision_by_group,
    bias_auc_by_group,
    calibration_by_group,
    pr_curve_by_group,
    roc_curve_by_group,
    threshold_sweep,
)

__all__ = [
    "DEFAULT_METRICS",
    "METHODS",
    "RATES",
    "WORLDVIEWS",
    "BootstrapResult",
    "CalibratedEqualizedOdds",
    "ExponentiatedGradient",
    "FairnessPenalty",
    "GroupIndex",
    "GroupMetrics",
    "LagrangianFairness",
    "MetricFrame",
    "MulticlassGroupMetrics",
    "NotEstimableWarning",
    "ReportConfig",
    "Reweighing",
    "ThresholdOptimizer",
    "__version__",
    "auc_by_group",
    "average_precision_by_group",
    "bias_auc_by_group",
    "bootstrap",
    "bootstrap_ci",
    "bootstrap_statistic",
    "calibration_by_group",
    "canonical_rate",
    "chouldechova_fpr",
    "coefficient_of_variation",
    "consistency_score",
    "count",
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "difference_interval",
    "encode_groups",
    "equal_opportunity_difference",
    "equal_opportunity_ratio",
    "equalized_odds_difference",
    "equalized_odds_ratio",
    "error_rate_difference",
    "error_rate_ratio",
    "explore",
    "false_negative_rate",
    "false_positive_rate",
    "generalized_entropy_index",
    "group_metrics",
    "impossibility_check",
    "mean_prediction",
    "metric_difference",
    "metric_ratio",
    "multiclass_group_metrics",
    "newcombe_interval",
    "plot_group_rates",
    "pr_curve_by_group",
    "predictive_parity_difference",
    "predictive_parity_ratio",
    "regression_disparity",
    "regression_group_metrics",
    "reweighing_weights",
    "roc_curve_by_group",
    "run_report",
    "selection_rate",
    "theil_index",
    "threshold_sweep",
    "true_negative_rate",
    "true_positive_rate",
    "wilson_interval",
]
