"""Field encryption (AES-256-GCM) and blind indexes (HMAC-SHA256).

Ciphertext layout, so any row says which key sealed it and rotation can be resumed:

    b"\x01" | key_version (2 bytes, big endian) | nonce (12 bytes) | ciphertext+tag

The associated data binds a value to its column ("customers.email"), so a ciphertext
copied into another column fails to decrypt instead of leaking through it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

FORMAT = 1
_HEADER = struct.Struct(">BH")
_NONCE = 12


class DecryptionError(Exception):
    """The ciphertext is corrupt, was moved between columns, or its key is missing."""


@dataclass(frozen=True)
class Keyring:
    """Versioned data keys; ``active`` seals new values, every version can open old ones."""

    keys: Mapping[int, bytes]
    active: int
    blind_index_key: bytes

    def __post_init__(self) -> None:
        if self.active not in self.keys:
            raise ValueError(f"active key version {self.active} is not in the keyring")
        for version, key in self.keys.items():
            if len(key) != 32:
                raise ValueError(f"key version {version} must be 32 bytes (AES-256)")
            if not 0 < version < 65536:
                raise ValueError("key versions must be between 1 and 65535")
        if len(self.blind_index_key) < 32:
            raise ValueError("the blind index key must be at least 32 bytes")


class FieldCipher:
    """Seals with the active key, opens with any version of the keyring.

    `reload` (optional) re-reads the keyring when a ciphertext names a version this process
    has not seen: a server started before a key rotation keeps reading rows re-encrypted by it.
    """

    RELOAD_INTERVAL = 1.0  # seconds: a ciphertext with a truly unknown version cannot storm it

    def __init__(self, keyring: Keyring, reload: Callable[[], Keyring] | None = None) -> None:
        self._use(keyring)
        self._reload = reload
        self._reloaded_at = float("-inf")

    def _use(self, keyring: Keyring) -> None:
        # the new ciphers first: a concurrent encrypt() never finds its active key missing
        self._aead = {version: AESGCM(key) for version, key in keyring.keys.items()}
        self.keyring = keyring

    def _reload_for(self, version: int) -> AESGCM | None:
        now = time.monotonic()
        if self._reload is None or now - self._reloaded_at < self.RELOAD_INTERVAL:
            return None
        self._reloaded_at = now
        try:
            keyring = self._reload()
        except Exception:  # the caller reports the missing key; the reason is in the settings
            return None
        if version in keyring.keys:
            self._use(keyring)
        return self._aead.get(version)

    def encrypt(self, plaintext: str | None, context: str) -> bytes | None:
        if plaintext is None:
            return None
        nonce = os.urandom(_NONCE)
        header = _HEADER.pack(FORMAT, self.keyring.active)
        sealed = self._aead[self.keyring.active].encrypt(
            nonce, plaintext.encode("utf-8"), context.encode()
        )
        return header + nonce + sealed

    def decrypt(self, ciphertext: bytes | None, context: str) -> str | None:
        if ciphertext is None:
            return None
        fmt, version = key_version_of(ciphertext)
        if fmt != FORMAT:
            raise DecryptionError(f"unknown ciphertext format {fmt}")
        aead = self._aead.get(version) or self._reload_for(version)
        if aead is None:
            raise DecryptionError(f"key version {version} is not in the keyring")
        start = _HEADER.size
        nonce = ciphertext[start : start + _NONCE]
        try:
            plain = aead.decrypt(nonce, ciphertext[start + _NONCE :], context.encode())
        except InvalidTag as exc:
            raise DecryptionError("ciphertext failed authentication") from exc
        return plain.decode("utf-8")

    def blind_index(self, normalized: str | None, context: str) -> bytes | None:
        """Deterministic keyed digest for exact lookup; 16 bytes keep collisions negligible."""
        if normalized is None or normalized == "":
            return None
        mac = hmac.new(self.keyring.blind_index_key, context.encode() + b"\x00", hashlib.sha256)
        mac.update(normalized.encode("utf-8"))
        return mac.digest()[:16]


def key_version_of(ciphertext: bytes) -> tuple[int, int]:
    if len(ciphertext) < _HEADER.size + _NONCE + 16:
        raise DecryptionError("ciphertext too short")
    fmt, version = _HEADER.unpack_from(ciphertext)
    return int(fmt), int(version)


def new_key() -> bytes:
    return os.urandom(32)
