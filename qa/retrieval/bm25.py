"""Keyword scoring for ranking: the index and tokenizer live in ``qa.keywords``.

Building and saving the keyword index belong to indexing and storage; ranking
only asks it for scores, through the names re-exported here.
"""

from __future__ import annotations

from qa.keywords import BM25Index, tokenize

__all__ = ["BM25Index", "tokenize"]
