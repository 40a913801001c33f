"""Settings from the environment, and the processes refusing to start without them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet

from service.config import Settings
from service.errors import ConfigError
from tests.processes import REPOSITORY_ROOT

KEY = Fernet.generate_key().decode()
MINIMAL = {"SECURE_URL": "https://secure.sysdig.com/", "SECURE_API_TOKEN": "token-123456", "REGISTRY_CREDENTIALS_KEY": KEY}


def run_cli(command: str, environ: dict[str, str]) -> subprocess.CompletedProcess:
    """Run `harbor-scanner-sysdig COMMAND` as the processes start in production."""
    return subprocess.run(
        [sys.executable, "-m", "service.cli", command], cwd=REPOSITORY_ROOT, env=environ, capture_output=True, timeout=60
    )


def test_minimal_settings_use_documented_defaults():
    settings = Settings.from_env(MINIMAL)

    assert settings.secure.url == "https://secure.sysdig.com"
    assert settings.secure.verify_ssl is True
    assert settings.secure.scanning_api == "results"
    assert settings.inline_scanning is False
    assert settings.refresh_after == 5
    assert settings.worker.prefetch == settings.worker.threads * 2


@pytest.mark.parametrize(
    "missing,fragment",
    [("SECURE_URL", "SECURE_URL is not set"), ("SECURE_API_TOKEN", "SECURE_API_TOKEN is not set"), ("REGISTRY_CREDENTIALS_KEY", "Fernet")],
)
def test_missing_required_setting_is_named(missing, fragment):
    environ = {name: value for name, value in MINIMAL.items() if name != missing}

    with pytest.raises(ConfigError) as error:
        Settings.from_env(environ)

    assert fragment in str(error.value)


@pytest.mark.parametrize(
    "name,value,fragment",
    [
        ("SECURE_URL", "secure.sysdig.com", "must start with https://"),
        ("VERIFY_SSL", "maybe", "not a boolean"),
        ("WORKER_THREADS", "many", "not a whole number"),
        ("WORKER_THREADS", "0", "outside the allowed range"),
        ("WORKER_PROCESSES", "2.7", "not a whole number"),
        ("SCAN_DEADLINE_SECONDS", "1e12", "above the maximum"),
        ("DATABASE_URL", "mysql://db/scans", "only postgresql://"),
        ("RABBITMQ_URL", "notaurl", "amqp://"),
        ("RABBITMQ_URL", "amqp://guest:pw@host:notaport/%2F", "not a valid AMQP URL"),
        ("REGISTRY_CREDENTIALS_KEY", "notakey", "not a valid Fernet key"),
        ("SCANNER_API_KEYS", " , ", "lists no key"),
        ("SECURE_SCANNING_API", "v2", "use one of"),
        ("SECURE_CA_BUNDLE", "/nonexistent/ca.pem", "not a readable file"),
        ("LOG_LEVEL", "LOUD", "use one of"),
        ("REFRESH_AFTER_SECONDS", "nan", "not a whole number"),
        ("WORKER_THREADS", "inf", "not a whole number"),
        ("SCAN_DEADLINE_SECONDS", "NaN", "not a finite number"),
    ],
)
def test_invalid_setting_is_named(name, value, fragment):
    with pytest.raises(ConfigError) as error:
        Settings.from_env({**MINIMAL, name: value})

    assert name in str(error.value)
    assert fragment in str(error.value)


def test_inline_mode_needs_namespace_and_secret():
    with pytest.raises(ConfigError) as error:
        Settings.from_env({**MINIMAL, "INLINE_SCANNING": "true"})

    assert "NAMESPACE_NAME" in str(error.value)


def test_inline_mode_settings():
    settings = Settings.from_env(
        {**MINIMAL, "INLINE_SCANNING": "true", "NAMESPACE_NAME": "harbor", "SECRET_NAME": "sysdig", "CONFIGMAP_NAME": "scanner"}
    )

    assert settings.inline is not None
    assert settings.inline.namespace == "harbor"
    assert settings.inline.configmap_name == "scanner"


def test_settings_repr_hides_secrets():
    settings = Settings.from_env({**MINIMAL, "DATABASE_URL": "postgresql://app:db-pass@db/x", "SCANNER_API_KEYS": "k-1"})

    text = repr(settings)

    for secret in ("token-123456", KEY, "db-pass", "k-1"):
        assert secret not in text


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_process_refuses_to_start_without_secure_url(command):
    environ = {name: value for name, value in os.environ.items() if name not in ("SECURE_URL", "SECURE_API_TOKEN")}

    result = run_cli(command, environ)

    assert result.returncode == 2
    assert b"SECURE_URL is not set" in result.stderr


def test_worker_process_applies_size_settings():
    from service.cli import worker_process

    settings = Settings.from_env({**MINIMAL, "WORKER_PROCESSES": "3", "WORKER_THREADS": "5", "WORKER_PREFETCH": "7"})

    argv, environ = worker_process(settings, {"PATH": "/usr/bin"})

    assert argv[argv.index("--processes") + 1] == "3"
    assert argv[argv.index("--threads") + 1] == "5"
    assert environ["dramatiq_queue_prefetch"] == "7"
    assert environ["PATH"] == "/usr/bin"


def test_api_keys_are_trimmed():
    settings = Settings.from_env({**MINIMAL, "SCANNER_API_KEYS": "key-one, key-two ,,"})

    assert settings.api_keys == ("key-one", "key-two")


def test_process_refuses_bad_database_url():
    environ = {**os.environ, **MINIMAL, "DATABASE_URL": "mysql://db/scans"}

    result = run_cli("worker", environ)

    assert result.returncode == 2
    assert b"configuration error: DATABASE_URL" in result.stderr


def test_inline_mode_is_reported_unsupported_first():
    environ = {**os.environ, **MINIMAL, "INLINE_SCANNING": "true"}

    result = run_cli("serve", environ)

    assert result.returncode == 2
    assert b"INLINE_SCANNING=true is not supported" in result.stderr
