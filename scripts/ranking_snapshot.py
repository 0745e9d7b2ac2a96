"""Record, or compare, what every retriever returns for the labelled questions.

A refactor that should not change results proves it with two snapshots:

    python scripts/ranking_snapshot.py dump before.json      # on the old code
    python scripts/ranking_snapshot.py dump after.json       # on the new code
    python scripts/ranking_snapshot.py compare before.json after.json

``dump`` builds the seeds into a temporary index with the real model and the default
settings (``QA_*`` variables still apply), then records for each question and each
retriever the top 10: passage ids, scores, quotes and explain fields, plus the
confidence and the abstention decision. ``compare`` exits 1 on any difference beyond
1e-6 in a score.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RETRIEVERS = ("dense", "bm25", "hybrid")
TOLERANCE = 1e-6


def dump(out: Path, questions: Path, seeds: Path) -> None:
    from qa.config import Settings
    from qa.service import QAService

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(seeds_dir=seeds, index_dir=Path(tmp) / "index")
        service = QAService.open(settings, rebuild=True)
        records: list[dict[str, Any]] = []
        for line in questions.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            question = json.loads(line)["question"]
            for retriever in RETRIEVERS:
                answer = service.ask(question, 10, retriever, include_low_confidence=True)
                records.append(
                    {
                        "question": question,
                        "retriever": retriever,
                        "answered": answer.answered,
                        "confidence": answer.confidence,
                        "hits": [
                            {
                                "passage_id": hit.passage.passage_id,
                                "score": hit.score,
                                "quote": [hit.quote.start, hit.quote.end, hit.quote.text],
                                "explain": [
                                    hit.explain.dense_score,
                                    hit.explain.dense_rank,
                                    hit.explain.bm25_score,
                                    hit.explain.bm25_rank,
                                    hit.explain.fused_score,
                                ],
                            }
                            for hit in answer.hits
                        ],
                    }
                )
    out.write_text(json.dumps(records, indent=1), encoding="utf-8")
    print(f"{len(records)} rankings written to {out}")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        return math.isclose(float(a), float(b), rel_tol=0.0, abs_tol=TOLERANCE)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[key], b[key]) for key in a)
    return bool(a == b)


def compare(before: Path, after: Path) -> int:
    old = json.loads(before.read_text(encoding="utf-8"))
    new = json.loads(after.read_text(encoding="utf-8"))
    if len(old) != len(new):
        print(f"different number of rankings: {len(old)} against {len(new)}")
        return 1
    differing = [
        f"{a['retriever']}: {a['question']}"
        for a, b in zip(old, new, strict=True)
        if not _same(a, b)
    ]
    for line in differing:
        print("differs:", line)
    print(f"{len(old) - len(differing)} of {len(old)} rankings identical (scores to {TOLERANCE})")
    return 1 if differing else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    dumping = sub.add_parser("dump")
    dumping.add_argument("out", type=Path)
    dumping.add_argument("--questions", type=Path, default=ROOT / "eval" / "questions.jsonl")
    dumping.add_argument("--seeds", type=Path, default=ROOT / "seeds")
    comparing = sub.add_parser("compare")
    comparing.add_argument("before", type=Path)
    comparing.add_argument("after", type=Path)
    args = parser.parse_args()
    if args.command == "dump":
        dump(args.out, args.questions, args.seeds)
        return 0
    return compare(args.before, args.after)


if __name__ == "__main__":
    sys.exit(main())
