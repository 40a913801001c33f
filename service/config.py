"""Settings read from environment variables, validated once at start-up."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from service.errors import ConfigError

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/harbor_scanner"
DEFAULT_RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"

# A week: Harbor stops polling after its maximum job duration (24 h by default) anyway.
MAX_SCAN_DEADLINE_SECONDS = 7 * 24 * 3600

# Harbor parses Refresh-After as a signed 8-bit integer; 128 and above silently become 5 s.
REFRESH_AFTER_MIN = 1
REFRESH_AFTER_MAX = 127

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class SecureSettings:
    """How to reach the Sysdig Secure backend."""

    url: str
    api_token: str = field(repr=False)
    verify_ssl: bool = True
    ca_bundle: str | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    scanning_api: Literal["results", "anchore"] = "results"
    registry_verify_tls: bool = True
    max_attempts: int = 4
    max_retry_wait: float = 30.0


@dataclass(frozen=True)
class InlineSettings:
    """Location of inline scans, which run as Kubernetes Jobs."""

    namespace: str
    configmap_name: str | None
    secret_name: str


@dataclass(frozen=True)
class WorkerSettings:
    """Size and pacing of the Dramatiq worker."""

    processes: int = 2
    threads: int = 8
    prefetch: int = 16
    poll_initial_delay: float = 5.0
    poll_max_delay: float = 60.0
    sweep_interval: float = 60.0
    stall_threshold: float = 180.0
    registry_lease_seconds: float = 900.0
    feeds_refresh_interval: float = 900.0


@dataclass(frozen=True)
class Settings:
    """Everything the API and the worker read from the environment."""

    secure: SecureSettings
    database_url: str = field(repr=False)
    rabbitmq_url: str | None = field(repr=False)
    credentials_keys: tuple[str, ...] = field(repr=False)
    inline: InlineSettings | None = None
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    refresh_after: int = 5
    scan_deadline: float = 1800.0
    not_found_grace: float = 120.0
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    log_level: str = "INFO"

    @property
    def inline_scanning(self) -> bool:
        return self.inline is not None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `environ` (default: the process environment)."""
        env = _Env(os.environ if environ is None else environ)

        secure = SecureSettings(
            url=_secure_url(env.required("SECURE_URL", "the base URL of Sysdig Secure, e.g. https://secure.sysdig.com")),
            api_token=env.required("SECURE_API_TOKEN", "a Sysdig Secure API token"),
            verify_ssl=env.boolean("VERIFY_SSL", True),
            ca_bundle=env.optional("SECURE_CA_BUNDLE"),
            connect_timeout=env.number("SECURE_CONNECT_TIMEOUT", 5.0, minimum=0.1),
            read_timeout=env.number("SECURE_READ_TIMEOUT", 30.0, minimum=0.1),
            scanning_api=env.choice("SECURE_SCANNING_API", ("results", "anchore"), "results"),
            registry_verify_tls=env.boolean("REGISTRY_VERIFY_TLS", True),
            max_attempts=env.integer("SECURE_MAX_ATTEMPTS", 4, minimum=1, maximum=20),
            max_retry_wait=env.number("SECURE_MAX_RETRY_WAIT", 30.0, minimum=0),
        )
        if secure.ca_bundle and not os.path.isfile(secure.ca_bundle):
            raise ConfigError(f"SECURE_CA_BUNDLE={secure.ca_bundle!r} is not a readable file; point it at a PEM bundle")

        inline = None
        if env.boolean("INLINE_SCANNING", False):
            inline = InlineSettings(
                namespace=env.required("NAMESPACE_NAME", "the namespace where scan Jobs run"),
                configmap_name=env.optional("CONFIGMAP_NAME"),
                secret_name=env.required("SECRET_NAME", "the Secret that holds the Sysdig API token for scan Jobs"),
            )

        threads = env.integer("WORKER_THREADS", 8, minimum=1, maximum=1024)
        worker = WorkerSettings(
            processes=env.integer("WORKER_PROCESSES", 2, minimum=1, maximum=256),
            threads=threads,
            prefetch=env.integer("WORKER_PREFETCH", threads * 2, minimum=1, maximum=65535),
            poll_initial_delay=env.number("POLL_INITIAL_DELAY_SECONDS", 5.0, minimum=0.1),
            poll_max_delay=env.number("POLL_MAX_DELAY_SECONDS", 60.0, minimum=0.1),
            sweep_interval=env.number("SWEEP_INTERVAL_SECONDS", 60.0, minimum=0.1),
            stall_threshold=env.number("STALL_THRESHOLD_SECONDS", 180.0, minimum=0.1),
            registry_lease_seconds=env.number("REGISTRY_LEASE_SECONDS", 900.0, minimum=1),
            feeds_refresh_interval=env.number("FEEDS_REFRESH_SECONDS", 900.0, minimum=1),
        )

        return cls(
            secure=secure,
            database_url=_database_url(env),
            rabbitmq_url=_rabbitmq_url(env),
            credentials_keys=_credentials_keys(env),
            inline=inline,
            api_keys=_api_keys(env),
            refresh_after=clamp_refresh_after(env.integer("REFRESH_AFTER_SECONDS", 5, minimum=-1000, maximum=1000)),
            scan_deadline=env.number("SCAN_DEADLINE_SECONDS", 1800.0, minimum=1, maximum=MAX_SCAN_DEADLINE_SECONDS),
            not_found_grace=env.number("NOT_FOUND_GRACE_SECONDS", 120.0, minimum=0),
            worker=worker,
            log_level=env.choice("LOG_LEVEL", ("DEBUG", "INFO", "WARNING", "ERROR"), "INFO", upper=True),
        )


def clamp_refresh_after(seconds: int) -> int:
    """Keep Refresh-After inside the range Harbor can parse."""
    return max(REFRESH_AFTER_MIN, min(REFRESH_AFTER_MAX, seconds))


def _secure_url(value: str) -> str:
    if not value.startswith(("https://", "http://")):
        raise ConfigError(f"SECURE_URL={value!r} must start with https:// (or http:// for a local test server)")
    return value.rstrip("/")


def _credentials_keys(env: _Env) -> tuple[str, ...]:
    from service.credentials import CredentialsCipher

    raw = env.required(
        "REGISTRY_CREDENTIALS_KEY",
        "a Fernet key that encrypts Harbor's registry credentials at rest; generate one with "
        "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`",
    )
    keys = tuple(key.strip() for key in raw.split(",") if key.strip())
    CredentialsCipher(keys)  # raises ConfigError naming the variable when a key is invalid
    return keys


def _database_url(env: _Env) -> str:
    from service.persistence.engine import sync_database_url

    url = env.optional("DATABASE_URL") or DEFAULT_DATABASE_URL
    sync_database_url(url)  # raises ConfigError for a URL that is not postgresql://
    return url


def _rabbitmq_url(env: _Env) -> str:
    import pika

    url = env.optional("RABBITMQ_URL") or DEFAULT_RABBITMQ_URL
    if not url.startswith(("amqp://", "amqps://")):
        raise ConfigError("RABBITMQ_URL must start with amqp:// or amqps://, e.g. amqp://USER:PASSWORD@HOST:5672/%2F")
    try:
        pika.URLParameters(url)
    except Exception:  # pika raises assorted errors; the URL may hold a password, so it is not echoed
        raise ConfigError("RABBITMQ_URL is not a valid AMQP URL; use amqp://USER:PASSWORD@HOST:5672/%2F") from None
    return url


def _api_keys(env: _Env) -> tuple[str, ...]:
    raw = env.optional("SCANNER_API_KEYS")
    if raw is None:
        return ()
    keys = tuple(key.strip() for key in raw.split(",") if key.strip())
    if not keys:
        raise ConfigError("SCANNER_API_KEYS is set but lists no key; unset it or give comma-separated keys")
    return keys


class _Env:
    """Typed reads of environment variables with errors that name the variable and the fix."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def optional(self, name: str) -> str | None:
        value = self._environ.get(name, "").strip()
        return value or None

    def required(self, name: str, meaning: str) -> str:
        value = self.optional(name)
        if value is None:
            raise ConfigError(f"{name} is not set: set it to {meaning}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        raw = self._environ.get(name)
        if raw is None:
            return default
        lowered = raw.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ConfigError(f"{name}={raw!r} is not a boolean; use true or false")

    def integer(self, name: str, default: int, minimum: int, maximum: int) -> int:
        raw = self.optional(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name}={raw!r} is not a whole number") from None
        if not minimum <= value <= maximum:
            raise ConfigError(f"{name}={raw!r} is outside the allowed range {minimum}..{maximum}")
        return value

    def number(self, name: str, default: float, minimum: float | None = None, maximum: float | None = None) -> float:
        raw = self.optional(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name}={raw!r} is not a number") from None
        if not math.isfinite(value):
            raise ConfigError(f"{name}={raw!r} is not a finite number")
        if minimum is not None and value < minimum:
            raise ConfigError(f"{name}={raw!r} is below the minimum {minimum:g}")
        if maximum is not None and value > maximum:
            raise ConfigError(f"{name}={raw!r} is above the maximum {maximum:g}")
        return value

    def choice(self, name: str, allowed: tuple[str, ...], default: str, upper: bool = False) -> str:
        raw = self.optional(name)
        if raw is None:
            return default
        value = raw.upper() if upper else raw.lower()
        if value not in allowed:
            raise ConfigError(f"{name}={raw!r} is invalid; use one of {', '.join(allowed)}")
        return value
