"""The naive peer: the same job done the obvious way, as a yardstick for the service.

A minimal FastAPI app that encodes each request on its own with
sentence-transformers (library defaults, including torch's thread count) and
searches the same FAISS vectors: no batching, no cache, no BM25, no quotes.
Run as ``python -m qa.bench.naive BUILD_FOLDER PORT``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel


class AskIn(BaseModel):
    """Module-level so FastAPI can resolve it as the request body."""

    question: str
    k: int = 5


def create_naive_app(build: Path) -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import faiss
    from fastapi import FastAPI
    from sentence_transformers import SentenceTransformer

    from qa.embedding import bundled_model_path

    model = SentenceTransformer(str(bundled_model_path()), device="cpu")
    index = faiss.read_index(str(build / "vectors.faiss"))
    with (build / "passages.jsonl").open(encoding="utf-8") as handle:
        passages = [json.loads(line) for line in handle]

    app = FastAPI()

    @app.post("/ask")
    def ask(body: AskIn) -> dict[str, Any]:
        vector = model.encode([body.question], normalize_embeddings=True)
        scores, ids = index.search(vector, body.k)
        hits = [
            {"id": passages[i]["id"], "text": passages[i]["text"], "score": float(s)}
            for s, i in zip(scores[0], ids[0], strict=True)
            if i >= 0
        ]
        return {"question": body.question, "passages": hits}

    return app


def main(argv: list[str]) -> None:
    import uvicorn

    build, port = Path(argv[0]), int(argv[1])
    uvicorn.run(create_naive_app(build), host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main(sys.argv[1:])
