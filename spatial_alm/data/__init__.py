"""Sharded HDF5 storage of rendered scenes with their QA pairs (layout: ``datasets/SCHEMA.md``)."""

from spatial_alm.data.dataset import SpatialQADataset, SpatialSceneDataset
from spatial_alm.data.reader import DatasetReader, check_dataset, dataset_info, export_wav, scene_table
from spatial_alm.data.schema import (
    INDEX_FILENAME,
    SCHEMA_VERSION,
    DatasetIndex,
    ShardEntry,
    read_index,
    shard_filename,
    shard_ranges,
)
from spatial_alm.data.writer import ShardWriter, write_index

__all__ = [
    "INDEX_FILENAME",
    "SCHEMA_VERSION",
    "DatasetIndex",
    "DatasetReader",
    "ShardEntry",
    "ShardWriter",
    "SpatialQADataset",
    "SpatialSceneDataset",
    "check_dataset",
    "dataset_info",
    "export_wav",
    "read_index",
    "scene_table",
    "shard_filename",
    "shard_ranges",
    "write_index",
]
