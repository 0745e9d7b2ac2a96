"""`qa bench`: floor vs naive peer vs service, cold start, cache, and scaling by N."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from qa.cli.common import fail, settings_with, stderr, stdout


def _sizes(text: str) -> list[int]:
    try:
        return [int(float(part)) for part in text.split(",") if part.strip()]
    except ValueError:
        fail(f"expected comma-separated numbers such as 1e3,1e4, got {text!r}")


def bench(
    out: Annotated[Path, typer.Option(help="Folder for bench.json, bench.md and charts.")] = Path(
        "bench/results"
    ),
    concurrency: Annotated[str, typer.Option(help="Client counts to drive.")] = "1,8,32,64",
    scaling: Annotated[
        str,
        typer.Option(help="Corpus sizes for the scaling run; add 1e6 by hand (takes minutes)."),
    ] = "1e3,1e4,1e5",
    rounds: Annotated[int, typer.Option(min=1, help="Interleaved single-client rounds.")] = 3,
    requests: Annotated[int, typer.Option(min=5, help="Single-client requests per round.")] = 60,
    cold_starts: Annotated[int, typer.Option(min=1, help="Cold starts to time.")] = 2,
    no_http: Annotated[bool, typer.Option("--no-http", help="Only the scaling run.")] = False,
    torch_threads: Annotated[
        int | None, typer.Option(help="torch threads for floor and service (QA_TORCH_THREADS).")
    ] = None,
    render: Annotated[
        bool,
        typer.Option(
            "--render", help="Measure nothing: rewrite tables and charts from bench.json."
        ),
    ] = False,
    add_scaling: Annotated[
        Path | None,
        typer.Option(help="Merge the scaling rows of an earlier bench.json (e.g. the 1e6 run)."),
    ] = None,
) -> None:
    """Measure the service against the floor and a naive peer; write tables and charts."""
    import datetime
    import os
    import platform

    from qa.bench import report
    from qa.bench.run import BenchConfig, run_http, run_scaling

    settings = settings_with(torch_threads=torch_threads)
    config = BenchConfig(
        out=out,
        questions_path=settings.questions_path,
        seeds_dir=settings.seeds_dir,
        concurrency=_sizes(concurrency),
        single_requests=requests,
        rounds=rounds,
        cold_starts=cold_starts,
        scaling=_sizes(scaling),
        http=not no_http,
        torch_threads=settings.torch_threads,
    )
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}",
        "torch_threads": settings.torch_threads,
    }

    def log(message: str) -> None:
        stderr.print(message, markup=False, highlight=False)

    import json

    if render:
        results = json.loads((out / "bench.json").read_text(encoding="utf-8"))
        rows: list[dict[str, Any]] = list(results.get("scaling", []))
    else:
        if config.http:
            results["http"] = run_http(config, settings, log)
        rows = run_scaling(config, settings, log) if config.scaling else []
    if add_scaling is not None:
        added = json.loads(add_scaling.read_text(encoding="utf-8")).get("scaling", [])
        sizes = {row["passages"] for row in added}  # the added run wins for its sizes
        rows = [row for row in rows if row["passages"] not in sizes] + added
    if rows:
        results["scaling"] = sorted(rows, key=lambda row: int(row["passages"]))
    for path in report.write(results, out):
        stdout.print(f"wrote {path}")
