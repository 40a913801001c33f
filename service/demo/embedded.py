"""Servers the demo starts in-process when no real ones are configured."""

from __future__ import annotations

import asyncio
import logging
import tempfile
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from sanic import Sanic

logger = logging.getLogger(__name__)


@contextmanager
def embedded_postgres() -> Iterator[str]:
    """Start a throw-away PostgreSQL from the pgserver package and yield its URL."""
    # platformdirs, used by pgserver, warns on import when XDG_RUNTIME_DIR is unset (as for root).
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    try:
        import pgserver
    except ImportError:
        raise SystemExit(
            "the demo needs the pgserver package for its embedded PostgreSQL: "
            "pip install 'harbor-scanner-sysdig[embedded]', or set DATABASE_URL to a running server"
        ) from None

    data_dir = tempfile.mkdtemp(prefix="harbor-scanner-demo-pg-")
    server = pgserver.get_server(data_dir, cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


class BackgroundApi:
    """Serve a Sanic app from a thread with its own event loop, so the demo stays one process.

    The in-process stub broker only reaches actors in the same process, which rules out
    running the API as a child process.
    """

    def __init__(self, app: Sanic, host: str, port: int) -> None:
        self._app = app
        self._host = host
        self._port = port
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._server = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="demo-api", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}"

    def run(self, coroutine, timeout: float = 30):
        """Run `coroutine` on the API's event loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def start(self, timeout: float = 30) -> None:
        self._thread.start()
        if not self._started.wait(timeout):
            raise RuntimeError(f"the API did not start within {timeout:.0f} s")
        if self._error is not None:
            raise RuntimeError(f"the API failed to start: {self._error}") from self._error

    def stop(self) -> None:
        if self._server is not None:
            future = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
            future.result(timeout=15)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=15)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._started.set()
            return
        self._started.set()
        self._loop.run_forever()

    async def _serve(self) -> None:
        self._server = await self._app.create_server(
            host=self._host, port=self._port, return_asyncio_server=True, access_log=False
        )
        await self._server.startup()
        await self._server.before_start()
        await self._server.after_start()

    async def _shutdown(self) -> None:
        await self._server.before_stop()
        await self._server.close()
        await self._server.after_stop()
