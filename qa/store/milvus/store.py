"""The Milvus backend: passages, vectors and everything a replica needs, in collections.

Collections (``<prefix>_*``, prefix from ``QA_MILVUS_COLLECTION_PREFIX``):

- ``passages``: one row per passage — primary key ``<doc_id>/<passage_id>``, the
  passage record (text, offsets, sentences) as JSON, and its vector (FLAT, IP).
- ``sentences``: one row per distinct sentence — key ``<doc_id>/<sha12>/<start>:<end>``
  and its vector, for quotes (and the best-sentence rescoring).
- ``documents``: document text in parts of ``TEXT_PART`` characters, with title,
  path, hash and passage count — for citation checks and the manifest.
- ``meta``: the manifest header (model, chunking, build time) and the ids of
  documents being written right now (``pending``), for crash recovery.

Milvus requires a vector field in every collection, so ``documents`` and
``meta`` carry a 2-d placeholder vector.

A document is committed when its ``documents`` rows exist: they are inserted
after its passages and sentences, and its id is listed in ``pending`` while it
is in flight. An interrupted ``qa index`` therefore leaves at most one batch of
half-written documents, which the next run deletes and embeds again.

A replica loads the passages and documents (BM25 is rebuilt in memory from the
passage texts: cheap for tens of thousands of passages) and the sentence
vectors; passage vectors stay in Milvus and are searched there.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from qa.embedding import Vectors
from qa.errors import CorruptIndexError, IndexMissingError, VectorStoreUnavailableError
from qa.keywords import BM25Index
from qa.store.manifest import (
    SCHEMA_VERSION,
    ChunkingEntry,
    DocumentEntry,
    Manifest,
    ModelEntry,
    make_manifest,
)
from qa.store.protocol import EmbeddedDocument, Published
from qa.store.records import decode_passage, encode_passage
from qa.store.snapshot import DocumentInfo, Snapshot
from qa.store.vectors import Ids, Scores
from qa.types import DocumentScope, Passage, Progress
from qa.version import __version__

log = logging.getLogger(__name__)

TEXT_PART = 8000  # characters per document row: under VARCHAR's 65,535 bytes in any UTF-8
INSERT_ROWS = 500  # rows per insert call: keeps each gRPC message small
READ_BATCH = 2000
PLACEHOLDER = [1.0, 0.0]
HEADER_KEY = "header"
PENDING_KEY = "pending"
SPEC = "FLAT"  # exact inner-product search, like FAISS Flat


def milvus_uri(vector_store: str) -> str:
    """``milvus:///abs/file.db`` -> the file path (Milvus Lite); ``milvus://h:p`` -> ``http://h:p``."""
    rest = vector_store.removeprefix("milvus://")
    return rest if rest.startswith("/") else f"http://{rest}"


def connect(vector_store: str) -> Any:
    """A ``MilvusClient``, with a message that says what to do when it cannot connect."""
    from pymilvus import MilvusClient

    uri = milvus_uri(vector_store)
    try:
        # pymilvus pings idle channels every 10 s; Milvus Lite's gRPC server allows one
        # ping per 5 min and answers GOAWAY "too_many_pings", breaking idle replicas.
        options = {"grpc.keepalive_permit_without_calls": False, "grpc.keepalive_time_ms": 60_000}
        return MilvusClient(uri=uri, grpc_options=options)
    except Exception as exc:  # pymilvus raises several kinds for one cause
        hint = (
            " (a Milvus Lite file can be opened by one process at a time: run "
            "`milvus-lite server --data-dir FILE.db --port 19530` and point every process "
            "at milvus://127.0.0.1:19530)"
            if uri.startswith("/")
            else ""
        )
        raise VectorStoreUnavailableError(f"cannot open Milvus at {uri}: {exc}{hint}") from exc


class MilvusVectorStore:
    """Exact inner-product search in Milvus; results mapped to snapshot rows.

    Rows Milvus returns that this snapshot does not know (documents added after
    it was loaded) are skipped, so a replica always answers from its own view.
    """

    def __init__(self, client: Any, collection: str, ids: list[str], dim: int) -> None:
        self._client = client
        self._collection = collection
        self._row = {pk: i for i, pk in enumerate(ids)}
        self._dim = dim

    @property
    def spec(self) -> str:
        return SPEC

    @property
    def dim(self) -> int:
        return self._dim

    def __len__(self) -> int:
        return len(self._row)

    def search(
        self, queries: Vectors, k: int, scope: DocumentScope | None = None
    ) -> tuple[Scores, Ids]:
        """With a ``scope``, Milvus filters on ``doc_id`` server-side, before ranking."""
        k = max(1, min(k, len(self) if scope is None else len(scope.rows), 16384))
        scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        ids = np.full((len(queries), k), -1, dtype=np.int64)
        if len(self) == 0 or len(queries) == 0:
            return scores[:, :0], ids[:, :0]
        results = self._client.search(
            self._collection,
            data=[np.asarray(q, dtype=np.float32).tolist() for q in queries],
            limit=k,
            anns_field="vector",
            search_params={"metric_type": "IP"},
            output_fields=[],
            filter=_in(list(scope.doc_ids)) if scope is not None else "",
        )
        for q, hits in enumerate(results):
            col = 0
            for hit in hits:
                row = self._row.get(str(hit["id"]))
                if row is None:
                    continue
                scores[q, col], ids[q, col] = float(hit["distance"]), row
                col += 1
        return scores, ids

    def save(self, folder: Any) -> list[str]:
        """Nothing to write: the vectors are in Milvus."""
        return []

    def close(self) -> None:
        """Close the client this snapshot was loaded with (each load opens its own)."""
        self._client.close()


def _passage_key(doc_id: str, passage_id: str) -> str:
    return f"{doc_id}/{passage_id}"


def _sentence_key(doc_id: str, sha256: str, start: int, end: int) -> str:
    return f"{doc_id}/{sha256[:12]}/{start}:{end}"


def _in(ids: list[str]) -> str:
    return f"doc_id in {json.dumps(ids)}"


class MilvusStore:
    """Index in Milvus collections, updated in place one batch of documents at a time."""

    def __init__(self, vector_store: str, prefix: str) -> None:
        self.vector_store = vector_store
        self.prefix = prefix
        self.passages = f"{prefix}_passages"
        self.sentences = f"{prefix}_sentences"
        self.documents = f"{prefix}_documents"
        self.meta = f"{prefix}_meta"
        self._client: Any = None
        self._committed: dict[str, str] = {}  # doc_id -> sha256, since begin()

    @property
    def location(self) -> str:
        return f"{self.vector_store} ({self.prefix}_*)"

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = connect(self.vector_store)
            self._load_existing()
        return self._client

    def _load_existing(self) -> None:
        """Collections start released when Milvus (Lite) reopens; reads need them loaded."""
        names = set(self._client.list_collections())
        for name in (self.meta, self.documents, self.passages, self.sentences):
            if name in names:
                self._client.load_collection(name)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- schema ---------------------------------------------------------------------

    def _exists(self) -> bool:
        names = set(self.client.list_collections())
        return {self.passages, self.sentences, self.documents, self.meta} <= names

    def _create(self, dim: int) -> None:
        from pymilvus import DataType, MilvusClient

        def collection(name: str, fields: list[tuple[str, Any, dict[str, Any]]], vdim: int) -> None:
            if self.client.has_collection(name):
                return
            schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
            for field_name, dtype, kwargs in fields:
                schema.add_field(field_name, dtype, **kwargs)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=vdim)
            index = self.client.prepare_index_params()
            index.add_index(field_name="vector", index_type=SPEC, metric_type="IP")
            self.client.create_collection(
                name, schema=schema, index_params=index, consistency_level="Strong"
            )

        key = {"is_primary": True, "max_length": 1024}
        doc_id = ("doc_id", DataType.VARCHAR, {"max_length": 512})
        collection(
            self.passages,
            [("id", DataType.VARCHAR, key), doc_id, ("record", DataType.JSON, {})],
            dim,
        )
        collection(self.sentences, [("id", DataType.VARCHAR, key), doc_id], dim)
        collection(
            self.documents,
            [
                ("id", DataType.VARCHAR, key),
                doc_id,
                ("part", DataType.INT64, {}),
                ("text", DataType.VARCHAR, {"max_length": 65535}),
                ("info", DataType.JSON, {}),
            ],
            len(PLACEHOLDER),
        )
        collection(
            self.meta,
            [
                ("id", DataType.VARCHAR, key),
                ("value", DataType.VARCHAR, {"max_length": 65535}),
            ],
            len(PLACEHOLDER),
        )

    def _drop(self) -> None:
        for name in (self.passages, self.sentences, self.documents, self.meta):
            if self.client.has_collection(name):
                self.client.drop_collection(name)

    # -- meta -----------------------------------------------------------------------

    def _get_meta(self, key: str) -> Any:
        rows = self.client.get(self.meta, ids=[key], output_fields=["value"])
        return json.loads(rows[0]["value"]) if rows else None

    def _set_meta(self, key: str, value: Any) -> None:
        row = {"id": key, "value": json.dumps(value), "vector": PLACEHOLDER}
        self.client.upsert(self.meta, [row])

    def _iterate(self, collection: str, fields: list[str], filter: str = "") -> Iterator[Any]:
        iterator = self.client.query_iterator(
            collection, batch_size=READ_BATCH, filter=filter, output_fields=fields
        )
        try:
            while True:
                batch = iterator.next()
                if not batch:
                    return
                yield from batch
        finally:
            iterator.close()

    # -- reading --------------------------------------------------------------------

    def _header(self) -> dict[str, Any]:
        if not self._exists():
            raise IndexMissingError(f"no index yet in {self.location}")
        header = self._get_meta(HEADER_KEY)
        if not isinstance(header, dict):
            raise IndexMissingError(f"no index yet in {self.location}")
        return header

    def _committed_entries(self) -> dict[str, tuple[DocumentEntry, dict[str, Any]]]:
        """Documents whose rows are complete, with their stored info."""
        pending = set(self._get_meta(PENDING_KEY) or [])
        out: dict[str, tuple[DocumentEntry, dict[str, Any]]] = {}
        for row in self._iterate(self.documents, ["doc_id", "info"], "part == 0"):
            info = row["info"]
            if row["doc_id"] in pending:
                continue
            entry = DocumentEntry(
                path=info["path"], sha256=info["sha256"], passages=info["passages"]
            )
            out[row["doc_id"]] = (entry, info)
        return dict(sorted(out.items(), key=lambda item: (item[1][0].path, item[0])))

    def _manifest(
        self, header: dict[str, Any], entries: dict[str, tuple[DocumentEntry, dict[str, Any]]]
    ) -> Manifest:
        try:
            return make_manifest(
                ModelEntry.model_validate(header["model"]),
                ChunkingEntry.model_validate(header["chunking"]),
                f"milvus:{SPEC}",
                {d: e for d, (e, _) in entries.items()},
                tokens=sum(int(i.get("tokens", 0)) for _, i in entries.values()),
                built_at=header["built_at"],
                schema_version=header["schema_version"],
                package_version=header["package_version"],
            )
        except (KeyError, ValueError) as exc:
            raise CorruptIndexError(f"index header in {self.location} is corrupt: {exc}") from exc

    def published_manifest(self) -> Manifest:
        return self._manifest(self._header(), self._committed_entries())

    def load(self) -> Snapshot:
        """Everything from Milvus: documents, passages, sentence vectors; BM25 rebuilt here."""
        header = self._header()
        entries = self._committed_entries()
        manifest = self._manifest(header, entries)
        dim = manifest.model.dim
        documents = self._load_documents(entries)
        by_doc: dict[str, list[Passage]] = {d: [] for d in documents}
        keys: dict[str, str] = {}
        for row in self._iterate(self.passages, ["id", "doc_id", "record"]):
            if row["doc_id"] in by_doc:
                passage = decode_passage(row["record"], documents)
                by_doc[row["doc_id"]].append(passage)
                keys[passage.passage_id + "@" + passage.doc_id] = row["id"]
        passages: list[Passage] = []
        for doc_id in documents:  # seed order: by path, then by offset, as FAISS
            passages.extend(sorted(by_doc[doc_id], key=lambda p: (p.start, p.end)))
        for doc_id, (entry, _) in entries.items():
            if len(by_doc[doc_id]) != entry.passages:
                raise CorruptIndexError(
                    f"document {doc_id} has {len(by_doc[doc_id])} passages in "
                    f"{self.location}, expected {entry.passages}"
                )
        sentence_vectors, sentence_rows = self._load_sentences(passages, documents, dim)
        ids = [keys[p.passage_id + "@" + p.doc_id] for p in passages]
        return Snapshot(
            manifest=manifest,
            documents=documents,
            passages=passages,
            vectors=MilvusVectorStore(self.client, self.passages, ids, dim),
            bm25=BM25Index.build([p.keyword_text for p in passages]),
            sentence_vectors=sentence_vectors,
            sentence_rows=sentence_rows,
        )

    def _load_documents(
        self, entries: dict[str, tuple[DocumentEntry, dict[str, Any]]]
    ) -> dict[str, DocumentInfo]:
        parts: dict[str, dict[int, str]] = {d: {} for d in entries}
        for row in self._iterate(self.documents, ["doc_id", "part", "text"]):
            if row["doc_id"] in parts:
                parts[row["doc_id"]][int(row["part"])] = row["text"]
        documents = {}
        for doc_id, (entry, info) in entries.items():
            got = parts[doc_id]
            if sorted(got) != list(range(int(info["parts"]))):
                raise CorruptIndexError(f"document {doc_id} is incomplete in {self.location}")
            text = "".join(got[i] for i in sorted(got))
            documents[doc_id] = DocumentInfo(doc_id, info["title"], entry.path, entry.sha256, text)
        return documents

    def _load_sentences(
        self, passages: list[Passage], documents: dict[str, DocumentInfo], dim: int
    ) -> tuple[Vectors, list[int]]:
        """Distinct sentence vectors into one array, then laid out passage by passage."""
        unique: dict[str, int] = {}
        order: list[int] = []
        rows = [0]
        for p in passages:
            sha = documents[p.doc_id].sha256
            for s in p.sentences:
                order.append(
                    unique.setdefault(_sentence_key(p.doc_id, sha, s.start, s.end), len(unique))
                )
            rows.append(len(order))
        vectors = np.zeros((len(unique), dim), dtype=np.float32)
        found = np.zeros(len(unique), dtype=bool)
        for row in self._iterate(self.sentences, ["id", "vector"]):
            at = unique.get(row["id"])
            if at is not None:
                vectors[at] = row["vector"]
                found[at] = True
        if not found.all():
            raise CorruptIndexError(
                f"{int((~found).sum())} sentence vectors are missing in {self.location}"
            )
        laid_out: Vectors = vectors[np.asarray(order, dtype=np.int64)] if order else vectors
        return laid_out, rows

    def verify(self) -> None:
        """Milvus checks its own storage; ``load`` checks passage and sentence counts."""
        return None

    # -- updating -------------------------------------------------------------------

    def _delete_documents(self, doc_ids: list[str]) -> None:
        """Documents rows first (uncommits them), then their passages and sentences."""
        for start in range(0, len(doc_ids), 200):
            chunk = doc_ids[start : start + 200]
            for name in (self.documents, self.passages, self.sentences):
                self.client.delete(name, filter=_in(chunk))

    def begin(self, model: ModelEntry, chunking: ChunkingEntry, reset: bool = False) -> None:
        """Create the collections, dropping them first if they hold another build's vectors."""
        if self._exists():
            header = self._get_meta(HEADER_KEY)
            other = isinstance(header, dict) and (
                header.get("schema_version"),
                (header.get("model") or {}).get("model_id"),
                (header.get("model") or {}).get("weights_sha256"),
                header.get("chunking"),
            ) != (SCHEMA_VERSION, model.model_id, model.weights_sha256, chunking.model_dump())
            if reset or other:
                log.info("dropping Milvus collections (%s)", "reset" if reset else "new settings")
                self._drop()
        self._create(model.dim)
        if self._get_meta(HEADER_KEY) is None:
            self._set_meta(HEADER_KEY, _new_header(model, chunking))
        pending = list(self._get_meta(PENDING_KEY) or [])
        if pending:  # a previous run died mid-batch: its rows are incomplete
            log.info("cleaning up %d half-written documents", len(pending))
            self._delete_documents(pending)
            self._set_meta(PENDING_KEY, [])
        self._committed = {d: e.sha256 for d, (e, _) in self._committed_entries().items()}

    def has(self, doc_id: str, sha256: str) -> bool:
        return self._committed.get(doc_id) == sha256

    def delete(self, doc_ids: Sequence[str]) -> None:
        ids = list(doc_ids)
        if not ids:
            return
        self._set_meta(PENDING_KEY, ids)
        self._delete_documents(ids)
        self._set_meta(PENDING_KEY, [])
        for doc_id in ids:
            self._committed.pop(doc_id, None)

    def commit(self, batch: Sequence[EmbeddedDocument]) -> None:
        replacing = [d.info.doc_id for d in batch if d.info.doc_id in self._committed]
        self._commit(list(batch), replacing)
        self._committed.update({d.info.doc_id: d.info.sha256 for d in batch})

    def publish(self, documents: Sequence[DocumentInfo], progress: Progress) -> Published:
        """Flush, and stamp the header: committed documents are already what is served."""
        missing = sorted({d.doc_id for d in documents} - set(self._committed))
        if missing:
            raise CorruptIndexError(f"documents not committed in {self.location}: {missing[:5]}")
        for name in (self.passages, self.sentences, self.documents, self.meta):
            self.client.flush(name)
        header = self._get_meta(HEADER_KEY)
        header["built_at"] = Manifest.now()
        self._set_meta(HEADER_KEY, header)
        return Published(self.published_manifest(), self.location, None)

    def _commit(self, batch: list[EmbeddedDocument], replacing: list[str]) -> None:
        """Write one batch; its documents count only once their ``documents`` rows exist."""
        ids = [d.info.doc_id for d in batch]
        self._set_meta(PENDING_KEY, ids)
        if replacing:
            self._delete_documents(replacing)
        sentences: list[dict[str, Any]] = []
        passages: list[dict[str, Any]] = []
        docs: list[dict[str, Any]] = []
        for doc in batch:
            info = doc.info
            for span, vector in zip(doc.sentences, doc.sentence_vectors, strict=True):
                key = _sentence_key(info.doc_id, info.sha256, span.start, span.end)
                sentences.append({"id": key, "doc_id": info.doc_id, "vector": vector.tolist()})
            for passage, vector in zip(doc.passages, doc.passage_vectors, strict=True):
                passages.append(
                    {
                        "id": _passage_key(info.doc_id, passage.passage_id),
                        "doc_id": info.doc_id,
                        "record": encode_passage(passage),
                        "vector": vector.tolist(),
                    }
                )
            parts = [info.text[i : i + TEXT_PART] for i in range(0, len(info.text), TEXT_PART)]
            for number, text in enumerate(parts):
                meta = {
                    "title": info.title,
                    "path": info.path,
                    "sha256": info.sha256,
                    "passages": len(doc.passages),
                    "tokens": doc.tokens,
                    "parts": len(parts),
                }
                docs.append(
                    {
                        "id": f"{info.doc_id}#{number}",
                        "doc_id": info.doc_id,
                        "part": number,
                        "text": text,
                        "info": meta if number == 0 else {},
                        "vector": PLACEHOLDER,
                    }
                )
        for name, rows in ((self.sentences, sentences), (self.passages, passages)):
            for start in range(0, len(rows), INSERT_ROWS):
                self.client.insert(name, rows[start : start + INSERT_ROWS])
        # Last: these rows are what makes the documents count as indexed.
        for start in range(0, len(docs), INSERT_ROWS):
            self.client.insert(self.documents, docs[start : start + INSERT_ROWS])
        self._set_meta(PENDING_KEY, [])


def _new_header(model: ModelEntry, chunking: ChunkingEntry) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "package_version": __version__,
        "built_at": Manifest.now(),
        "model": model.model_dump(),
        "chunking": chunking.model_dump(),
    }
