"""Same sub-corpus, two dense protocols: MTEB (title + ' ' + text, truncated at 256
word pieces) vs the service's max over 120-token passages (cached vectors)."""

import random
import time
from pathlib import Path

import numpy as np

from qa.config import Settings
from qa.evaluation.beir import load_beir, score_runs
from qa.service import load_embedder

t = time.time()
data = load_beir(Path("/work/shared/benchmarks/scifact"))
folder = next(Path(".cache/qa/beir").glob("scifact-*"))  # the 120/1 passages of the full run
spans, vecs = np.load(folder / "spans.npy"), np.load(folder / "vectors.npy")
judged = sorted({data.ids.index(d) for q in data.qrels.values() for d in q})
rng = random.Random(0)
others = rng.sample([i for i in range(len(data.ids)) if i not in set(judged)], 700)
subset = sorted(set(judged) | set(others))
emb = load_embedder(Settings())
qids = list(data.queries)
qv = emb.encode([data.queries[q] for q in qids])
docv = emb.encode([(data.titles[i] + " " + data.texts[i]).strip() for i in subset], batch_size=32)
print("embedded", len(subset), "docs in", time.time() - t, flush=True)


def run_from(doc_scores):  # doc_scores: [queries, len(subset)]
    out = {}
    for qi, q in enumerate(qids):
        order = np.argsort(-doc_scores[qi])[:1000]
        out[q] = {data.ids[subset[j]]: float(1000 - r) for r, j in enumerate(order)}
    return out


mteb = qv @ docv.T
pos = {d: j for j, d in enumerate(subset)}
mask = np.array([d in pos for d in spans[:, 0]])
ps, pv = spans[mask], vecs[mask]
sim = qv @ pv.T
maxp = np.full((len(qids), len(subset)), -np.inf, dtype=np.float32)
cols = np.array([pos[d] for d in ps[:, 0]])
for j in range(len(cols)):
    maxp[:, cols[j]] = np.maximum(maxp[:, cols[j]], sim[:, j])
print("MTEB truncation:", score_runs(data.qrels, run_from(mteb)))
print("MaxP 120/1    :", score_runs(data.qrels, run_from(maxp)))
print("seconds", time.time() - t)
