"""Run the real `harbor-scanner-sysdig` processes for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServiceProcess:
    """One child process with its output captured to a file, stopped with its whole group."""

    def __init__(self, name: str, argv: list[str], environ: dict[str, str]) -> None:
        self.name = name
        self._log = tempfile.NamedTemporaryFile(prefix=f"{name}-", suffix=".log", delete=False)
        self.log_path = Path(self._log.name)
        self.process = subprocess.Popen(
            argv,
            cwd=REPOSITORY_ROOT,
            env=environ,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """Stop at once, as a crash or an OOM kill would."""
        self._signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self, timeout: float = 15) -> None:
        if self.process.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()

    def _signal(self, signum: int) -> None:
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:
            pass


def command(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "service.cli", *arguments]


def start_api(environ: dict[str, str], port: int) -> ServiceProcess:
    api = ServiceProcess("api", command("serve", "--host", "127.0.0.1", "--port", str(port)), environ)
    wait_until_ready(f"http://127.0.0.1:{port}", api)
    return api


def start_worker(environ: dict[str, str]) -> ServiceProcess:
    return ServiceProcess("worker", command("worker"), environ)


def wait_until_ready(base_url: str, process: ServiceProcess, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.process.poll() is not None:
            raise RuntimeError(f"{process.name} exited with {process.process.returncode}:\n{process.output()[-3000:]}")
        try:
            if httpx.get(f"{base_url}/probe/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{process.name} was not ready within {timeout} s:\n{process.output()[-3000:]}")
