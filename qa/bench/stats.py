"""Small helpers shared by the benchmark parts: percentiles and peak memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    """p50/p95/p99 and the mean, in milliseconds (NaN when there are no samples)."""
    if not samples_ms:
        nan = float("nan")
        return {"p50": nan, "p95": nan, "p99": nan, "mean": nan, "n": 0}
    data = np.asarray(samples_ms, dtype=np.float64)
    return {
        "p50": float(np.percentile(data, 50)),
        "p95": float(np.percentile(data, 95)),
        "p99": float(np.percentile(data, 99)),
        "mean": float(data.mean()),
        "n": len(samples_ms),
    }


def peak_rss_mb(pid: int) -> float:
    """Peak resident set size of a live process (``VmHWM``), in MiB; NaN if unknown."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def self_peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
