"""BEIR benchmarks (``corpus.jsonl``, ``queries.jsonl``, ``qrels/test.tsv``): a public yardstick.

The corpus is indexed by the pipeline ``qa index`` runs (each entry becomes a
``Document``: title, a blank line, then the text), and every query is ranked by
``QAService.ask``, the service's own path; a document then scores as its best
passage. So the figures describe the ranking a user gets. Metrics come from
ranx, not from hand-written code, so they match trec_eval.

The index is a FAISS store under ``cache_dir/beir/<name>-<corpus hash>``: its
manifest and per-document checkpoints record the model and chunking, so a
second run with the same settings only embeds the queries, and an interrupted
first run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from qa.config import RETRIEVERS, Settings
from qa.embedding import Embedder, Vectors
from qa.errors import InvalidQuestionError
from qa.evaluation.labels import EvaluationError
from qa.indexing.pipeline import Parsed, run_pipeline, stale_store_reasons
from qa.retrieval.pipeline import SearchOptions
from qa.service import QAService
from qa.store.faiss import FaissStore
from qa.types import Block, BlockKind, Document, Progress, no_progress

METRICS = ("ndcg@10", "recall@100", "mrr@10")
# The service searches max(candidates, 4 k) passages per retriever before fusing, and
# the z-score blend depends on that depth. A user asks for k <= 50 and so always gets
# ``candidates``; BEIR asks for the most passages that keep the same depth.
HITS_PER_CANDIDATE = 4


def beir_hits(settings: Settings) -> int:
    """Passages asked of the service per query (then pooled to documents by their best)."""
    return max(settings.candidates // HITS_PER_CANDIDATE, 1)


ASK_STAGE = "asking ({})"


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


def cache_folder(cache_dir: Path, data: BeirData) -> Path:
    """Where a corpus's index lives; the store itself tracks model and chunking."""
    return cache_dir / "beir" / f"{data.name}-{data.corpus_sha256[:16]}"


def documents_of(data: BeirData) -> list[Document]:
    return [
        beir_document(i, t, x) for i, t, x in zip(data.ids, data.titles, data.texts, strict=True)
    ]


def document_ranking(
    service: QAService, question: str, vector: Vectors, retriever: str, hits: int
) -> list[str]:
    """Documents in the order of their best passage in the service's own answer."""
    try:
        answer = service.ask(
            question, hits, retriever, include_low_confidence=True, question_vector=vector
        )
    except InvalidQuestionError:  # an empty query ranks nothing
        return []
    return list(dict.fromkeys(hit.passage.doc_id for hit in answer.hits))


def to_run(rankings: dict[str, list[str]]) -> dict[str, dict[str, float]]:
    """ranx wants scores: derive them from the rank, so equal scores cannot reorder a ranking."""
    return {
        qid: {doc_id: float(len(ranked) - rank) for rank, doc_id in enumerate(ranked)}
        for qid, ranked in rankings.items()
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
    settings: Settings,
    embedder: Embedder,
    retrievers: Sequence[str] = RETRIEVERS,
    progress: Progress = no_progress,
) -> BeirResult:
    """Index the corpus, rank it for every judged query with each retriever, score with ranx.

    Sentence vectors are not embedded: they only choose quotes, which no BEIR
    metric reads (quotes fall back to the passage's first sentences).
    """
    clock = time.perf_counter()
    seconds: dict[str, float] = {}
    data = load_beir(folder)
    documents = documents_of(data)
    seconds["load"] = time.perf_counter() - clock
    clock = time.perf_counter()
    store = FaissStore(cache_folder(settings.cache_dir, data))
    sources = [Parsed(d) for d in documents]
    cached = not stale_store_reasons(store, sources, embedder, settings.chunking)
    if not cached:
        run_pipeline(
            store,
            sources,
            embedder,
            settings.chunking,
            settings.batch_size,
            progress,
            sentences=False,
        )
    snapshot = store.load()
    seconds["index"] = time.perf_counter() - clock
    qids = list(data.queries)
    texts = [data.queries[q] for q in qids]
    clock = time.perf_counter()
    progress("embedding queries", 0, len(texts))
    query_vectors = embedder.encode(texts, batch_size=settings.batch_size)
    progress("embedding queries", len(texts), len(texts))
    seconds["queries"] = time.perf_counter() - clock
    hits = beir_hits(settings)
    service = QAService(
        settings.with_overrides(max_k=max(settings.max_k, hits)),
        embedder,
        snapshot,
        # Quotes do not change the ranking; without sentence vectors "dense" costs nothing.
        replace(SearchOptions.from_settings(settings), quote_method="dense"),
    )
    clock = time.perf_counter()
    rankings: dict[str, dict[str, list[str]]] = {}
    for name in retrievers:
        stage = ASK_STAGE.format(name)
        rankings[name] = {}
        for number, (qid, text) in enumerate(zip(qids, texts, strict=True)):
            rankings[name][qid] = document_ranking(service, text, query_vectors[number], name, hits)
            progress(stage, number + 1, len(qids))
    seconds["ranking"] = time.perf_counter() - clock
    clock = time.perf_counter()
    depth = [len(r) for ranked in rankings.values() for r in ranked.values()]
    result = BeirResult(
        config={
            "benchmark": data.name,
            "documents": len(documents),
            "queries": len(qids),
            "passages": len(snapshot.passages),
            "model": embedder.model_id,
            "chunk_tokens": settings.chunk_tokens,
            "overlap": settings.overlap,
            "ranking": f"QAService.ask, {hits} passages pooled to documents by max",
            "fewest_documents_ranked": min(depth, default=0),
            "fusion": settings.fusion,
            "rrf_k": settings.rrf_k,
            "dense_weight": settings.dense_weight,
            "bm25_weight": settings.bm25_weight,
            "candidates": settings.candidates,
            "cached_embeddings": cached,
        }
    )
    for name in retrievers:
        result.metrics[name] = score_runs(data.qrels, to_run(rankings[name]))
    seconds["scoring"] = time.perf_counter() - clock
    result.seconds = seconds
    return result
