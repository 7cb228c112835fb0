"""Prometheus metrics for one node (its own registry, so tests can run many nodes)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


@dataclass
class NodeMetrics:
    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    rejections: Counter
    audit_size: Gauge

    def render(self) -> bytes:
        return generate_latest(self.registry)


def make_metrics() -> NodeMetrics:
    reg = CollectorRegistry()
    return NodeMetrics(
        registry=reg,
        requests=Counter(
            "tongban_requests", "Requests served", ["route", "partner", "status"], registry=reg
        ),
        latency=Histogram(
            "tongban_request_seconds",
            "Request latency",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=reg,
        ),
        rejections=Counter(
            "tongban_rejections", "Rejected requests by code", ["code"], registry=reg
        ),
        audit_size=Gauge("tongban_audit_entries", "Entries in the audit log", registry=reg),
    )
