"""An optional ONNX Runtime encoder: the same model, exported once and quantised to int8.

Chosen with ``QA_ENCODER_BACKEND=onnx``. On the labelled questions it keeps
Hit@5 of the hybrid retriever equal to the PyTorch encoder while encoding a
question 3-4x faster on this CPU (see README, Performance). Its vectors differ
slightly from PyTorch's, so it reports its own weights hash: switching backend
marks the index stale and rebuilds it with the same encoder as the questions.

The export needs PyTorch once; the exported files are cached under
``cache_dir/onnx/<weights hash>/`` and reused.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from qa.embedding import SentenceTransformerEmbedder, Vectors
from qa.errors import ModelLoadError

INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def export_int8(base: SentenceTransformerEmbedder, folder: Path) -> Path:
    """Export the transformer of ``base`` to ONNX, quantise it to int8; return the int8 path."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "model.int8.onnx"
    if target.is_file():
        return target
    model: Any = base._model
    transformer = model[0].auto_model.eval()

    class Hidden(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, ids: Any, mask: Any, types: Any) -> Any:
            return self.inner(input_ids=ids, attention_mask=mask, token_type_ids=types)[0]

    sample = base._tokenizer(
        ["a question", "another longer question"], padding=True, return_tensors="pt"
    )
    fp32 = folder / f".model.{os.getpid()}.onnx"
    axes = {name: {0: "batch", 1: "tokens"} for name in (*INPUTS, "hidden")}
    with torch.no_grad():
        torch.onnx.export(
            Hidden(transformer),
            tuple(sample[name] for name in INPUTS),
            str(fp32),
            input_names=list(INPUTS),
            output_names=["hidden"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    partial = folder / f".model.int8.{os.getpid()}.onnx"
    quantize_dynamic(str(fp32), str(partial), weight_type=QuantType.QInt8)
    partial.replace(target)  # atomic: a concurrent reader sees all or nothing
    fp32.unlink(missing_ok=True)
    return target


class OnnxEmbedder:
    """The bundled model (or ``QA_MODEL``) run by ONNX Runtime with int8 weights."""

    def __init__(
        self,
        model: str = "",
        threads: int = 0,
        cache_dir: Path = Path(".cache/qa"),
        base: SentenceTransformerEmbedder | None = None,
    ) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise ModelLoadError(
                "QA_ENCODER_BACKEND=onnx needs onnxruntime and onnx: pip install 'qa-cite[onnx]'"
            ) from exc
        self._base = base or SentenceTransformerEmbedder(model, threads)
        key = hashlib.sha256(f"{self._base.weights_hash}:onnx-int8".encode()).hexdigest()
        self._weights = key
        path = export_int8(self._base, cache_dir / "onnx" / key[:16])
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads if threads > 0 else (os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        # One tokenizer, used by whichever thread encodes (a reload builds with the model
        # that serves questions); a fast tokenizer used by two threads at once fails.
        self._tokenizing = threading.Lock()

    @property
    def model_id(self) -> str:
        return self._base.model_id

    @property
    def weights_hash(self) -> str:
        return self._weights

    @property
    def dim(self) -> int:
        return self._base.dim

    @property
    def max_seq_length(self) -> int:
        return self._base.max_seq_length

    def count_tokens(self, text: str) -> int:
        with self._tokenizing:
            return self._base.count_tokens(text)

    def encode(self, texts: list[str], batch_size: int = 32) -> Vectors:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for begin in range(0, len(texts), max(batch_size, 1)):
            chunk = texts[begin : begin + batch_size]
            with self._tokenizing:
                tokens = self._base._tokenizer(
                    chunk,
                    padding=True,
                    truncation=True,
                    max_length=self.max_seq_length,
                    return_tensors="np",
                )
            feeds = {name: tokens[name].astype(np.int64) for name in INPUTS}
            hidden = self._session.run(None, feeds)[0]
            mask = tokens["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
            pooled /= np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
            out[begin : begin + len(chunk)] = pooled
        return out
