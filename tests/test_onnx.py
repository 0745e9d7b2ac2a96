"""The optional int8 ONNX Runtime encoder: same model, close vectors, its own weights hash."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qa.embedding import Embedder, SentenceTransformerEmbedder

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


@pytest.mark.slow
def test_onnx_int8_encoder_matches_pytorch(embedder: Embedder, tmp_path: Path) -> None:
    from qa.embedding_onnx import OnnxEmbedder

    assert isinstance(embedder, SentenceTransformerEmbedder)
    onnx = OnnxEmbedder(cache_dir=tmp_path, base=embedder)
    texts = ["Is the Sino-Russian relationship an alliance?", "What role does energy play?"]
    got, want = onnx.encode(texts, batch_size=1), embedder.encode(texts)
    assert got.shape == want.shape and got.dtype == np.float32
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert (got * want).sum(axis=1).min() > 0.9  # int8 moves vectors a little, not far
    # Dynamic int8 quantises activations per batch, so batch-mates nudge a vector a little.
    assert (onnx.encode(texts, batch_size=8) * got).sum(axis=1).min() > 0.98
    assert onnx.model_id == embedder.model_id
    assert onnx.weights_hash != embedder.weights_hash  # switching backend rebuilds the index
    assert len(list(tmp_path.rglob("model.int8.onnx"))) == 1
