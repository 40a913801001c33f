"""Periodic work of each worker process: re-drive stalled scans, expire overdue ones,
and refresh the vulnerability database time shown in Harbor's metadata."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

import dramatiq

from actors import runtime as process_runtime
from actors.runtime import Runtime, runtime
from service.api.metadata import LEGACY_SCANNING_BACKEND
from service.errors import ScannerError
from service.logs import scan_context
from service.persistence import scans
from service.scan import ScanState

logger = logging.getLogger(__name__)


def sweep(rt: Runtime) -> int:
    """Fail overdue scans and re-send the next step of stalled ones; returns how many it touched."""
    from actors.scans import poll_scan, start_scan

    with rt.sessions() as session:
        overdue = scans.overdue_scans(session)
    for scan_id, state in overdue:
        with scan_context(scan_id):
            rt.scanner.fail(scan_id, ScanState(state), f"it did not finish within {int(rt.settings.scan_deadline)} seconds")

    with rt.sessions.begin() as session:
        stalled = scans.claim_stalled_scans(session, timedelta(seconds=rt.settings.worker.stall_threshold))
    for scan_id, state in stalled:
        with scan_context(scan_id):
            logger.warning("scan made no progress for %.0f s in %s; re-sending its step", rt.settings.worker.stall_threshold, state)
            actor = start_scan if state == ScanState.SUBMITTED.value else poll_scan
            actor.send(str(scan_id))
    return len(overdue) + len(stalled)


def refresh_vulnerability_database(rt: Runtime) -> None:
    """Store Sysdig's newest feed sync time; keep the old one when Sysdig does not respond."""
    try:
        updated_at = rt.client.feeds_updated_at()
    except ScannerError as exc:
        logger.warning("could not read Sysdig Secure's feeds; keeping the last known time: %s", exc)
        return
    with rt.sessions.begin() as session:
        scans.store_database_updated_at(session, LEGACY_SCANNING_BACKEND, updated_at)
    logger.info("vulnerability database last synced at %s", updated_at)


class Maintenance(dramatiq.Middleware):
    """Runs `sweep` and `refresh_vulnerability_database` on threads beside the worker.

    Each task has its own thread, so a Sysdig call that hangs cannot hold up the sweeper.
    """

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._stop.clear()
        rt = runtime()
        self._threads = [
            self._start(sweep, rt, rt.settings.worker.sweep_interval),
            self._start(refresh_vulnerability_database, rt, rt.settings.worker.feeds_refresh_interval),
        ]

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        process_runtime.close()

    def _start(self, task: Callable[[Runtime], object], rt: Runtime, interval: float) -> threading.Thread:
        thread = threading.Thread(target=self._repeat, args=(task, rt, interval), name=task.__name__, daemon=True)
        thread.start()
        return thread

    def _repeat(self, task: Callable[[Runtime], object], rt: Runtime, interval: float) -> None:
        while not self._stop.is_set():
            try:
                task(rt)
            except Exception:  # the loop must outlive a database outage; the next round retries
                logger.exception("maintenance task %s failed", task.__name__)
            self._stop.wait(interval)
