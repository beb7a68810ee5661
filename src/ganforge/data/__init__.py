"""Datasets (fetched, cached, held in memory) and the batch iterator."""

from ganforge.data.batches import Batch, BatchIterator
from ganforge.data.sources import FETCHABLE, SOURCES, Dataset, DataSpec, export_pngs, fetch, load_dataset, source_info

__all__ = ["Batch", "BatchIterator", "Dataset", "DataSpec", "FETCHABLE", "SOURCES", "export_pngs", "fetch",
           "load_dataset", "source_info"]
