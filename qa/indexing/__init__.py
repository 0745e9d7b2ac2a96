"""Indexing: seeds scan -> readers -> chunk -> embed -> commit batches to a store.

``build.py`` runs the pipeline (``pipeline.py``) on the configured store and
answers whether the index is current (``plan.py``); ``seeds.py`` scans the seeds.
"""

from qa.indexing.build import (
    LOCK_FILE,
    build_index,
    check_index,
    open_index,
    plan_index,
    published_manifest,
    verify_index,
)
from qa.indexing.pipeline import IndexResult, memory_index, run_pipeline

__all__ = [
    "LOCK_FILE",
    "IndexResult",
    "build_index",
    "check_index",
    "memory_index",
    "open_index",
    "plan_index",
    "published_manifest",
    "run_pipeline",
    "verify_index",
]
