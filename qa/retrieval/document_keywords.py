"""The keyword channel scored over whole documents: every passage gets its document's BM25.

BM25 over a short document (an abstract, a note) sees all of its words and its real
length; over that document's passages it sees fragments, each normalised as if it were
a document of its own. On SciFact's abstracts whole-document scoring is worth +0.042
nDCG@10 for BM25 and +0.014 for the hybrid. On one long document it is useless: every
passage would get the same score. So it is a choice (``QA_KEYWORD_LEVEL=document``),
not the default.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from qa.retrieval.bm25 import BM25Index
from qa.types import Passage


class DocumentText(Protocol):
    @property
    def text(self) -> str: ...


@dataclass(frozen=True, slots=True)
class DocumentKeywords:
    """BM25 over each document's whole text, and which document each passage is from."""

    index: BM25Index
    owner: npt.NDArray[np.int64]  # passage row -> document row in ``index``

    @classmethod
    def build(
        cls, documents: Mapping[str, DocumentText], passages: Sequence[Passage]
    ) -> DocumentKeywords:
        ids = list(documents)
        row = {doc_id: i for i, doc_id in enumerate(ids)}
        owner = np.fromiter((row[p.doc_id] for p in passages), np.int64, len(passages))
        return cls(BM25Index.build([documents[d].text for d in ids]), owner)

    def passage_scores(self, question: str) -> npt.NDArray[np.float32]:
        """Each passage's document's BM25 score for ``question``."""
        return self.index.scores(question)[self.owner]
