"""Datasets (fetched, cached, held in memory) and the batch iterator."""

from ganforge.data.batches import Batch, BatchIterator
from ganforge.data.sources import FETCHABLE, SOURCES, Dataset, DataSpec, fetch, load_dataset, source_info

__all__ = ["Batch", "BatchIterator", "Dataset", "DataSpec", "FETCHABLE", "SOURCES", "fetch", "load_dataset",
           "source_info"]
