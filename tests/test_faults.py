"""Faults: damaged index files, a build killed mid-way, two builds at once.

The index must be checked at load, rebuilt from seeds/ (or refused, with the
broken file named, when rebuilding is off), never serve wrong passages, and never
be left half-written.
"""

from __future__ import annotations

import json
import logging
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from filelock import FileLock

from qa.api import create_app
from qa.config import Settings
from qa.embedding import Embedder
from qa.errors import CorruptIndexError, IndexLockedError, StaleIndexError
from qa.indexing import LOCK_FILE, build_index, check_index, open_index
from qa.service import QAService
from qa.store.faiss.folders import (
    BUILDS,
    PASSAGES_FILE,
    current_build,
    load_snapshot,
    read_manifest,
    seal,
)
from qa.store.manifest import MANIFEST_FILE
from tests.helpers import FakeEmbedder, free_port, make_settings, project_env, qa_command

QUESTION = "Is the Sino-Russian relationship an alliance?"
DAMAGED = ["vectors.faiss", PASSAGES_FILE, MANIFEST_FILE, "documents.json"]

OTHER_SEED = """\
Notes on alpine glaciers

Alpine glaciers retreat quickly in warm summers, and their meltwater feeds the rivers below.

Moraines mark how far a glacier once reached; geologists date them with lichens and isotopes.
"""


def _copy(project: Path, root: Path) -> Path:
    shutil.copytree(project / "seeds", root / "seeds")
    shutil.copytree(project / "index", root / "index", symlinks=True)
    return root


@pytest.fixture
def built(tmp_path: Path, fake_essay_settings: Settings, fake_essay_service: QAService) -> Path:
    """A private copy of the essay project indexed with the fake model (checkpoints too):
    damage and recovery are about files, not about the model."""
    return _copy(fake_essay_settings.seeds_dir.parent, tmp_path / "project")


@pytest.fixture
def real_built(tmp_path: Path, essay_project: Path, essay_service: QAService) -> Path:
    """The same with the real model, for `qa` run as a process (which loads it)."""
    return _copy(essay_project, tmp_path / "project")


def damage(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "truncated":
        path.write_bytes(bytes(data[: len(data) // 2]))
    else:  # flip a run of bytes in the middle: same length, different content
        middle = len(data) // 2
        for i in range(middle, min(middle + 16, len(data))):
            data[i] ^= 0xFF
        path.write_bytes(bytes(data))


def passage_ids(service: QAService, question: str = QUESTION) -> list[str]:
    return [hit.passage.passage_id for hit in service.ask(question, k=5).hits]


# -- damaged files ----------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["corrupted", "truncated"])
@pytest.mark.parametrize("name", DAMAGED)
def test_damaged_file_is_detected_named_and_rebuilt_from_seeds(
    built: Path, fake_embedder: FakeEmbedder, fake_essay_service: QAService, name: str, how: str
) -> None:
    settings = make_settings(built)
    old = current_build(settings.index_dir)
    damage(old / name, how)
    with pytest.raises(CorruptIndexError, match=name.replace(".", r"\.")):
        load_snapshot(old)

    notices: list[str] = []
    snapshot = open_index(settings, fake_embedder, rebuild=True, notice=notices.append)
    [notice] = notices
    assert notice.startswith("rebuilding index: ") and name in notice
    rebuilt = current_build(settings.index_dir)
    assert rebuilt != old and not old.exists()  # a new build, published atomically
    assert check_index(settings, fake_embedder) == []  # and it is current: no rebuild loop
    load_snapshot(rebuilt)  # every checksum holds
    service = QAService(settings, fake_embedder, snapshot)
    assert passage_ids(service) == passage_ids(fake_essay_service)

    second: list[str] = []
    open_index(settings, fake_embedder, rebuild=True, notice=second.append)
    assert second == [] and current_build(settings.index_dir) == rebuilt


@pytest.mark.parametrize("name", DAMAGED)
def test_damaged_file_is_refused_when_rebuilding_is_off(
    built: Path, fake_embedder: FakeEmbedder, name: str
) -> None:
    settings = make_settings(built, auto_rebuild=False)
    folder = current_build(settings.index_dir)
    damage(folder / name, "corrupted")
    with pytest.raises(StaleIndexError, match=name.replace(".", r"\.")):
        QAService.open(settings, fake_embedder)
    assert current_build(settings.index_dir) == folder  # nothing was rebuilt


def test_server_with_a_damaged_index_and_no_rebuild_stays_up_and_never_answers(
    built: Path, fake_embedder: FakeEmbedder
) -> None:
    settings = make_settings(built, auto_rebuild=False)
    damage(current_build(settings.index_dir) / "vectors.faiss", "corrupted")
    calls: list[int] = []

    def factory(s: Settings, model: Embedder | None) -> QAService:
        calls.append(1)
        return QAService.open(s, fake_embedder)

    with TestClient(create_app(settings, service_factory=factory)) as client:
        deadline = time.monotonic() + 30
        while client.get("/readyz").json()["status"] == "loading":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        ready = client.get("/readyz")
        assert ready.status_code == 503 and "vectors.faiss" in ready.json()["error"]
        answer = client.post("/ask", json={"question": QUESTION})
        assert answer.status_code == 503 and "vectors.faiss" in answer.json()["error"]["message"]
        time.sleep(0.3)
        assert client.get("/healthz").status_code == 200  # up, not crashed
    assert calls == [1]  # tried once: no load loop


def test_server_with_a_damaged_index_rebuilds_logs_the_file_and_serves(
    built: Path,
    fake_embedder: FakeEmbedder,
    fake_essay_service: QAService,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = make_settings(built)
    damage(current_build(settings.index_dir) / PASSAGES_FILE, "truncated")

    def factory(s: Settings, model: Embedder | None) -> QAService:
        return QAService.open(s, fake_embedder, notice=logging.getLogger("qa.api").warning)

    with (
        caplog.at_level(logging.WARNING, logger="qa.api"),
        TestClient(create_app(settings, service_factory=factory)) as client,
    ):
        deadline = time.monotonic() + 60
        while client.get("/readyz").status_code != 200:
            assert (
                time.monotonic() < deadline and client.get("/readyz").json()["status"] != "failed"
            )
            time.sleep(0.05)
        body = client.post("/ask", json={"question": QUESTION, "k": 5}).json()
    assert [p["id"] for p in body["passages"]] == passage_ids(fake_essay_service)
    assert any(
        PASSAGES_FILE in r.getMessage() for r in caplog.records if "rebuild" in r.getMessage()
    )


def test_tampered_passage_with_a_valid_checksum_is_still_refused(built: Path) -> None:
    """Defence in depth: passage text is checked against its document, not just hashed."""
    folder = current_build(built / "index")
    lines = (folder / PASSAGES_FILE).read_text(encoding="utf-8").splitlines()
    record = json.loads(lines[3])
    record["text"] = "Narnia and Russia signed an alliance. " + record["text"][39:]
    lines[3] = json.dumps(record, ensure_ascii=False)
    (folder / PASSAGES_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
    manifest = read_manifest(folder)
    seal(folder, manifest, list(manifest.files))  # re-sealed: checksums now "valid"
    with pytest.raises(CorruptIndexError, match="does not match its document"):
        load_snapshot(folder)


def test_qa_serve_refuses_a_damaged_index_when_rebuilding_is_off(real_built: Path) -> None:
    built = real_built  # `qa serve` compares the index with the real model's id
    damage(current_build(built / "index") / "vectors.faiss", "corrupted")
    result = subprocess.run(
        [*qa_command(), "serve", "--port", str(free_port())],
        env=project_env(built, QA_AUTO_REBUILD="false"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: the index cannot be served")
    assert "vectors.faiss is corrupt" in result.stderr and "Traceback" not in result.stderr


# -- a build killed mid-way -------------------------------------------------------------------


def _wait_for(check: object, timeout: float, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert process.poll() is None, "qa index ended before it could be killed"
        assert time.monotonic() < deadline, "qa index did not reach the point to kill it"
        time.sleep(0.01)


@pytest.mark.slow
def test_qa_index_killed_mid_build_leaves_the_previous_index_intact(
    real_built: Path, embedder: Embedder, essay_service: QAService
) -> None:
    index = real_built / "index"
    before = current_build(index)
    checkpoints = list((index / "work").rglob("*.npz"))
    assert checkpoints
    process = subprocess.Popen(
        [*qa_command(), "index", "--force"],
        env=project_env(real_built),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # --force drops the checkpoints first: from then on the build is under way,
        # embedding, then writing a temporary build folder, then publishing.
        _wait_for(lambda: not any(p.exists() for p in checkpoints), 180, process)
        deadline = time.monotonic() + 1.5
        _wait_for(
            lambda: any((index / BUILDS).glob(".tmp-*")) or time.monotonic() > deadline,
            30,
            process,
        )
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert current_build(index) == before  # still the old build, untouched
    settings = make_settings(real_built, auto_rebuild=False)
    assert check_index(settings, embedder) == []
    service = QAService.open(settings, embedder)  # loads, every checksum verified
    assert passage_ids(service) == passage_ids(essay_service)

    # The next build recovers: it publishes a fresh build and clears the leftovers (the
    # fake model keeps this cheap; what matters here is the publishing).
    summary = build_index(settings, FakeEmbedder())
    assert summary.folder != before and current_build(index) == summary.folder
    assert [p.name for p in (index / BUILDS).iterdir()] == [summary.folder.name]
    load_snapshot(summary.folder)


# -- two builds at once -----------------------------------------------------------------------


def test_second_build_waits_for_the_lock_or_fails_clearly(project: Path) -> None:

    settings = make_settings(project, lock_timeout_s=0.2)
    settings.index_dir.mkdir()
    # Not thread-local, so the timer thread below can release it.
    lock = FileLock(str(settings.index_dir / LOCK_FILE), thread_local=False)
    with lock:
        started = time.monotonic()
        with pytest.raises(IndexLockedError, match=r"another `qa index` holds .*gave up after"):
            build_index(settings, FakeEmbedder())
        assert time.monotonic() - started >= 0.2
    assert not (settings.index_dir / "current").exists()  # nothing half-published

    waiting = settings.with_overrides(lock_timeout_s=30.0)
    lock.acquire()
    threading.Timer(0.5, lock.release).start()
    started = time.monotonic()
    summary = build_index(waiting, FakeEmbedder())
    assert time.monotonic() - started >= 0.4  # waited for the holder, then built
    assert summary.documents == 1 and current_build(settings.index_dir) == summary.folder


def _holds_lock(path: Path) -> bool:
    probe = FileLock(str(path), timeout=0)
    try:
        probe.acquire()
    except Exception:
        return True
    probe.release()
    return False


@pytest.mark.slow
def test_two_qa_index_runs_at_once_never_mix(tmp_path: Path, embedder: Embedder) -> None:
    """Same index folder, different seed sets: the result is one set or the other, whole."""
    essay = next((Path(__file__).resolve().parent.parent / "seeds").glob("*.txt"))
    first, second = tmp_path / "first", tmp_path / "second"
    (first / "seeds").mkdir(parents=True)
    (second / "seeds").mkdir(parents=True)
    shutil.copy(essay, first / "seeds" / essay.name)
    (second / "seeds" / "glaciers.txt").write_text(OTHER_SEED, encoding="utf-8")
    index = tmp_path / "index"
    env = {"QA_INDEX_DIR": str(index)}

    a = subprocess.Popen(
        [*qa_command(), "index", "--force"],
        env={**project_env(first), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for(lambda: _holds_lock(index / LOCK_FILE), 180, a)
        b = subprocess.run(
            [*qa_command(), "index", "--force"],
            env={**project_env(second), **env},
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        _, a_err = a.communicate(timeout=300)
    assert a.returncode == 0, a_err
    assert b.returncode == 0, b.stderr  # it waited for the lock, then built
    assert "indexed 1 documents" in b.stdout

    folder = current_build(index)
    snapshot = load_snapshot(folder)  # every checksum holds
    assert set(snapshot.documents) == {"glaciers"}  # the second run's set, and only it
    assert {p.doc_id for p in snapshot.passages} == {"glaciers"}
    assert [p.name for p in (index / BUILDS).iterdir()] == [folder.name]
    settings = make_settings(second, index_dir=index, auto_rebuild=False)
    hits = QAService.open(settings, embedder).ask("Why do glaciers retreat?", k=1).hits
    assert hits and "glacier" in hits[0].passage.text


# -- damaged checkpoints (the per-document vectors a FAISS build is assembled from) -----------


def _damaged_checkpoints(project: Path, how: str) -> Settings:

    settings = make_settings(project)
    build_index(settings, FakeEmbedder())
    damage(current_build(settings.index_dir) / "vectors.faiss", "corrupted")
    checkpoints = list((settings.index_dir / "work").rglob("*.npz"))
    assert checkpoints
    for checkpoint in checkpoints:
        damage(checkpoint, how)
    return settings


def test_truncated_checkpoint_is_re_embedded_during_the_rebuild(project: Path) -> None:

    settings = _damaged_checkpoints(project, "truncated")
    snapshot = open_index(settings, FakeEmbedder(), rebuild=True, notice=lambda _: None)
    assert snapshot.passages and check_index(settings, FakeEmbedder()) == []


def test_corrupted_checkpoint_fails_clearly_once_then_rebuilds(project: Path) -> None:

    settings = _damaged_checkpoints(project, "corrupted")
    with pytest.raises(CorruptIndexError, match=r"checkpoint for .* is damaged"):
        open_index(settings, FakeEmbedder(), rebuild=True, notice=lambda _: None)
    # The damaged checkpoint was discarded: the next attempt embeds the document again.
    snapshot = open_index(settings, FakeEmbedder(), rebuild=True, notice=lambda _: None)
    assert snapshot.passages and check_index(settings, FakeEmbedder()) == []
