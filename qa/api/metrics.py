"""Prometheus metrics, kept in a registry per app so several apps never collide."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """Request counts and latencies by route template, and what the service served."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "qa_http_requests",
            "HTTP requests by method, route template and status.",
            ["method", "path", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "qa_http_request_duration_seconds",
            "Time to answer HTTP requests, by method and route template.",
            ["method", "path"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.questions = Counter(
            "qa_questions",
            "Questions answered, by whether a confident passage was found.",
            ["answered"],
            registry=self.registry,
        )
        self.passages = Counter(
            "qa_passages_served",
            "Passages returned in answers and passage lookups.",
            registry=self.registry,
        )
        self.ready = Gauge(
            "qa_ready", "1 once the index and model are loaded.", registry=self.registry
        )

    def observe(self, method: str, path: str, status: int, seconds: float) -> None:
        self.requests.labels(method, path, str(status)).inc()
        self.latency.labels(method, path).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
