"""Settings: overrides are validated like the environment, with one clear message."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qa.cli.app import app
from qa.config import Settings
from qa.errors import SettingsError
from tests.helpers import project_env, qa_command

RRF_K_ZERO = (
    "error: invalid setting rrf_k (QA_RRF_K): Input should be greater than or equal to 1, got 0"
)


def test_with_overrides_returns_a_validated_copy(clean_env: None) -> None:
    base = Settings()
    changed = base.with_overrides(rrf_k=7, cors_origins=["https://a.example"])
    assert (changed.rrf_k, changed.cors_origins) == (7, ["https://a.example"])
    assert (base.rrf_k, base.cors_origins) == (60, [])


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"rrf_k": 0},
            "invalid setting rrf_k (QA_RRF_K): Input should be greater than or equal to 1, got 0",
        ),
        (
            {"fusion": "max"},
            "invalid setting fusion (QA_FUSION): Input should be 'blend' or 'rrf', got max",
        ),
        (
            {"chunk_tokens": 8, "overlap": 9},
            "invalid setting chunk_tokens (QA_CHUNK_TOKENS): Input should be greater than or "
            "equal to 16, got 8; overlap (QA_OVERLAP): Input should be less than or equal to 8, "
            "got 9",
        ),
        (
            {"vector_store": "milvus://nowhere"},
            "invalid setting vector_store (QA_VECTOR_STORE): vector_store must be 'faiss', "
            "'milvus:///abs/path/file.db' or 'milvus://host:port', got milvus://nowhere",
        ),
        ({"fussion": "rrf"}, "unknown setting(s): fussion"),
    ],
)
def test_a_bad_override_is_refused(
    clean_env: None, values: dict[str, object], message: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings().with_overrides(**values)
    assert str(caught.value) == message


def test_from_env_validates_the_environment_and_the_overrides_alike(
    clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(SettingsError) as from_flag:
        Settings.from_env(rrf_k=0)
    monkeypatch.setenv("QA_RRF_K", "0")
    with pytest.raises(SettingsError) as from_env:
        Settings.from_env()
    assert str(from_flag.value) == str(from_env.value) == RRF_K_ZERO.removeprefix("error: ")
    assert Settings.from_env(rrf_k=5).rrf_k == 5  # a good flag overrides a bad variable


@pytest.mark.parametrize(
    ("flags", "env"),
    [(["--rrf-k", "0"], {}), ([], {"QA_RRF_K": "0"})],
    ids=["flag", "env"],
)
def test_eval_gives_one_line_for_a_bad_value_from_a_flag_or_a_variable(
    clean_env: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    flags: list[str],
    env: dict[str, str],
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["eval", *flags])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [RRF_K_ZERO]
    assert result.stdout == ""


def test_eval_fusion_flag_is_checked_by_the_settings(
    clean_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["eval", "--fusion", "max"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: invalid setting fusion (QA_FUSION): Input should be 'blend' or 'rrf', got max"
    ]


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["ask", "hello", "--retriever", "sparse"], {}),
        (["ask", "hello"], {"QA_RETRIEVER": "sparse"}),
    ],
    ids=["flag", "env"],
)
def test_the_installed_command_prints_one_line_and_exits_2(
    tmp_path: Path, args: list[str], env: dict[str, str]
) -> None:
    done = subprocess.run(
        [*qa_command(), *args],
        capture_output=True,
        text=True,
        env=project_env(tmp_path, **env),
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "error: invalid setting retriever (QA_RETRIEVER): "
        "Input should be 'dense', 'bm25' or 'hybrid', got sparse"
    ]
