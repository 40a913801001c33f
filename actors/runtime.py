"""Per-process resources of the worker: engine, Sysdig client, cipher and the scan steps."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from service.backend_mode import BackendScanner
from service.config import Settings
from service.credentials import CredentialsCipher
from service.persistence.engine import create_sync_engine, sync_sessions
from service.sysdig.client import SecureClient

logger = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    client: SecureClient
    scanner: BackendScanner

    def close(self) -> None:
        self.client.close()
        self.engine.dispose()


_settings: Settings | None = None
_runtime: Runtime | None = None
_lock = threading.Lock()


def configure(settings: Settings) -> None:
    """Set the settings the process's runtime is built from on first use."""
    global _settings
    _settings = settings


def runtime() -> Runtime:
    """Return the process's runtime, creating it on first use by any worker thread."""
    global _runtime
    with _lock:
        if _runtime is None:
            if _settings is None:
                raise RuntimeError("actors.runtime.configure(settings) must run before the first message")
            _runtime = _build(_settings)
        return _runtime


def close() -> None:
    global _runtime
    with _lock:
        if _runtime is not None:
            _runtime.close()
            _runtime = None


def _build(settings: Settings) -> Runtime:
    engine = create_sync_engine(settings.database_url, pool_size=settings.worker.threads + 1)
    sessions = sync_sessions(engine)
    client = SecureClient(settings.secure)
    cipher = CredentialsCipher(settings.credentials_keys)
    scanner = BackendScanner(settings, sessions, client, cipher)
    logger.info("worker runtime ready (Sysdig Secure at %s, %s scanning API)", settings.secure.url, settings.secure.scanning_api)
    return Runtime(settings, engine, sessions, client, scanner)
