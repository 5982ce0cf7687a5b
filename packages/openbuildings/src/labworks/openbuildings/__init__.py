"""labworks.openbuildings: building footprints from satellite imagery, the Open Buildings way
(Sirko et al. 2021): U-Net segmentation trained with mixup, Gaussian edge weighting and Noisy Student;
streaming tiled detection over GeoTIFFs; instances -> polygons with confidence, geodesic area and Plus
Codes in the Open Buildings schema; SpaceNet F1, AP/mAP and per-stratum precision thresholds.

    from labworks.openbuildings import make_scene_set, TrainConfig, train, load_model, detect
"""

from labworks.openbuildings.__about__ import __version__
from labworks.openbuildings.augment import AugmentConfig, mixup, random_augment
from labworks.openbuildings.config import DetectConfig, ModelConfig, SelfTrainConfig, TrainConfig
from labworks.openbuildings.evaluate import (
    F1Result,
    Report,
    average_precision,
    evaluate,
    instance_iou_matrix,
    match_by_score,
    pr_curve,
    raster_f1,
    size_histogram,
    spacenet_f1,
    spacenet_f1_csv,
)
from labworks.openbuildings.export import (
    OPEN_BUILDINGS_COLUMNS,
    read_open_buildings_csv,
    to_open_buildings_table,
    write_geojson,
    write_geoparquet,
    write_open_buildings_csv,
)
from labworks.openbuildings.geo import centroids_latlon, geodesic_area, plus_codes, to_lonlat
from labworks.openbuildings.inference import (
    Detection,
    detect,
    detect_many,
    footprints_from_probability,
    predict_raster,
)
from labworks.openbuildings.instances import (
    Footprints,
    extract_footprints,
    find_instances,
    label_instances,
    polygonize,
)
from labworks.openbuildings.losses import dice_loss, soft_kl, weighted_bce
from labworks.openbuildings.model import UNet, load_encoder_weights
from labworks.openbuildings.ops import connected_components, instance_stats
from labworks.openbuildings.raster import (
    LabelError,
    NormStats,
    RasterError,
    TileDataset,
    raster_info,
    rasterize_instances,
    read_labels,
    tile_windows,
)
from labworks.openbuildings.synthetic import TERRAINS, SceneConfig, load_manifest, make_scene, make_scene_set
from labworks.openbuildings.thresholds import ThresholdTable, apply_thresholds, fit_thresholds
from labworks.openbuildings.train import load_model, save_model, self_train, train
from labworks.openbuildings.weights import gaussian_edge_weight_map, unet_weight_map, weight_map
from labworks.openbuildings.workflow import evaluate_model, fit_pixel_threshold

__all__ = [
    "OPEN_BUILDINGS_COLUMNS",
    "TERRAINS",
    "AugmentConfig",
    "DetectConfig",
    "Detection",
    "F1Result",
    "Footprints",
    "LabelError",
    "ModelConfig",
    "NormStats",
    "RasterError",
    "Report",
    "SceneConfig",
    "SelfTrainConfig",
    "ThresholdTable",
    "TileDataset",
    "TrainConfig",
    "UNet",
    "__version__",
    "apply_thresholds",
    "average_precision",
    "centroids_latlon",
    "connected_components",
    "detect",
    "detect_many",
    "dice_loss",
    "evaluate",
    "evaluate_model",
    "extract_footprints",
    "find_instances",
    "fit_pixel_threshold",
    "fit_thresholds",
    "footprints_from_probability",
    "gaussian_edge_weight_map",
    "geodesic_area",
    "instance_iou_matrix",
    "instance_stats",
    "label_instances",
    "load_encoder_weights",
    "load_manifest",
    "load_model",
    "make_scene",
    "make_scene_set",
    "match_by_score",
    "mixup",
    "plus_codes",
    "polygonize",
    "pr_curve",
    "predict_raster",
    "random_augment",
    "raster_f1",
    "raster_info",
    "rasterize_instances",
    "read_labels",
    "read_open_buildings_csv",
    "save_model",
    "self_train",
    "size_histogram",
    "soft_kl",
    "spacenet_f1",
    "spacenet_f1_csv",
    "tile_windows",
    "to_lonlat",
    "to_open_buildings_table",
    "train",
    "unet_weight_map",
    "weight_map",
    "weighted_bce",
    "write_geojson",
    "write_geoparquet",
    "write_open_buildings_csv",
]
