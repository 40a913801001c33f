"""The `harbor-scanner-sysdig` command: serve, worker, migrate and demo."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from functools import partial
from pathlib import Path

from service.config import DEFAULT_DATABASE_URL, Settings
from service.errors import ConfigError
from service.logs import setup_logging


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.command(args)
    except ConfigError as exc:
        print(f"harbor-scanner-sysdig: configuration error: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harbor-scanner-sysdig", description="Harbor pluggable scanner adapter for Sysdig Secure."
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the Harbor-facing HTTP API")
    serve.add_argument("--host", default="0.0.0.0", help="address to listen on (default: 0.0.0.0)")
    serve.add_argument("--port", type=int, default=8080, help="TCP port to listen on (default: 8080)")
    serve.add_argument("--workers", type=int, default=1, help="number of API processes (default: 1)")
    serve.set_defaults(command=serve_command)

    worker = commands.add_parser("worker", help="run the Dramatiq worker that steps scans through their states")
    worker.set_defaults(command=worker_command)

    migrate = commands.add_parser("migrate", help="upgrade the database schema to the newest revision")
    migrate.set_defaults(command=migrate_command)

    demo = commands.add_parser("demo", help="scan a recorded image end to end against the Sysdig test double")
    demo.set_defaults(command=demo_command)
    return parser


def _checked_settings() -> Settings:
    if os.environ.get("INLINE_SCANNING", "").strip().lower() in ("1", "true", "yes", "on"):
        raise ConfigError("INLINE_SCANNING=true is not supported by this version yet; unset it to scan in backend mode")
    return Settings.from_env()


def serve_command(args: argparse.Namespace) -> int:
    from sanic import Sanic
    from sanic.worker.loader import AppLoader

    settings = _checked_settings()
    setup_logging(settings.log_level)
    loader = AppLoader(factory=partial(build_api, settings))
    app = loader.load()
    app.prepare(host=args.host, port=args.port, workers=args.workers, access_log=False, motd=False)
    Sanic.serve(primary=app, app_loader=loader)
    return 0


def build_api(settings: Settings):
    """Create the API wired to RabbitMQ; Sanic calls it once in every API process."""
    from actors.broker import broker_ready, setup_broker
    from service.api.app import create_app

    setup_logging(settings.log_level)
    setup_broker(settings.rabbitmq_url)
    from actors.scans import publish_new_scan

    return create_app(settings, publish_new_scan, partial(broker_ready, settings.rabbitmq_url))


def worker_command(args: argparse.Namespace) -> int:
    settings = _checked_settings()
    argv, environ = worker_process(settings, os.environ)
    os.execve(sys.executable, argv, environ)
    return 0  # not reached: execve replaces the process


def worker_process(settings: Settings, environ: Mapping[str, str]) -> tuple[list[str], dict[str, str]]:
    """Return the command line and environment of Dramatiq's worker for `settings`."""
    argv = [
        sys.executable, "-m", "dramatiq", "actors.main",
        "--processes", str(settings.worker.processes),
        "--threads", str(settings.worker.threads),
        "--skip-logging",
    ]
    # Dramatiq reads the prefetch when it is imported, so it must be in the environment.
    # The delay queue keeps Dramatiq's own default, because every pending poll sits there.
    return argv, {**environ, "dramatiq_queue_prefetch": str(settings.worker.prefetch)}


def migrate_command(args: argparse.Namespace) -> int:
    setup_logging(os.environ.get("LOG_LEVEL", "INFO").upper())
    upgrade_database(os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL)
    return 0


def upgrade_database(database_url: str) -> None:
    """Run every Alembic migration up to head on `database_url`."""
    from alembic import command
    from alembic.config import Config

    import migrations

    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.attributes["database_url"] = database_url
    command.upgrade(config, "head")


def demo_command(args: argparse.Namespace) -> int:
    from service.demo import run_demo

    return run_demo()


if __name__ == "__main__":
    sys.exit(main())
