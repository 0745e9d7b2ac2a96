"""Offline guarantee: `qa index` and `qa ask` end to end with every non-loopback socket blocked.

The CLI is what users run, so the honest test runs it as subprocesses. Each one
loads a ``sitecustomize`` that records and refuses any connection, datagram or
name lookup that is not loopback, and, where the kernel allows it, runs in its
own network namespace whose only interface is loopback, so code that bypasses
Python's sockets (native extensions) cannot reach out either. The HF offline
variables are removed from the environment: the CLI must be offline on its own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from qa.api import create_app
from qa.embedding import Embedder
from qa.indexing import build_index
from qa.service import QAService
from qa.store.faiss.folders import current_build
from tests.helpers import ESSAY, make_settings, project_env, qa_command

QUESTION = "Is the Sino-Russian relationship an alliance?"

GUARD = '''\
"""Test guard: record and refuse every non-loopback network use in this process."""
import errno
import os
import socket

_LOG = os.environ["QA_NET_GUARD_LOG"]
_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "ip6-localhost"}
with open(os.environ["QA_NET_GUARD_LOADED"], "a") as _f:
    _f.write(f"{os.getpid()}\\n")


def _record(what):
    with open(_LOG, "a") as handle:
        handle.write(what + "\\n")


def _loopback(address):
    if not isinstance(address, tuple):  # AF_UNIX path or abstract name
        return True
    host = address[0].decode() if isinstance(address[0], bytes) else str(address[0])
    return host in _LOOPBACK_NAMES or host.startswith("127.") or host == "::ffff:127.0.0.1"


def _blocked(kind, address):
    _record(f"{kind} {address!r}")
    return OSError(errno.ENETUNREACH, f"network use blocked by the offline test: {address!r}")


_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex
_sendto = socket.socket.sendto
_getaddrinfo = socket.getaddrinfo


def connect(self, address):
    if not _loopback(address):
        raise _blocked("connect", address)
    return _connect(self, address)


def connect_ex(self, address):
    if not _loopback(address):
        _record(f"connect_ex {address!r}")
        return errno.ENETUNREACH
    return _connect_ex(self, address)


def sendto(self, data, *args):
    address = args[-1]
    if not _loopback(address):
        raise _blocked("sendto", address)
    return _sendto(self, data, *args)


def getaddrinfo(host, *args, **kwargs):
    name = host.decode() if isinstance(host, bytes) else host
    if name is not None and name not in _LOOPBACK_NAMES and not str(name).startswith("127."):
        _record(f"getaddrinfo {name!r}")
        raise socket.gaierror(socket.EAI_NONAME, f"name lookup blocked: {name!r}")
    return _getaddrinfo(host, *args, **kwargs)


socket.socket.connect = connect
socket.socket.connect_ex = connect_ex
socket.socket.sendto = sendto
socket.getaddrinfo = getaddrinfo
'''


def _network_namespace() -> list[str]:
    """A prefix that runs a command with loopback as the only interface, if allowed here."""
    unshare, ip = shutil.which("unshare"), shutil.which("ip")
    if not unshare or not ip:
        return []
    probe = [unshare, "-n", "sh", "-c", f"{ip} link set lo up"]
    if subprocess.run(probe, capture_output=True, timeout=30).returncode != 0:
        return []
    return [unshare, "-n", "sh", "-c", f'{ip} link set lo up && exec "$@"', "sh"]


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[tuple[dict[str, str], Path, Path]]:
    """An environment whose Python processes load the guard; HF offline flags removed."""
    guard_dir = tmp_path / "guard"
    guard_dir.mkdir()
    (guard_dir / "sitecustomize.py").write_text(GUARD, encoding="utf-8")
    log, loaded = tmp_path / "network-attempts.log", tmp_path / "guard-loaded.log"
    root = tmp_path / "project"
    (root / "seeds").mkdir(parents=True)
    shutil.copy(ESSAY, root / "seeds" / ESSAY.name)
    env = project_env(root)
    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        env.pop(key, None)
    path = [str(guard_dir), *filter(None, [env.get("PYTHONPATH")])]
    env.update(
        PYTHONPATH=os.pathsep.join(path),
        QA_NET_GUARD_LOG=str(log),
        QA_NET_GUARD_LOADED=str(loaded),
        NO_PROXY="*",
    )
    yield env, log, loaded


def test_the_guard_catches_network_use(guarded: tuple[dict[str, str], Path, Path]) -> None:
    """Self-check, so an empty log below means something."""
    env, log, loaded = guarded
    script = (
        "import socket, urllib.request\n"
        "for call in (lambda: urllib.request.urlopen('http://example.com', timeout=2),\n"
        "             lambda: socket.create_connection(('203.0.113.7', 443), timeout=2)):\n"
        "    try:\n"
        "        call()\n"
        "    except OSError:\n"
        "        pass\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert loaded.read_text().strip()
    attempts = log.read_text()
    assert "getaddrinfo 'example.com'" in attempts and "203.0.113.7" in attempts


@pytest.mark.slow
@pytest.mark.model  # `qa index` and `qa ask` in subprocesses
def test_qa_index_and_ask_never_touch_the_network(
    guarded: tuple[dict[str, str], Path, Path],
) -> None:
    env, log, loaded = guarded
    prefix = _network_namespace()
    index = subprocess.run(
        [*prefix, *qa_command(), "index"], env=env, capture_output=True, text=True, timeout=600
    )
    assert index.returncode == 0, index.stderr
    assert "indexed 1 documents" in index.stdout
    ask = subprocess.run(
        [*prefix, *qa_command(), "ask", QUESTION, "-k", "2", "--no-rebuild"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert ask.returncode == 0, ask.stderr
    assert "alliance" in ask.stdout.lower() or "partnership" in ask.stdout.lower()
    assert len(loaded.read_text().split()) >= 2  # the guard ran in both processes
    assert not log.exists() or log.read_text() == "", log.read_text()


def test_build_and_ask_in_process_with_sockets_disabled(
    tmp_path: Path, essay_project: Path, essay_service: QAService, embedder: Embedder
) -> None:
    """pytest-socket in this process: building, asking and the API (in memory) use no socket."""
    import pytest_socket

    root = tmp_path / "copy"
    shutil.copytree(essay_project, root, symlinks=True)  # checkpoints too: no re-embedding
    settings = make_settings(root)
    pytest_socket.disable_socket(allow_unix_socket=True)
    try:
        summary = build_index(settings, embedder, force=False)
        service = QAService.open(settings, embedder, rebuild=False)
        assert summary.folder.name != current_build(essay_project / "index").name  # a new build
        assert summary.passages == len(service.snapshot.passages)
        assert service.ask(QUESTION, k=2).hits
        with TestClient(create_app(settings, service=service)) as client:
            assert client.post("/ask", json={"question": QUESTION, "k": 2}).status_code == 200
    finally:
        pytest_socket.enable_socket()


@pytest.mark.browser
def test_api_docs_render_with_the_network_blocked(essay_service: QAService) -> None:
    """/docs uses the Swagger UI bundled in a package: it renders with no request leaving."""
    from tests.helpers import CHROMIUM, CHROMIUM_ARGS, live_server

    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    outside: list[str] = []
    errors: list[str] = []
    with (
        live_server(create_app(essay_service.settings, service=essay_service)) as (base, _),
        sync_api.sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_context().new_page()
            page.set_default_timeout(20_000)

            def only_local(route: Any) -> None:
                if route.request.url.startswith(base):
                    route.continue_()
                else:
                    outside.append(route.request.url)
                    route.abort()

            page.route("**/*", only_local)
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{base}/docs")
            page.locator(".opblock").first.wait_for()
            summaries = page.locator(".opblock-summary-path").all_inner_texts()
            assert "/ask" in summaries and "/admin/reload" in summaries
            assert "qa-cite" in page.locator(".info .title").inner_text()
        finally:
            browser.close()
    assert outside == [], outside
    assert errors == [], errors
