"""Registry credentials: parsing Harbor's Basic value, encryption at rest, log scrubbing."""

from __future__ import annotations

import base64
import logging

import pytest
from cryptography.fernet import Fernet

from service.credentials import CredentialsCipher, check_authorization, parse_basic
from service.errors import ConfigError, ScanFailed
from service.logs import ScanContextFilter, scan_context, scrub


def basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "decoded,user,password",
    [
        ("robot$library+scanner-sysdig-1:secret", "robot$library+scanner-sysdig-1", "secret"),
        ("robot$x+y:pa:ss:word", "robot$x+y", "pa:ss:word"),
        ("user:", "user", ""),
        ("üser:pässword", "üser", "pässword"),
    ],
)
def test_basic_splits_on_first_colon(decoded, user, password):
    credentials = parse_basic(basic(decoded))

    assert credentials.username == user
    assert credentials.password == password


@pytest.mark.parametrize("value", ["Basic !!!", basic("no-colon"), basic(":password-only"), "Bearer x", "Basic"])
def test_basic_rejects_malformed_values(value):
    with pytest.raises(ValueError):
        parse_basic(value)


def test_credentials_repr_hides_values():
    credentials = parse_basic(basic("robot$a+b:hunter2"))

    assert "hunter2" not in repr(credentials)
    assert "robot$a+b" not in repr(credentials)


@pytest.mark.parametrize("value", ["", "Bearer token-1", basic("u:p"), "basic " + base64.b64encode(b"u:p").decode()])
def test_authorization_accepted(value):
    check_authorization(value)


@pytest.mark.parametrize("value", ["Token abc", "Bearer ", "Basic", "garbage"])
def test_authorization_rejected(value):
    with pytest.raises(ValueError):
        check_authorization(value)


def test_cipher_round_trip_and_rotation():
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    token = CredentialsCipher((old_key,)).encrypt(basic("u:p"))

    rotated = CredentialsCipher((new_key, old_key))

    assert rotated.decrypt(token) == basic("u:p")
    assert CredentialsCipher((new_key,)).decrypt(rotated.encrypt("x")) == "x"


def test_cipher_with_other_key_fails_the_scan_clearly():
    token = CredentialsCipher((Fernet.generate_key().decode(),)).encrypt(basic("u:p"))

    with pytest.raises(ScanFailed) as failure:
        CredentialsCipher((Fernet.generate_key().decode(),)).decrypt(token)

    assert "REGISTRY_CREDENTIALS_KEY" in str(failure.value)


def test_cipher_rejects_invalid_key():
    with pytest.raises(ConfigError):
        CredentialsCipher(("not-a-key",))


@pytest.mark.parametrize(
    "text,secret",
    [
        ("header Authorization: Basic cm9ib3Q6c2VjcmV0", "cm9ib3Q6c2VjcmV0"),
        ("sent Bearer abcdef123456", "abcdef123456"),
        ('{"registry_pass": "hunter2"}', "hunter2"),
        ("amqp://guest:guestpass@127.0.0.1:5672/%2F", "guestpass"),
        ("postgresql+psycopg://app:dbpass@db/x", "dbpass"),
    ],
)
def test_scrub_removes_credentials(text, secret):
    assert secret not in scrub(text)


def test_log_records_carry_scan_id_and_are_scrubbed():
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "auth %s", ("Basic cm9ib3Q6c2VjcmV0",), None)

    with scan_context("1234"):
        ScanContextFilter().filter(record)

    assert record.scan_id == "1234"
    assert "cm9ib3Q6c2VjcmV0" not in record.getMessage()
