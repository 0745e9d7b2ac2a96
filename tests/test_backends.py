"""Issue 8: FAISS and Milvus Lite give the same answers; incremental updates; resume."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

import qa.indexing.pipeline
import qa.store.milvus.store
from qa.config import Settings
from qa.embedding import Embedder, Vectors
from qa.evaluation.labels import Labelled, load_questions, locate
from qa.indexing import build_index, check_index, open_index, plan_index
from qa.service import QAService
from qa.store.faiss.checkpoints import CheckpointStore
from qa.store.manifest import ChunkingEntry
from qa.store.snapshot import Snapshot
from qa.types import Passage
from tests.helpers import (
    ESSAY,
    QUESTIONS,
    FakeEmbedder,
    ReplayEmbedder,
    known_vectors,
    make_settings,
)

BACKENDS = ["faiss", "milvus"]


def backend_settings(root: Path, backend: str, **overrides: object) -> Settings:
    store = "faiss" if backend == "faiss" else f"milvus://{root / 'milvus.db'}"
    return make_settings(root, vector_store=store, **overrides)


class CountingEmbedder(FakeEmbedder):
    """Counts what it embeds, and can fail on purpose at the ``fail_on``-th call."""

    def __init__(self, fail_on: int | None = None) -> None:
        super().__init__()
        self.calls = 0
        self.texts: list[str] = []
        self.fail_on = fail_on

    def encode(self, texts: list[str], batch_size: int = 32) -> Vectors:
        self.calls += 1
        if self.fail_on is not None and self.calls >= self.fail_on:
            raise RuntimeError("injected crash while embedding")
        self.texts.extend(texts)
        return super().encode(texts, batch_size)

    def embedded_docs(self, names: list[str]) -> set[str]:
        """Which of these documents' titles were embedded (titles head each passage)."""
        return {n for n in names if any(t.startswith(f"Topic {n}") for t in self.texts)}


TOPICS = {
    "alpha": "Alpine glaciers retreat quickly in warm summers. Meltwater feeds rivers.",
    "bravo": "Bread rises because yeast produces carbon dioxide. Ovens bake the loaf.",
    "charlie": "Chess openings control the centre early. Knights move in an L shape.",
    "delta": "River deltas form where sediment settles at the coast. Mangroves grow there.",
    "echo": "Echoes are reflected sound waves. Bats navigate by echolocation at night.",
    "foxtrot": "Foxtrot is a smooth ballroom dance. It became popular in the 1910s.",
}


def write_doc(root: Path, name: str, body: str | None = None) -> None:
    text = body if body is not None else TOPICS[name]
    (root / "seeds" / f"{name}.txt").write_text(f"Topic {name}\n\n{text}\n", encoding="utf-8")


def small_project(root: Path, names: list[str]) -> Path:
    (root / "seeds").mkdir(parents=True, exist_ok=True)
    for name in names:
        write_doc(root, name)
    return root


def fingerprint(snapshot: Snapshot) -> list[tuple[str, str, int, int]]:
    return [(p.doc_id, p.passage_id, p.start, p.end) for p in snapshot.passages]


def top_ids(
    service: QAService, question: str, retriever: str = "hybrid", vector: Vectors | None = None
) -> list[str]:
    answer = service.ask(
        question, k=5, retriever=retriever, include_low_confidence=True, question_vector=vector
    )
    return [h.passage.passage_id for h in answer.hits]


# -- settings -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["faiss", "milvus:///tmp/x/index.db", "milvus://localhost:19530", "milvus://10.0.0.2:1"],
)
def test_vector_store_setting_accepts(value: str, clean_env: None) -> None:
    assert Settings(vector_store=value).vector_store == value


@pytest.mark.parametrize(
    "value",
    ["", "milvus", "milvus://relative.db", "milvus:///tmp/x.txt", "milvus://host", "pg://x"],
)
def test_vector_store_setting_rejects(value: str, clean_env: None) -> None:
    with pytest.raises(ValueError, match="milvus"):
        Settings(vector_store=value)


# -- parity -----------------------------------------------------------------------------


def evidence_hit(labelled: Labelled, passages: list[Passage], k: int) -> bool:
    """The evaluation's rule: a top-k passage covers half of an evidence occurrence."""
    return any(labelled.answered_by(p.doc_id, p.start, p.end) for p in passages[:k])


@pytest.fixture(scope="session")
def milvus_essay_service(
    tmp_path_factory: pytest.TempPathFactory, embedder: Embedder, essay_service: QAService
) -> QAService:
    """The essay in Milvus Lite, built from the vectors of the FAISS essay index."""
    root = tmp_path_factory.mktemp("milvus-essay")
    (root / "seeds").mkdir()
    shutil.copy(ESSAY, root / "seeds" / ESSAY.name)
    settings = backend_settings(root, "milvus")
    build_index(settings, ReplayEmbedder(embedder, known_vectors(essay_service, embedder)))
    return QAService(settings, embedder, open_index(settings, embedder, rebuild=False))


def test_backend_parity_on_labelled_questions(
    essay_service: QAService,
    milvus_essay_service: QAService,
) -> None:
    faiss, milvus = essay_service, milvus_essay_service
    texts = {d.doc_id: d.text for d in faiss.documents()}
    labelled = locate(load_questions(QUESTIONS), texts)
    assert faiss.snapshot.manifest.vector_store.startswith("faiss:Flat")
    assert milvus.snapshot.manifest.vector_store == "milvus:FLAT"
    assert fingerprint(faiss.snapshot) == fingerprint(milvus.snapshot)
    hits: dict[str, dict[int, list[bool]]] = {"faiss": {}, "milvus": {}}
    for item in labelled:
        question = item.question.question
        vector = faiss.encode_question(question)
        for retriever in ("dense", "bm25"):
            assert top_ids(faiss, question, retriever, vector) == top_ids(
                milvus, question, retriever, vector
            )
        a = faiss.ask(question, k=5, include_low_confidence=True, question_vector=vector)
        b = milvus.ask(question, k=5, include_low_confidence=True, question_vector=vector)
        assert a.answered == b.answered
        assert [h.passage.passage_id for h in a.hits] == [h.passage.passage_id for h in b.hits]
        assert [h.quote for h in a.hits] == [h.quote for h in b.hits]
        assert [h.explain.dense_score for h in a.hits] == pytest.approx(
            [h.explain.dense_score for h in b.hits], abs=1e-5
        )
        if not item.answerable:
            continue
        for name, answer in (("faiss", a), ("milvus", b)):
            passages = [h.passage for h in answer.hits]
            for k in (1, 3, 5):
                hits[name].setdefault(k, []).append(evidence_hit(item, passages, k))
    for k in (1, 3, 5):
        rate = {name: round(float(np.mean(hits[name][k])), 2) for name in hits}
        assert rate["faiss"] == rate["milvus"], (k, rate)


# -- incremental updates ------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_incremental_add_change_delete(tmp_path: Path, backend: str) -> None:
    root = small_project(tmp_path / "inc", ["alpha", "bravo", "charlie"])
    settings = backend_settings(root, backend)
    first = CountingEmbedder()
    summary = build_index(settings, first)
    assert (summary.added, summary.embedded) == (3, 3)
    assert check_index(settings, first) == []
    assert plan_index(settings, first).empty

    write_doc(root, "delta")
    write_doc(root, "bravo", "Sourdough bread uses wild yeast and lactobacilli. It tastes sour.")
    (root / "seeds" / "charlie.txt").unlink()
    before = plan_index(settings, first)
    assert (before.added, before.changed, before.removed) == (["delta"], ["bravo"], ["charlie"])
    assert any("new documents: delta" in r for r in check_index(settings, first))
    assert plan_index(settings, first).added == ["delta"]  # checking changed nothing

    second = CountingEmbedder()
    summary = build_index(settings, second)
    assert (summary.added, summary.changed, summary.removed) == (1, 1, 1)
    assert summary.embedded == 2
    assert second.embedded_docs(["alpha", "bravo", "charlie", "delta"]) == {"bravo", "delta"}
    assert check_index(settings, second) == []

    service = QAService(settings, second, open_index(settings, second, rebuild=False))
    assert set(service.snapshot.documents) == {"alpha", "bravo", "delta"}
    assert "Sourdough" in service.document("bravo").text
    assert all(p.doc_id != "charlie" for p in service.snapshot.passages)
    assert top_ids(service, "sediment mangroves coast", "dense")[0] in {
        p.passage_id for p in service.snapshot.passages if p.doc_id == "delta"
    }
    hits = service.ask("chess knights openings", k=5, include_low_confidence=True).hits
    assert all(h.passage.doc_id != "charlie" for h in hits)

    # The incremental result equals a fresh full build of the same seeds.
    fresh_root = tmp_path / "fresh"
    shutil.copytree(root / "seeds", fresh_root / "seeds")
    fresh_settings = backend_settings(fresh_root, backend)
    build_index(fresh_settings, FakeEmbedder())
    fresh = QAService(
        fresh_settings, FakeEmbedder(), open_index(fresh_settings, FakeEmbedder(), rebuild=False)
    )
    assert fingerprint(service.snapshot) == fingerprint(fresh.snapshot)
    for question in ("yeast bread", "glaciers meltwater", "river sediment"):
        assert top_ids(service, question) == top_ids(fresh, question)


@pytest.mark.parametrize("backend", BACKENDS)
def test_index_check_lists_changes_without_changing_anything(
    tmp_path: Path, backend: str, clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qa.cli.app import app

    root = small_project(tmp_path, ["alpha", "bravo"])
    settings = backend_settings(root, backend)
    build_index(settings, FakeEmbedder())
    write_doc(root, "echo")
    write_doc(root, "alpha", "Glaciers in the Andes are also shrinking.")
    (root / "seeds" / "bravo.txt").unlink()
    monkeypatch.setenv("QA_SEEDS_DIR", str(root / "seeds"))
    monkeypatch.setenv("QA_INDEX_DIR", str(root / "index"))
    monkeypatch.setenv("QA_VECTOR_STORE", settings.vector_store)
    monkeypatch.setenv("QA_MODEL", "fake")  # check must not need the model
    result = CliRunner().invoke(app, ["index", "--check"])
    assert result.exit_code == 1, result.output
    assert "would add 1: echo" in result.output
    assert "would re-embed 1: alpha" in result.output
    assert "would remove 1: bravo" in result.output
    assert plan_index(settings).removed == ["bravo"]  # still there: nothing changed


# -- resume after a crash -----------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_resume_after_crash_embeds_only_the_rest(
    tmp_path: Path, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = list(TOPICS)
    root = small_project(tmp_path / "crash", names)
    settings = backend_settings(root, backend)
    monkeypatch.setattr(qa.indexing.pipeline, "DOCS_PER_BATCH", 2)
    # Two encode calls per batch (passages, sentences): call 5 is the third batch.
    with pytest.raises(RuntimeError, match="injected"):
        build_index(settings, CountingEmbedder(fail_on=5))
    plan = plan_index(settings, FakeEmbedder())
    if backend == "faiss":  # nothing published, but two batches are checkpointed
        assert check_index(settings)[0].startswith("no index")
        store = CheckpointStore(
            settings.index_dir,
            qa.indexing.pipeline.model_entry(FakeEmbedder()),
            ChunkingEntry.of(settings.chunking),
        )
        assert len(list(store.folder.glob("*.npz"))) == 4
    else:  # two batches are committed in Milvus
        assert plan.added == names[4:]
        assert plan.unchanged == names[:4]
    resumed = CountingEmbedder()
    summary = build_index(settings, resumed)
    assert summary.embedded == 2
    assert resumed.embedded_docs(names) == set(names[4:])
    assert check_index(settings, resumed) == []

    fresh_root = small_project(tmp_path / "fresh", names)
    fresh_settings = backend_settings(fresh_root, backend)
    build_index(fresh_settings, FakeEmbedder())
    got = open_index(settings, FakeEmbedder(), rebuild=False)
    want = open_index(fresh_settings, FakeEmbedder(), rebuild=False)
    assert fingerprint(got) == fingerprint(want)
    np.testing.assert_allclose(got.sentence_vectors, want.sentence_vectors)


class CrashingClient:
    """A Milvus client that dies after writing a batch's passages, before its documents."""

    def __init__(self, real: Any, crash_on: int) -> None:
        self._real = real
        self._documents = 0
        self._crash_on = crash_on

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def insert(self, collection: str, rows: list[dict[str, Any]]) -> Any:
        if collection.endswith("_documents"):
            self._documents += 1
            if self._documents == self._crash_on:
                raise RuntimeError("injected crash between passages and documents")
        return self._real.insert(collection, rows)


def test_milvus_cleans_up_a_half_written_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = list(TOPICS)
    root = small_project(tmp_path, names)
    settings = backend_settings(root, "milvus")
    monkeypatch.setattr(qa.indexing.pipeline, "DOCS_PER_BATCH", 2)
    real_connect = qa.store.milvus.store.connect
    monkeypatch.setattr(
        qa.store.milvus.store, "connect", lambda uri: CrashingClient(real_connect(uri), 2)
    )
    with pytest.raises(RuntimeError, match="injected"):
        build_index(settings, FakeEmbedder())
    monkeypatch.setattr(qa.store.milvus.store, "connect", real_connect)
    # Batch 2's passages are in Milvus, but its documents are not committed.
    assert plan_index(settings, FakeEmbedder()).added == names[2:]
    resumed = CountingEmbedder()
    assert build_index(settings, resumed).embedded == 4
    snapshot = open_index(settings, resumed, rebuild=False)  # passage counts are checked
    assert sorted(snapshot.documents) == sorted(names)
    assert len({p.passage_id for p in snapshot.passages}) == len(snapshot.passages)
