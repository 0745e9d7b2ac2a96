"""BEIR benchmarks (``corpus.jsonl``, ``queries.jsonl``, ``qrels/test.tsv``): a public yardstick.

Each corpus entry becomes a ``Document`` (title, a blank line, then the text),
is chunked by the service's own ``Chunker``, and scores as its best passage.
Metrics come from ranx, not from hand-written code, so they match trec_eval.

Passage vectors are cached under ``cache_dir/beir``, keyed by the corpus hash,
the model (id and weights hash) and the chunker settings: a second run only
embeds the queries.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from qa.config import RETRIEVERS, ChunkSettings
from qa.embedding import Embedder, Vectors
from qa.evaluation.labels import EvaluationError
from qa.indexing import Progress, encode_batched
from qa.ingest import make_chunker
from qa.retrieval.bm25 import BM25Index
from qa.retrieval.fusion import combine
from qa.retrieval.rankers import Candidate, ScoreStats, dense_candidates, top_scores
from qa.store.vectors import FaissVectorStore
from qa.types import Block, BlockKind, Document, embedding_text

log = logging.getLogger(__name__)

CACHE_VERSION = 1
METRICS = ("ndcg@10", "recall@100", "mrr@10")
RUN_DEPTH = 1000  # documents kept per query, as BEIR does
PASSAGE_DEPTH = 3000  # dense passages searched per query before pooling to documents
Bm25Level = Literal["document", "passage"]

IntArray = npt.NDArray[np.int64]


def _noop(stage: str, done: int, total: int) -> None:
    return None


@dataclass(frozen=True, slots=True)
class BeirData:
    name: str
    ids: list[str]
    titles: list[str]
    texts: list[str]
    queries: dict[str, str]  # only the queries that have judgements
    qrels: dict[str, dict[str, int]]
    corpus_sha256: str


@dataclass(slots=True)
class BeirResult:
    config: dict[str, Any]
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"config": self.config, "metrics": self.metrics, "seconds": self.seconds}


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise EvaluationError(f"BEIR folder is missing {path.name} ({path})")
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise EvaluationError(f"{path} line {number}: not valid JSON") from exc
            if not isinstance(row, dict) or "_id" not in row:
                raise EvaluationError(f"{path} line {number}: expected an object with '_id'")
            rows.append(row)
    return rows


def load_beir(folder: Path, split: str = "test") -> BeirData:
    """Read a BEIR folder; only queries with at least one judgement are kept."""
    corpus_path = folder / "corpus.jsonl"
    corpus = _read_jsonl(corpus_path)
    queries = {str(q["_id"]): str(q.get("text", "")) for q in _read_jsonl(folder / "queries.jsonl")}
    qrels_path = folder / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        raise EvaluationError(f"BEIR folder is missing qrels/{split}.tsv ({qrels_path})")
    qrels: dict[str, dict[str, int]] = {}
    for number, line in enumerate(qrels_path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.strip().split("\t")
        if not line.strip() or (number == 1 and parts[0] == "query-id"):
            continue
        if len(parts) != 3:
            raise EvaluationError(f"{qrels_path} line {number}: expected 3 tab-separated fields")
        qid, did, score = parts
        qrels.setdefault(qid, {})[did] = int(score)
    ids = [str(d["_id"]) for d in corpus]
    known = set(ids)
    missing = sorted(q for q in qrels if q not in queries)
    if missing:
        raise EvaluationError(f"qrels name queries not in queries.jsonl: {', '.join(missing[:5])}")
    unknown = sorted({d for judged in qrels.values() for d in judged} - known)
    if unknown:
        raise EvaluationError(f"qrels name documents not in corpus.jsonl: {', '.join(unknown[:5])}")
    return BeirData(
        name=folder.resolve().name,
        ids=ids,
        titles=[str(d.get("title") or "").strip() for d in corpus],
        texts=[str(d.get("text") or "").strip() for d in corpus],
        queries={q: queries[q] for q in qrels},
        qrels={q: {d: s for d, s in judged.items() if s > 0} for q, judged in qrels.items()},
        corpus_sha256=hashlib.sha256(corpus_path.read_bytes()).hexdigest(),
    )


def beir_document(doc_id: str, title: str, text: str) -> Document:
    """A corpus entry as a document: its title (also the section heading) then its text.

    The title is part of the document text and of every passage's embedding text,
    as in the BEIR/MTEB protocol (title + text).
    """
    body = text or title
    full = f"{title}\n\n{body}" if title and text else body
    offset = len(full) - len(body)
    blocks: list[Block] = []
    if title and text:
        blocks.append(Block(BlockKind.TITLE, 0, len(title), title, title, 0))
    blocks.append(Block(BlockKind.PARAGRAPH, offset, len(full), body, title, 1))
    return Document(
        doc_id=doc_id,
        title=title,
        path=f"beir:{doc_id}",
        sha256=hashlib.sha256(full.encode()).hexdigest(),
        text=full,
        blocks=tuple(blocks),
    )


def _cache_folder(
    cache_dir: Path, data: BeirData, embedder: Embedder, chunking: ChunkSettings
) -> Path:
    key = json.dumps(
        [
            CACHE_VERSION,
            data.corpus_sha256,
            embedder.model_id,
            embedder.weights_hash,
            embedder.max_seq_length,
            chunking.chunk_tokens,
            chunking.overlap,
            chunking.encoding,
        ]
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    return cache_dir / "beir" / f"{data.name}-{digest}"


def _save(path: Path, array: npt.NDArray[Any]) -> None:
    """Write atomically, so an interrupted run never leaves a half-written cache."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with temporary.open("wb") as handle:
        np.save(handle, array)
    temporary.replace(path)


@dataclass(frozen=True, slots=True)
class PassageTable:
    """Passages of the whole corpus, grouped by document in corpus order."""

    spans: IntArray  # rows of (document index, start, end)
    vectors: Vectors

    @property
    def doc_index(self) -> IntArray:
        return self.spans[:, 0]


def passages(
    data: BeirData,
    documents: list[Document],
    embedder: Embedder,
    chunking: ChunkSettings,
    cache_dir: Path,
    batch_size: int = 32,
    progress: Progress = _noop,
) -> tuple[PassageTable, bool]:
    """Chunk and embed the corpus, or read both from the cache; True when cached."""
    folder = _cache_folder(cache_dir, data, embedder, chunking)
    spans_path, vectors_path = folder / "spans.npy", folder / "vectors.npy"
    if spans_path.is_file() and vectors_path.is_file():
        try:
            spans = np.load(spans_path)
            vectors = np.load(vectors_path)
            if len(spans) == len(vectors) and vectors.shape[1] == embedder.dim:
                return PassageTable(spans.astype(np.int64), vectors.astype(np.float32)), True
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable BEIR cache %s: %s", folder, exc)
    chunker = make_chunker(chunking, embedder)
    rows: list[tuple[int, int, int]] = []
    texts: list[str] = []
    for number, doc in enumerate(documents):
        for p in chunker.chunk(doc):
            rows.append((number, p.start, p.end))
            texts.append(p.embedding_text)
        progress("chunking corpus", number + 1, len(documents))
    vectors = encode_batched(embedder, texts, batch_size, "embedding passages", progress)
    spans = np.asarray(rows, dtype=np.int64).reshape(-1, 3)
    folder.mkdir(parents=True, exist_ok=True)
    _save(spans_path, spans)
    _save(vectors_path, vectors)
    return PassageTable(spans, vectors), False


def _group_starts(doc_index: IntArray) -> tuple[IntArray, IntArray]:
    """For passages sorted by document: where each document's run starts, and which docs."""
    starts = np.flatnonzero(np.r_[True, doc_index[1:] != doc_index[:-1]])
    return starts.astype(np.int64), doc_index[starts]


def max_per_document(scores: npt.NDArray[np.float32], doc_index: IntArray, count: int) -> Any:
    """A document's score is its best passage's; documents without passages get -inf."""
    out = np.full(count, -np.inf, dtype=np.float32)
    if len(scores):
        starts, docs = _group_starts(doc_index)
        out[docs] = np.maximum.reduceat(scores, starts)
    return out


def dense_runs(
    table: PassageTable, query_vectors: Vectors, count: int, depth: int = RUN_DEPTH
) -> list[Sequence[Candidate]]:
    """Dense document rankings: FAISS top passages, pooled by max to documents."""
    store = FaissVectorStore.build(table.vectors)
    per_query = dense_candidates(store, query_vectors, min(PASSAGE_DEPTH, len(store)))
    doc_of = table.doc_index
    runs: list[Sequence[Candidate]] = []
    for candidates in per_query:
        best: dict[int, float] = {}
        # Best first, so the first passage seen is the document's best.
        for doc, score in zip(
            doc_of[candidates.rows].tolist(), candidates.scores.tolist(), strict=True
        ):
            best.setdefault(int(doc), score)
        ranked = list(best.items())[:depth]
        runs.append([Candidate(d, s, r) for r, (d, s) in enumerate(ranked, 1)])
    return runs


def bm25_runs(
    data: BeirData,
    documents: list[Document],
    table: PassageTable,
    queries: Sequence[str],
    level: Bm25Level,
    depth: int = RUN_DEPTH,
) -> list[tuple[Sequence[Candidate], ScoreStats]]:
    """BM25 document rankings, over whole documents or pooled from passages.

    Each comes with the statistics of every document's score (zeros included),
    which the z-score blend needs, as the service computes them over passages.
    """
    count = len(documents)
    if level == "document":
        index = BM25Index.build([d.text for d in documents])
        pooled_scores = (index.scores(q) for q in queries)
    else:
        texts = [
            embedding_text(documents[d].title, documents[d].title, documents[d].text[s:e])
            for d, s, e in table.spans.tolist()
        ]
        index = BM25Index.build(texts)
        pooled_scores = (
            np.maximum(max_per_document(index.scores(q), table.doc_index, count), 0.0)
            for q in queries
        )
    return [
        (top_scores(scores, depth), ScoreStats.of(scores, floor=0.0)) for scores in pooled_scores
    ]


def to_run(
    ids: list[str], qids: list[str], runs: Sequence[Sequence[Candidate]]
) -> dict[str, dict[str, float]]:
    """ranx wants scores: derive them from the rank, so equal scores cannot reorder a ranking."""
    return {
        qid: {ids[c.index]: float(len(ranked) - c.rank + 1) for c in ranked}
        for qid, ranked in zip(qids, runs, strict=True)
    }


def score_runs(
    qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]]
) -> dict[str, float]:
    """nDCG@10, Recall@100 and MRR@10 with ranx; queries with no result count as 0."""
    from ranx import Qrels, Run, evaluate

    complete = {q: (run.get(q) or {}) for q in qrels}
    # ranx rejects an empty run for a query; a single unjudged id scores the same as nothing.
    complete = {q: ranked or {"__none__": 0.0} for q, ranked in complete.items()}
    scores = evaluate(Qrels.from_dict(qrels), Run.from_dict(complete), list(METRICS))
    return {name: float(scores[name]) for name in METRICS}


def run_beir(
    folder: Path,
    embedder: Embedder,
    chunking: ChunkSettings,
    cache_dir: Path,
    retrievers: Sequence[str] = RETRIEVERS,
    fusion: str = "blend",
    rrf_k: int = 60,
    dense_weight: float = 0.6,
    bm25_weight: float = 0.4,
    bm25_level: Bm25Level = "document",
    batch_size: int = 32,
    progress: Progress = _noop,
) -> BeirResult:
    """Rank the corpus for every judged query with each retriever and score with ranx."""
    clock = time.perf_counter()
    seconds: dict[str, float] = {}
    data = load_beir(folder)
    documents = [
        beir_document(i, t, x) for i, t, x in zip(data.ids, data.titles, data.texts, strict=True)
    ]
    seconds["load"] = time.perf_counter() - clock
    clock = time.perf_counter()
    table, cached = passages(data, documents, embedder, chunking, cache_dir, batch_size, progress)
    seconds["passages"] = time.perf_counter() - clock
    qids = list(data.queries)
    texts = [data.queries[q] for q in qids]
    clock = time.perf_counter()
    query_vectors = encode_batched(embedder, texts, batch_size, "embedding queries", progress)
    seconds["queries"] = time.perf_counter() - clock
    wanted = set(retrievers)
    runs: dict[str, list[Sequence[Candidate]]] = {}
    clock = time.perf_counter()
    if wanted & {"dense", "hybrid"}:
        runs["dense"] = dense_runs(table, query_vectors, len(documents))
    if wanted & {"bm25", "hybrid"}:
        bm25 = bm25_runs(data, documents, table, texts, bm25_level)
        runs["bm25"] = [ranked for ranked, _ in bm25]
    if "hybrid" in wanted:
        # The service's own fusion, applied to document rankings.
        runs["hybrid"] = [
            [
                Candidate(f.index, f.score, r)
                for r, f in enumerate(
                    combine(d, b, "hybrid", fusion, rrf_k, dense_weight, bm25_weight, stats)[
                        :RUN_DEPTH
                    ],
                    1,
                )
            ]
            for d, (b, stats) in zip(runs["dense"], bm25, strict=True)
        ]
    seconds["ranking"] = time.perf_counter() - clock
    clock = time.perf_counter()
    result = BeirResult(
        config={
            "benchmark": data.name,
            "documents": len(documents),
            "queries": len(qids),
            "passages": len(table.spans),
            "model": embedder.model_id,
            "chunk_tokens": chunking.chunk_tokens,
            "overlap": chunking.overlap,
            "bm25_level": bm25_level,
            "fusion": fusion,
            "rrf_k": rrf_k,
            "dense_weight": dense_weight,
            "bm25_weight": bm25_weight,
            "cached_embeddings": cached,
        }
    )
    for name in retrievers:
        result.metrics[name] = score_runs(data.qrels, to_run(data.ids, qids, runs[name]))
    seconds["scoring"] = time.perf_counter() - clock
    result.seconds = seconds
    return result
