"""Registry credentials: encryption at rest and parsing of Harbor's Authorization value."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from service.errors import ConfigError, ScanFailed


@dataclass(frozen=True)
class RegistryCredentials:
    """A user name and password for pulling one image; never logged or repr'd."""

    username: str = field(repr=False)
    password: str = field(repr=False)


class CredentialsCipher:
    """Fernet encryption of `registry.authorization` values.

    The first key encrypts and every key decrypts. To rotate keys, put the new one first in
    REGISTRY_CREDENTIALS_KEY, and remove the old one once no scan needs it.
    """

    def __init__(self, keys: tuple[str, ...]) -> None:
        try:
            self._fernet = MultiFernet([Fernet(key.encode()) for key in keys])
        except (ValueError, binascii.Error):
            raise ConfigError(
                "REGISTRY_CREDENTIALS_KEY is not a valid Fernet key (32 url-safe base64-encoded bytes); "
                "generate one with `python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`"
            ) from None

    def encrypt(self, authorization: str) -> bytes:
        return self._fernet.encrypt(authorization.encode())

    def decrypt(self, token: bytes) -> str:
        try:
            return self._fernet.decrypt(token).decode()
        except InvalidToken:
            raise ScanFailed(
                "stored registry credentials cannot be decrypted: REGISTRY_CREDENTIALS_KEY "
                "differs between the API and the worker"
            ) from None


def check_authorization(authorization: str) -> None:
    """Raise ValueError unless `authorization` is empty, Basic user:password, or Bearer."""
    if not authorization:
        return
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return
    if scheme.lower() == "basic":
        parse_basic(authorization)
        return
    raise ValueError("must be empty, 'Basic <base64 of user:password>' or 'Bearer <token>'")


def parse_basic(authorization: str) -> RegistryCredentials:
    """Decode `Basic base64(user:password)`, splitting on the first colon only.

    Robot account names contain `$` and `+`, and passwords may contain `:`.
    """
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        raise ValueError("is not a Basic authorization")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise ValueError("is not valid base64 of UTF-8 text") from None
    username, colon, password = decoded.partition(":")
    if not colon or not username:
        raise ValueError("must encode 'user:password'")
    return RegistryCredentials(username=username, password=password)
