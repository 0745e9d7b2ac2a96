"""The Dockerfile, checked statically (no Docker engine runs here)."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from qa.api import create_app

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

dockerfile_parse = pytest.importorskip("dockerfile_parse", reason="dockerfile-parse not installed")


@pytest.fixture(scope="module")
def instructions() -> list[dict[str, Any]]:
    parser = dockerfile_parse.DockerfileParser(path=str(DOCKERFILE))
    return [i for i in parser.structure if i["instruction"] != "COMMENT"]


def values(instructions: list[dict[str, Any]], name: str) -> list[str]:
    return [str(i["value"]) for i in instructions if i["instruction"] == name]


def ignored(path: str) -> bool:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    first = Path(path).parts[0]
    return any(fnmatch.fnmatch(path, p) or fnmatch.fnmatch(first, p) for p in patterns)


def test_slim_python_311_base_and_cpu_torch(instructions: list[dict[str, Any]]) -> None:
    [base] = values(instructions, "FROM")
    assert base.startswith("python:3.11-slim")
    runs = values(instructions, "RUN")
    [locked] = [r for r in runs if "-r requirements/runtime.lock" in r]
    assert "download.pytorch.org/whl/cpu" in locked, "torch==…+cpu lives on PyTorch's CPU index"
    install = next(i for i, r in enumerate(runs) if re.search(r"pip install --no-deps \.(\s|$)", r))
    assert runs.index(locked) < install, "the lock must be installed before the package"


def test_every_copied_path_exists_and_reaches_the_build_context(
    instructions: list[dict[str, Any]],
) -> None:
    copies = values(instructions, "COPY") + values(instructions, "ADD")
    assert copies
    for value in copies:
        args = [a for a in shlex.split(value) if not a.startswith("--")]
        *sources, _destination = args
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: no such path in the project"
            assert not ignored(source), f"COPY {source}: excluded by .dockerignore"
    copied = {s for v in copies for s in shlex.split(v) if not s.startswith("--")}
    assert {"pyproject.toml", "qa", "seeds"} <= copied


def test_index_is_built_at_image_build_time_as_the_service_user(
    instructions: list[dict[str, Any]],
) -> None:
    order = [(i["instruction"], str(i["value"]).strip()) for i in instructions]
    index = order.index(("RUN", "qa index"))
    install = next(
        n for n, (kind, v) in enumerate(order) if kind == "RUN" and "pip install --no-deps ." in v
    )
    user = max(n for n, (kind, _) in enumerate(order) if kind == "USER")
    assert install < index and user < index


def test_runs_as_non_root(instructions: list[dict[str, Any]]) -> None:
    users = values(instructions, "USER")
    assert users, "the image must set USER"
    final = users[-1].split(":")[0]
    assert final not in ("root", "0", "")


def test_exposes_8000_serves_on_all_interfaces_and_checks_health(
    instructions: list[dict[str, Any]],
) -> None:
    assert "8000" in " ".join(values(instructions, "EXPOSE")).split()
    [cmd] = values(instructions, "CMD")
    assert json.loads(cmd) == ["qa", "serve", "--host", "0.0.0.0"]
    [health] = values(instructions, "HEALTHCHECK")
    assert "CMD" in health and "python" in health  # the slim image has no curl
    assert "curl" not in health and "wget" not in health
    match = re.search(r"https?://127\.0\.0\.1:[^/]*(/\w+)", health)
    assert match, health
    path = match.group(1)
    assert path == "/healthz"
    assert path in create_app().openapi()["paths"], "the health-check path is served by the app"
    assert "'8000'" in health, "the health check defaults to the exposed port"


def test_dockerignore_keeps_local_state_out_of_the_image() -> None:
    for path in ("index", ".git", "test-artifacts", ".cache", "tests"):
        assert ignored(path), path
    for path in ("qa", "seeds", "pyproject.toml", "README.md", "requirements"):
        assert not ignored(path), path
