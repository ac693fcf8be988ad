"""Password hashing (argon2id) and random bearer secrets stored only as digests."""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from patronage.config import get_settings

# argon2id with the library's (RFC 9106 low-memory) defaults; the test suite creates hundreds
# of users, so PATRONAGE_ENV=test uses the cheapest parameters (never in other environments)
_hasher = PasswordHasher()
_test_hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def _current() -> PasswordHasher:
    return _test_hasher if get_settings().env == "test" else _hasher


# a real hash to verify against when the user does not exist, so timing does not tell
_DUMMY_HASH = _hasher.hash("patronage-timing-equaliser")


def hash_password(password: str) -> str:
    return str(_current().hash(password))


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return bool(_current().verify(password_hash or _DUMMY_HASH, password)) and bool(
            password_hash
        )
    except (VerificationError, InvalidHashError):
        return False


def new_secret(prefix: str) -> str:
    """'pat_' + 43 url-safe characters (256 bits)."""
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()
