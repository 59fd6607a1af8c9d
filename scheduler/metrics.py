"""Prometheus metrics of one daemon, in a registry of its own (so tests can run several
daemons in one process). The runner and the reconciler report to it through callbacks;
gauges about the store are read when Prometheus scrapes."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from scheduler.history import RunRecord

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PENDING_LIMIT = 5000
LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600)


class _StoreGauges(Collector):
    def __init__(self, counts: Callable[[], tuple[int, int]]) -> None:
        self.counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        stored, paused = self.counts()
        yield GaugeMetricFamily("scheduler_jobs_stored", "Jobs in the store", value=stored)
        yield GaugeMetricFamily(
            "scheduler_jobs_paused", "Jobs paused (file or operator)", value=paused
        )


class _RoleGauges(Collector):
    def __init__(self, role: Callable[[], dict[str, Any]]) -> None:
        self.role = role

    def collect(self) -> Iterator[GaugeMetricFamily]:
        info = self.role()
        if not info:
            return
        yield GaugeMetricFamily(
            "scheduler_leader",
            "1 on the replica that leads, 0 on a standby",
            value=1 if info.get("role") == "leader" else 0,
        )
        if info.get("epoch") is not None:
            yield GaugeMetricFamily(
                "scheduler_lease_epoch", "Epoch of the current lease", value=info["epoch"]
            )
        if info.get("lease_age") is not None:
            yield GaugeMetricFamily(
                "scheduler_lease_age_seconds",
                "Seconds since the lease was last renewed",
                value=info["lease_age"],
            )


FreshnessSamples = Callable[[], list[tuple[str, float | None, bool]]]


class _FreshnessGauges(Collector):
    """Per-job gauges, only for jobs that declare ``expect`` (a bounded, chosen set)."""

    def __init__(self, samples: FreshnessSamples) -> None:
        self.samples = samples

    def collect(self) -> Iterator[GaugeMetricFamily]:
        last = GaugeMetricFamily(
            "scheduler_job_last_success_timestamp_seconds",
            "When the job last succeeded (0: never), for jobs with expect",
            labels=["job"],
        )
        overdue = GaugeMetricFamily(
            "scheduler_job_overdue",
            "1 while the job has not succeeded within its expect window",
            labels=["job"],
        )
        for job, success, is_overdue in self.samples():
            last.add_metric([job], success or 0.0)
            overdue.add_metric([job], 1.0 if is_overdue else 0.0)
        yield last
        yield overdue


class Metrics:
    def __init__(
        self,
        counts: Callable[[], tuple[int, int]],
        role: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.registry = CollectorRegistry()
        self.pending: deque[RunRecord] = deque()
        self.runs = Counter(
            "scheduler_runs",
            "Finished tries by job and outcome",
            ["job", "outcome"],
            registry=self.registry,
        )
        # No per-job label: 12 buckets for each of 10,000 jobs would cost more than the jobs.
        self.duration = Histogram(
            "scheduler_run_duration_seconds",
            "Duration of tries",
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.lag = Histogram(
            "scheduler_start_lag_seconds",
            "Delay between a run's scheduled time and its start",
            buckets=LAG_BUCKETS,
            registry=self.registry,
        )
        self.reconcile_time = Gauge(
            "scheduler_last_reconcile_timestamp_seconds",
            "When the last reconcile finished",
            registry=self.registry,
        )
        self.reconcile_ok = Gauge(
            "scheduler_last_reconcile_success",
            "1 if the last reconcile applied, 0 if it was refused",
            registry=self.registry,
        )
        self.reconcile_errors = Counter(
            "scheduler_reconcile_errors",
            "Reconciles refused (invalid files, empty dir)",
            registry=self.registry,
        )
        self.registry.register(_StoreGauges(counts))
        if role is not None:
            self.registry.register(_RoleGauges(role))

    def observe_run(self, record: RunRecord) -> None:
        """Called on the runner's hot path: only queue the record; Prometheus' locks and
        label lookups are paid when it scrapes (or every few thousand runs)."""
        if record.outcome == "running":
            return
        self.pending.append(record)
        if len(self.pending) >= PENDING_LIMIT:
            self._drain()

    def _drain(self) -> None:
        while self.pending:
            self._count(self.pending.popleft())

    def _count(self, record: RunRecord) -> None:
        self.runs.labels(record.job_id, record.outcome).inc()
        if record.finished_at is not None and record.outcome not in ("skipped", "missed"):
            self.duration.observe(record.finished_at - record.started_at)
        if (
            record.scheduled_time is not None
            and record.attempt == 1
            and record.outcome not in ("skipped", "missed")
        ):
            self.lag.observe(max(0.0, record.started_at - record.scheduled_time))

    def observe_reconcile(self, ok: bool, finished_at: float) -> None:
        self.reconcile_time.set(finished_at)
        self.reconcile_ok.set(1 if ok else 0)
        if not ok:
            self.reconcile_errors.inc()

    def watch_freshness(self, samples: FreshnessSamples) -> None:
        self.registry.register(_FreshnessGauges(samples))

    def render(self) -> bytes:
        self._drain()
        return generate_latest(self.registry)
