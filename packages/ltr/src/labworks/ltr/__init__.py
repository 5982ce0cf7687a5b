"""labworks.ltr: learning to rank in PyTorch — losses, exact metrics, DASALC, ranking GAMs, TFR-BERT.

Metrics and losses are functional: ``labworks.ltr.metrics.ndcg(scores, labels, mask, k=10, preset="lightgbm")``,
``labworks.ltr.losses.softmax_loss(scores, labels, mask)``. Shapes: ``scores, labels, mask: (batch, list_size)``.
"""

from labworks.ltr import losses, metrics
from labworks.ltr.__about__ import __version__
from labworks.ltr.baseline import ComparisonResult, compare_with_lightgbm
from labworks.ltr.config import DataConfig, ModelConfig, RankingConfig, TrainConfig
from labworks.ltr.data import (
    LibSVMFormatError,
    ListBatch,
    PackedBatch,
    RankingDataset,
    iter_libsvm,
    read_libsvm,
    read_parquet,
    write_libsvm,
    write_parquet,
)
from labworks.ltr.losses import get_loss, listmle_loss, pairwise_logistic_loss, softmax_loss
from labworks.ltr.metrics import PRESETS, dcg, mean_average_precision, mrr, ndcg, precision, recall
from labworks.ltr.models import DASALC, DNNScorer, MaskedBatchNorm, RankingGAM, log1p_with_sign
from labworks.ltr.pipeline import DatasetBuilder, Ensemble, History, ModelBuilder, Pipeline, evaluate_scores
from labworks.ltr.synthetic import make_mslr_like

__all__ = [
    "DASALC",
    "PRESETS",
    "ComparisonResult",
    "DNNScorer",
    "DataConfig",
    "DatasetBuilder",
    "Ensemble",
    "History",
    "LibSVMFormatError",
    "ListBatch",
    "MaskedBatchNorm",
    "ModelBuilder",
    "ModelConfig",
    "PackedBatch",
    "Pipeline",
    "RankingConfig",
    "RankingDataset",
    "RankingGAM",
    "TrainConfig",
    "__version__",
    "compare_with_lightgbm",
    "dcg",
    "evaluate_scores",
    "get_loss",
    "iter_libsvm",
    "listmle_loss",
    "log1p_with_sign",
    "losses",
    "make_mslr_like",
    "mean_average_precision",
    "metrics",
    "mrr",
    "ndcg",
    "pairwise_logistic_loss",
    "precision",
    "read_libsvm",
    "read_parquet",
    "recall",
    "softmax_loss",
    "write_libsvm",
    "write_parquet",
]
