"""Issue 8 demo: ingest >= 10,000 documents into Milvus Lite, crash halfway, resume.

Writes SciFact abstracts (split in two halves, so 5,183 abstracts give 10,366
documents) as separate files, then, each step in its own process so peak memory
is measured per step:

1. ``build``: start a full build, SIGKILL it once ~5,000 documents are embedded;
2. ``build``: run again — it must embed only the remaining documents (resume);
3. ``query``: load the index like a replica and time 100 SciFact claims;
4. add one document and time the incremental update.

Usage: python scripts/milvus_scale_demo.py WORKDIR [--kill-at 5000] > report.json
Progress goes to stderr; a JSON report to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

CORPUS = Path("/work/shared/benchmarks/scifact/corpus.jsonl")
QUERIES = Path("/work/shared/benchmarks/scifact/queries.jsonl")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(])")


def write_collection(seeds: Path) -> int:
    """Each abstract as two documents: its first and second half of sentences."""
    seeds.mkdir(parents=True, exist_ok=True)
    count = 0
    with CORPUS.open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            sentences = _SENTENCE_END.split(record["text"].strip())
            half = max(1, len(sentences) // 2)
            title = " ".join(record["title"].split())[:80].rstrip(" .")
            title = title or f"SciFact {record['_id']}"
            for part, chunk in ((1, sentences[:half]), (2, sentences[half:])):
                body = " ".join(chunk).strip()
                if not body:
                    continue
                path = seeds / f"scifact-{record['_id']}-{part}.txt"
                path.write_text(f"{title} (part {part})\n\n{body}\n", encoding="utf-8")
                count += 1
    return count


def env(workdir: Path, store: str, embedder: str) -> dict[str, str]:
    return {
        **os.environ,
        "QA_SEEDS_DIR": str(workdir / "seeds"),
        "QA_INDEX_DIR": str(workdir / "index"),
        "QA_VECTOR_STORE": store,
        "QA_AUTO_REBUILD": "false",
        "HF_HUB_OFFLINE": "1",
        "DEMO_EMBEDDER": embedder,
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
    }


# "fake": the tests' hashed bag-of-words embedder at 384 dimensions, to measure the
# ingestion pipeline (Milvus writes, checkpoints, memory) without the model's CPU time.
EMBEDDER = """
import os
def make_embedder(settings):
    if os.environ.get("DEMO_EMBEDDER") == "fake":
        from tests.helpers import FakeEmbedder
        return FakeEmbedder(dim=384, max_seq_length=256)
    from qa.service import load_embedder
    return load_embedder(settings)
"""


BUILD = (
    EMBEDDER
    + """
import json, sys, time
from qa.config import Settings
from qa.indexing import build_index
settings = Settings()
embedder = make_embedder(settings)
force = sys.argv[1:] == ["--force"]
def progress(stage, done, total):
    print(json.dumps({"stage": stage, "done": done, "total": total}), flush=True)
summary = build_index(settings, embedder, progress, force=force)
print(json.dumps({"summary": {"documents": summary.documents, "passages": summary.passages,
    "embedded": summary.embedded, "added": summary.added, "seconds": summary.seconds}}), flush=True)
"""
)

QUERY = (
    EMBEDDER
    + """
import json, statistics, time
from qa.config import Settings
from qa.service import QAService
settings = Settings()
embedder = make_embedder(settings)
started = time.perf_counter()
service = QAService.open(settings, embedder, rebuild=False)
load_s = time.perf_counter() - started
claims = [json.loads(l)["text"] for l in open(QUERIES_PATH, encoding="utf-8")][:100]
service.ask(claims[0])  # warm-up
times = []
for claim in claims:
    t = time.perf_counter()
    service.ask(claim, k=5)
    times.append((time.perf_counter() - t) * 1000)
times.sort()
print(json.dumps({"load_s": load_s, "passages": len(service.snapshot.passages),
    "documents": len(service.snapshot.documents), "queries": len(times),
    "p50_ms": times[len(times) // 2], "p95_ms": times[int(len(times) * 0.95) - 1],
    "mean_ms": statistics.mean(times)}), flush=True)
""".replace("QUERIES_PATH", repr(str(QUERIES)))
)


def run(
    code: str, args: argparse.Namespace, kill_at: int | None = None, force: bool = False
) -> dict[str, object]:
    """Run a step in a child process; return its last JSON line, time and peak RSS."""
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-c", code, *(["--force"] if force else [])],
        env=env(args.workdir, args.uri, args.embedder),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    last: dict[str, object] = {}
    killed = False
    for line in child.stdout:
        try:
            last = json.loads(line)
        except ValueError:
            continue
        if "stage" in last:
            done = int(str(last["done"]))
            if done in (0, last["total"]) or done % 640 == 0:
                print(f"  {last}", file=sys.stderr, flush=True)
            if kill_at is not None and last["stage"] == "embedding documents" and done >= kill_at:
                child.send_signal(signal.SIGKILL)
                killed = True
                break
    _, status, usage = os.wait4(child.pid, 0)
    return {
        "result": last,
        "seconds": round(time.perf_counter() - started, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "killed": killed,
        "exit_status": status,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--kill-at", type=int, default=5000)
    parser.add_argument("--store", choices=["milvus", "faiss"], default="milvus")
    parser.add_argument("--embedder", choices=["real", "fake"], default="real")
    parser.add_argument("--full-rebuild", action="store_true", help="also time `--force`")
    parser.add_argument(
        "--server", type=int, default=0, help="run Milvus Lite as a server on this port"
    )
    args = parser.parse_args()
    args.workdir = workdir = args.workdir.resolve()
    server = None
    if args.store == "faiss":
        args.uri = "faiss"
    elif args.server:
        # Milvus in its own process: the build's memory is then the client's alone.
        data = str(workdir / "milvus.db")
        command = ["-m", "milvus_lite", "server", "--data-dir", data, "--host", "127.0.0.1"]
        server = subprocess.Popen(
            [sys.executable, *command, "--port", str(args.server)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(5)
        args.uri = f"milvus://127.0.0.1:{args.server}"
    else:
        args.uri = f"milvus://{workdir / 'milvus.db'}"
    report: dict[str, object] = {"store": args.store, "embedder": args.embedder}
    count = write_collection(workdir / "seeds")
    report["documents"] = count
    print(f"wrote {count} documents", file=sys.stderr, flush=True)
    print(f"step 1: full build, killed after ~{args.kill_at} documents", file=sys.stderr)
    report["build_killed"] = run(BUILD, args, kill_at=args.kill_at)
    print(json.dumps(report["build_killed"]), file=sys.stderr, flush=True)
    print("step 2: resume", file=sys.stderr)
    report["build_resumed"] = run(BUILD, args)
    print(json.dumps(report["build_resumed"]), file=sys.stderr, flush=True)
    print("step 3: queries", file=sys.stderr)
    report["query"] = run(QUERY, args)
    print(json.dumps(report["query"]), file=sys.stderr, flush=True)
    print("step 4: add one document", file=sys.stderr)
    extra = workdir / "seeds" / "zz-added-document.txt"
    extra.write_text(
        "An added document\n\nVitamin D supplementation was studied in a new trial. "
        "It did not reduce the incidence of fractures in older adults.\n",
        encoding="utf-8",
    )
    report["add_one"] = run(BUILD, args)
    print(json.dumps(report["add_one"]), file=sys.stderr, flush=True)
    if args.full_rebuild:
        print("step 5: full rebuild (--force)", file=sys.stderr)
        report["full_rebuild"] = run(BUILD, args, force=True)
        print(json.dumps(report["full_rebuild"]), file=sys.stderr, flush=True)
    if server is not None:
        server.send_signal(signal.SIGTERM)
        _, _, usage = os.wait4(server.pid, 0)
        report["milvus_server_peak_rss_mb"] = round(usage.ru_maxrss / 1024, 1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
