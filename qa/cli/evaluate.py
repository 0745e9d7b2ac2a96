"""`qa eval`: measure retrieval on labelled questions, a BEIR benchmark, or a grid of settings."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from qa.cli.common import fail, progress_bar, settings_with, stderr, stdout
from qa.config import RETRIEVERS, Settings

if TYPE_CHECKING:
    from qa.evaluation.beir import BeirResult
    from qa.evaluation.runner import EvalResult
    from qa.evaluation.sweep import SweepGrid, SweepRow


def _retrievers(names: list[str] | None) -> list[str]:
    chosen: list[str] = list(dict.fromkeys(names)) if names else list(RETRIEVERS)
    for name in chosen:
        if name not in RETRIEVERS:
            fail(f"retriever must be one of {', '.join(RETRIEVERS)}, got {name!r}")
    return chosen


def _weights(values: list[str]) -> tuple[tuple[float, float], ...]:
    pairs = []
    for value in values:
        try:
            dense, bm25 = (float(x) for x in value.split(":"))
        except ValueError:
            fail(f"--sweep-weights takes DENSE:BM25 (e.g. 1:0.5), got {value!r}")
        pairs.append((dense, bm25))
    return tuple(pairs)


def evaluate(
    questions: Annotated[
        Path | None,
        typer.Argument(
            help="Questions (JSON lines); default: QA_QUESTIONS_PATH.", show_default=False
        ),
    ] = None,
    retriever: Annotated[
        list[str] | None,
        typer.Option(
            "--retriever", "-r", help="Retriever to evaluate; repeat to compare (default: all)."
        ),
    ] = None,
    k: Annotated[int, typer.Option("-k", "--k", help="Passages retrieved per question.")] = 10,
    chunk_tokens: Annotated[
        int | None, typer.Option(help="Evaluate another passage budget (in memory).")
    ] = None,
    overlap: Annotated[
        int | None, typer.Option(help="Evaluate another sentence overlap (in memory).")
    ] = None,
    fusion: Annotated[
        str | None, typer.Option(help="Hybrid fusion: 'blend' (z-scores) or 'rrf'.")
    ] = None,
    rrf_k: Annotated[int | None, typer.Option(help="RRF constant for hybrid.")] = None,
    dense_weight: Annotated[float | None, typer.Option(help="Dense weight for hybrid.")] = None,
    bm25_weight: Annotated[float | None, typer.Option(help="BM25 weight for hybrid.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
    report: Annotated[
        Path | None, typer.Option(help="Write report.md, report.json and charts into DIR.")
    ] = None,
    beir: Annotated[
        Path | None,
        typer.Option(help="Evaluate a BEIR folder (corpus.jsonl, queries.jsonl, qrels/)."),
    ] = None,
    sweep: Annotated[
        bool, typer.Option("--sweep", help="Evaluate a grid of chunking and fusion settings.")
    ] = False,
    sweep_chunk_tokens: Annotated[
        list[int] | None, typer.Option(help="Sweep: chunk budgets (repeat).")
    ] = None,
    sweep_overlap: Annotated[
        list[int] | None, typer.Option(help="Sweep: overlaps (repeat).")
    ] = None,
    sweep_fusion: Annotated[
        list[str] | None, typer.Option(help="Sweep: hybrid fusions, blend and/or rrf (repeat).")
    ] = None,
    sweep_rrf_k: Annotated[
        list[int] | None, typer.Option(help="Sweep: RRF constants (repeat).")
    ] = None,
    sweep_weights: Annotated[
        list[str] | None, typer.Option(help="Sweep: DENSE:BM25 weight pairs (repeat).")
    ] = None,
    no_rebuild: Annotated[
        bool, typer.Option("--no-rebuild", help="Fail instead of rebuilding a stale index.")
    ] = False,
    calibrate: Annotated[
        bool,
        typer.Option("--calibrate", help="Also suggest an abstention threshold from the labels."),
    ] = False,
) -> None:
    """Measure retrieval quality: Hit@k, MRR, nDCG, quote accuracy, latency, abstention."""
    from qa.errors import QAError

    names = _retrievers(retriever)
    try:
        settings = settings_with(
            fusion=fusion, rrf_k=rrf_k, dense_weight=dense_weight, bm25_weight=bm25_weight
        )
        if not 1 <= k <= settings.max_k:
            fail(f"k must be between 1 and {settings.max_k}, got {k}")
        if beir is not None:
            _beir(settings, beir, names, chunk_tokens, overlap, as_json, report)
        elif sweep:
            from qa.evaluation.sweep import SweepGrid

            defaults = SweepGrid()
            grid = SweepGrid(
                chunk_tokens=tuple(sweep_chunk_tokens or defaults.chunk_tokens),
                overlap=tuple(sweep_overlap or defaults.overlap),
                fusion=tuple(sweep_fusion or (settings.fusion,)),
                rrf_k=tuple(sweep_rrf_k or (settings.rrf_k,)),
                weights=_weights(sweep_weights)
                if sweep_weights
                else ((settings.dense_weight, settings.bm25_weight),),
                retrievers=tuple(names),
            )
            _sweep(settings, questions, grid, k, as_json, report)
        else:
            _questions(
                settings,
                questions,
                names,
                k,
                chunk_tokens,
                overlap,
                no_rebuild,
                as_json,
                report,
                calibrate,
            )
    except QAError as exc:
        fail(str(exc))


def _questions(
    settings: Settings,
    path: Path | None,
    names: list[str],
    k: int,
    chunk_tokens: int | None,
    overlap: int | None,
    no_rebuild: bool,
    as_json: bool,
    report: Path | None,
    calibrate: bool = False,
) -> None:
    from qa.evaluation.calibrate import calibrate as calibrate_threshold
    from qa.evaluation.labels import load_questions, locate
    from qa.evaluation.runner import evaluate_questions, variant_service
    from qa.indexing.seeds import load_documents
    from qa.service import QAService, load_embedder

    source = path or settings.questions_path
    questions = load_questions(source)
    documents = load_documents(settings.seeds_dir, settings.project_root)
    locate(questions, {d.doc_id: d.text for d in documents})  # bad labels fail before the model
    with progress_bar() as progress:
        if chunk_tokens is not None or overlap is not None:
            service = variant_service(
                settings,
                load_embedder(settings),
                documents,
                chunk_tokens,
                overlap,
                progress=progress,
            )
        else:
            service = QAService.open(
                settings,
                rebuild=not no_rebuild and settings.auto_rebuild,
                notice=lambda message: stderr.print(escape(message)),
                progress=progress,
            )
        result = evaluate_questions(service, questions, names, k, progress=progress)
        calibration = calibrate_threshold(service, questions) if calibrate else None
    written = _write_report(result, report, str(source)) if report else []
    if as_json:
        data = result.to_dict()
        if calibration is not None:
            data["calibration"] = asdict(calibration)
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return
    _print_result(result)
    if calibration is not None:
        c = calibration
        stdout.print(
            f"abstention threshold: {service.options.abstain_threshold:g} in use; "
            f"calibrated {c.threshold:g} ({c.abstained_unanswerable}/{c.unanswerable} "
            f"unanswerable abstain, {c.wrongly_abstained}/{c.answerable} answerable "
            f"wrongly abstain; best cosine of unanswerable <= {c.highest_unanswerable or 0:.3f}, "
            f"of answerable >= {c.lowest_answerable or 0:.3f})"
        )
    for p in written:
        stderr.print(f"wrote {p}")


def _write_report(result: EvalResult, folder: Path, source: str) -> list[Path]:
    from qa.evaluation.report import write_report

    return write_report(result, folder, source)


def _print_result(result: EvalResult) -> None:
    from qa.evaluation.report import metric_rows

    c = result.config
    table = Table(
        title=f"{c['documents']} documents, {c['passages']} passages "
        f"(chunk_tokens={c['chunk_tokens']}, overlap={c['overlap']}, k={c['k']})"
    )
    table.add_column("metric")
    for name in result.metrics:
        table.add_column(name, justify="right")
    for label, cells in metric_rows(result):
        table.add_row(label, *cells)
    stdout.print(table)
    for name in result.metrics:
        failed = [o.id for o in result.failures(name)]
        if failed:
            stdout.print(f"[dim]{name}: not first for {', '.join(failed)}[/dim]")


def _beir(
    settings: Settings,
    folder: Path,
    names: list[str],
    chunk_tokens: int | None,
    overlap: int | None,
    as_json: bool,
    report: Path | None,
) -> None:
    from qa.evaluation.beir import METRICS, run_beir
    from qa.evaluation.report import write_beir_report
    from qa.service import load_embedder

    if not folder.is_dir():
        fail(f"BEIR folder {folder} does not exist")
    chosen = settings.with_overrides(
        **{
            key: value
            for key, value in (("chunk_tokens", chunk_tokens), ("overlap", overlap))
            if value is not None
        }
    )
    embedder = load_embedder(chosen)
    with progress_bar() as progress:
        result: BeirResult = run_beir(folder, chosen, embedder, names, progress)
    written = write_beir_report(result, report) if report else []
    if as_json:
        print(json.dumps(result.to_dict(), indent=2))
        return
    c = result.config
    table = Table(
        title=f"BEIR {c['benchmark']}: {c['documents']} documents, {c['passages']} passages, "
        f"{c['queries']} queries (chunk_tokens={c['chunk_tokens']}, overlap={c['overlap']})"
    )
    table.add_column("retriever")
    for metric in METRICS:
        table.add_column(metric, justify="right")
    for name, values in result.metrics.items():
        table.add_row(name, *(f"{values[m]:.4f}" for m in METRICS))
    stdout.print(table)
    cached = "cached embeddings" if c["cached_embeddings"] else "embeddings computed and cached"
    total = sum(result.seconds.values())
    stdout.print(f"[dim]{total:.1f}s ({cached})[/dim]")
    for p in written:
        stderr.print(f"wrote {p}")


def _sweep(
    settings: Settings,
    path: Path | None,
    grid: SweepGrid,
    k: int,
    as_json: bool,
    report: Path | None,
) -> None:
    from qa.evaluation.labels import load_questions
    from qa.evaluation.report import SWEEP_COLUMNS, fmt, write_sweep_report
    from qa.evaluation.sweep import sweep
    from qa.indexing.seeds import load_documents
    from qa.service import load_embedder

    questions = load_questions(path or settings.questions_path)
    documents = load_documents(settings.seeds_dir, settings.project_root)
    embedder = load_embedder(settings)
    with progress_bar() as progress:
        rows: list[SweepRow] = sweep(
            documents, embedder, questions, grid, settings, k, progress=progress
        )
    written = write_sweep_report(rows, report) if report else []
    if as_json:
        print(json.dumps([r.flat() for r in rows], indent=2))
        return
    table = Table(title=f"Sweep: {len(rows)} settings")
    for column in SWEEP_COLUMNS:
        table.add_column(column, justify="right")
    records: list[dict[str, Any]] = sorted((r.flat() for r in rows), key=lambda r: -r["ndcg"])
    for record in records:
        table.add_row(*(fmt(record[c]) for c in SWEEP_COLUMNS))
    stdout.print(table)
    for p in written:
        stderr.print(f"wrote {p}")
