"""Prometheus metrics of the exchange: deliveries, queues, breakers, escalations.

Registered on the node's own registry (``NodeMetrics.registry``), so ``/metrics`` shows
them beside the HTTP metrics and tests can run several nodes in one process.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

from gateway.exchange.circuit import CircuitStatus

__all__ = ["CIRCUIT_VALUES", "ExchangeMetrics", "make_exchange_metrics"]

CIRCUIT_VALUES: dict[CircuitStatus, int] = {"closed": 0, "half_open": 1, "open": 2}


@dataclass(frozen=True)
class ExchangeMetrics:
    deliveries: Counter
    pending: Gauge
    circuit: Gauge
    escalations: Counter
    status_changes: Counter

    def set_circuit(self, partner: str, status: CircuitStatus) -> None:
        self.circuit.labels(partner).set(CIRCUIT_VALUES[status])


def make_exchange_metrics(registry: CollectorRegistry) -> ExchangeMetrics:
    return ExchangeMetrics(
        deliveries=Counter(
            "tongban_outbox_deliveries",
            "Outbound delivery attempts by partner and outcome (delivered, retry, refused)",
            ["partner", "kind", "outcome"],
            registry=registry,
        ),
        pending=Gauge(
            "tongban_outbox_pending",
            "Deliveries waiting in the outbox, by partner",
            ["partner"],
            registry=registry,
        ),
        circuit=Gauge(
            "tongban_circuit_state",
            "Per-partner circuit breaker: 0 closed, 1 half-open, 2 open",
            ["partner"],
            registry=registry,
        ),
        escalations=Counter(
            "tongban_request_escalations",
            "三单一函 escalations fired, by level",
            ["level"],
            registry=registry,
        ),
        status_changes=Counter(
            "tongban_request_status_changes",
            "Service request status changes recorded, by role and status",
            ["role", "status"],
            registry=registry,
        ),
    )
