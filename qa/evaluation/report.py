"""Reports on disk: Markdown for people, JSON for machines, PNG charts for a glance.

matplotlib runs on its Agg backend, so reports can be written without a display.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from qa.evaluation.beir import METRICS, BeirResult
from qa.evaluation.metrics import HIT_KS
from qa.evaluation.runner import EvalResult, Outcome
from qa.evaluation.sweep import SweepRow

REPORT_MD = "report.md"
REPORT_JSON = "report.json"
HITK_PNG = "hitk.png"
BEIR_MD = "beir.md"
BEIR_JSON = "beir.json"
SWEEP_MD = "sweep.md"
SWEEP_JSON = "sweep.json"
SWEEP_PNG = "sweep.png"

# Metric rows of the terminal and Markdown tables: (key of RetrieverMetrics.flat(), label).
ROWS: tuple[tuple[str, str], ...] = (
    *((f"hit@{k}", f"Hit@{k}") for k in HIT_KS),
    ("mrr", "MRR@10"),
    ("ndcg", "nDCG@10"),
    ("quote_accuracy", "Quote accuracy"),
    ("latency_mean_ms", "Latency mean (ms)"),
    ("latency_p95_ms", "Latency p95 (ms)"),
    ("abstention_rate", "Abstention (unanswerable)"),
    ("wrongly_abstained", "Wrongly abstained (answerable)"),
)


def fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def metric_rows(result: EvalResult) -> list[tuple[str, list[str]]]:
    """(label, one cell per retriever) for every metric, shared by terminal and Markdown."""
    names = list(result.metrics)
    flat = {n: result.metrics[n].flat() for n in names}
    return [
        (label, [fmt(flat[n].get(key)) for n in names])
        for key, label in ROWS
        if any(key in flat[n] for n in names)
    ]


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"

    return [line(header), line(["---"] * len(header)), *(line(r) for r in rows)]


def _excerpt(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _failure(o: Outcome) -> list[str]:
    where = "none in the top k" if o.first_rank is None else f"rank {o.first_rank}"
    lines = [f"#### `{o.id}` — {o.question}", ""]
    if o.answerable:
        lines += ["- expected evidence: " + "; ".join(f"“{e}”" for e in o.evidence)]
        lines += [f"- first answering passage: {where}"]
    else:
        lines += ["- expected: no answer (unanswerable), but the service answered"]
    if o.top is not None:
        lines += [
            f"- ranked first: **{o.top.label}** (chars {o.top.start}–{o.top.end}, "
            f"score {o.top.score:.4f}): {_excerpt(o.top.text)}"
        ]
    else:
        lines += ["- ranked first: nothing"]
    return [*lines, ""]


def hitk_chart(result: EvalResult, path: Path) -> Path:
    """Hit@k against k, one line per retriever."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for name, m in result.metrics.items():
        ks = sorted(m.hit_at)
        ax.plot(ks, [m.hit_at[k] for k in ks], marker="o", label=name)
    ax.set_xlabel("k")
    ax.set_ylabel("Hit@k")
    ax.set_ylim(0, 1.02)
    ax.set_xticks(list(HIT_KS))
    ax.grid(alpha=0.3)
    ax.legend()
    answerable = max((m.answerable for m in result.metrics.values()), default=0)
    ax.set_title(f"Hit@k on {answerable} answerable questions")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_report(result: EvalResult, folder: Path, source: str = "") -> list[Path]:
    """report.md, report.json and hitk.png in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    names = list(result.metrics)
    config = ", ".join(f"{k}={v}" for k, v in result.config.items())
    md = [
        "# Retrieval evaluation",
        "",
        f"Questions: `{source}`" if source else "",
        "",
        f"Settings: {config}",
        "",
        *_table(["metric", *names], [[label, *cells] for label, cells in metric_rows(result)]),
        "",
        f"![Hit@k]({HITK_PNG})",
        "",
        "A passage answers a question when it covers at least half of the characters of "
        "one evidence string. A question fails when its top-ranked passage does not answer "
        "it (or, for an unanswerable question, when the service did not abstain).",
        "",
        "## Failed questions",
        "",
    ]
    for name in names:
        failures = result.failures(name)
        md += [f"### {name} ({len(failures)} failed)", ""]
        for o in failures:
            md += _failure(o)
    paths = [folder / REPORT_MD, folder / REPORT_JSON, folder / HITK_PNG]
    paths[0].write_text("\n".join(md) + "\n", encoding="utf-8")
    paths[1].write_text(json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n")
    hitk_chart(result, paths[2])
    return paths


def write_beir_report(result: BeirResult, folder: Path) -> list[Path]:
    """beir.md and beir.json in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [[name, *(f"{m[k]:.4f}" for k in METRICS)] for name, m in result.metrics.items()]
    timing = ", ".join(f"{k} {v:.1f}s" for k, v in result.seconds.items())
    md = [
        f"# BEIR {result.config.get('benchmark', '')}",
        "",
        "Settings: " + ", ".join(f"{k}={v}" for k, v in result.config.items()),
        "",
        *_table(["retriever", *METRICS], rows),
        "",
        f"Time: {timing}",
    ]
    paths = [folder / BEIR_MD, folder / BEIR_JSON]
    paths[0].write_text("\n".join(md) + "\n", encoding="utf-8")
    paths[1].write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    return paths


SWEEP_COLUMNS = (
    "chunk_tokens",
    "overlap",
    "retriever",
    "fusion",
    "rrf_k",
    "dense_weight",
    "bm25_weight",
    "passages",
    "hit@1",
    "hit@5",
    "mrr",
    "ndcg",
    "quote_accuracy",
    "latency_mean_ms",
)


def sweep_chart(rows: Sequence[SweepRow], path: Path, metric: str = "ndcg") -> Path:
    """``metric`` against chunk size: one line per retriever × overlap (best fusion for hybrid)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines: dict[tuple[str, int], dict[int, float]] = {}
    for r in rows:
        value = float(r.metrics.flat()[metric])
        points = lines.setdefault((r.retriever, r.overlap), {})
        points[r.chunk_tokens] = max(value, points.get(r.chunk_tokens, float("-inf")))
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    styles = {"dense": "o-", "bm25": "s--", "hybrid": "^-."}
    for (name, overlap), points in sorted(lines.items()):
        xs = sorted(points)
        ax.plot(
            xs, [points[x] for x in xs], styles.get(name, "o-"), label=f"{name}, overlap {overlap}"
        )
    ax.set_xlabel("chunk_tokens")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    ax.set_title(f"{metric} by chunk size (hybrid: best fusion setting)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_sweep_report(rows: Sequence[SweepRow], folder: Path, metric: str = "ndcg") -> list[Path]:
    """sweep.md (sorted by ``metric``), sweep.json and sweep.png in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    records = [r.flat() for r in rows]
    ordered = sorted(records, key=lambda r: -float(r[metric]))
    extra = sorted({key for r in rows for key in r.options})
    columns = [*extra, *SWEEP_COLUMNS]
    md = [
        "# Sweep over chunking and fusion",
        "",
        f"Sorted by {metric}, best first. Fusion columns apply to hybrid only.",
        "",
        *_table(columns, [[fmt(r.get(c)) for c in columns] for r in ordered]),
        "",
        f"![{metric} by chunk size]({SWEEP_PNG})",
    ]
    paths = [folder / SWEEP_MD, folder / SWEEP_JSON, folder / SWEEP_PNG]
    paths[0].write_text("\n".join(md) + "\n", encoding="utf-8")
    paths[1].write_text(json.dumps(records, indent=2) + "\n", encoding="utf-8")
    sweep_chart(rows, paths[2], metric)
    return paths
