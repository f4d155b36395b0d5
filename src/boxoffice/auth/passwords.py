"""Password hashing: argon2id (argon2-cffi's RFC 9106 low-memory profile).

Hashing is CPU-heavy (~100 ms), so the async helpers run it in a worker thread; argon2-cffi
releases the GIL while hashing, so the event loop keeps serving other requests.
"""

from __future__ import annotations

import asyncio
import functools
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# argon2id with the library's current recommended parameters; a stored hash with other
# parameters is rehashed at the next successful login (see needs_rehash).
HASHER = PasswordHasher()


def hasher(time_cost: int, memory_kib: int, parallelism: int) -> PasswordHasher:
    """An argon2id hasher with other parameters (settings.argon2_*: tuned to the hardware)."""
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)


def hash_password(password: str, with_hasher: PasswordHasher = HASHER) -> str:
    return with_hasher.hash(password)


def verify_password(password_hash: str, password: str, with_hasher: PasswordHasher = HASHER) -> bool:
    """True when the password matches; False for a mismatch or an unreadable stored hash."""
    try:
        return with_hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str, with_hasher: PasswordHasher = HASHER) -> bool:
    try:
        return with_hasher.check_needs_rehash(password_hash)
    except (InvalidHashError, ValueError):
        return True


def dummy_hash(with_hasher: PasswordHasher = HASHER) -> str:
    """A hash of a random password with the hasher's parameters.

    Logins for unknown emails verify against it, so they cost the same time as a wrong password
    (no account enumeration by timing). Cached: computing it is as slow as any hash.
    """
    return _dummy_hash(with_hasher.time_cost, with_hasher.memory_cost, with_hasher.parallelism)


@functools.cache
def _dummy_hash(time_cost: int, memory_kib: int, parallelism: int) -> str:
    return hasher(time_cost, memory_kib, parallelism).hash(secrets.token_urlsafe(24))


def _verify_dummy(password: str, with_hasher: PasswordHasher) -> None:
    # dummy_hash() is computed here, in the thread, the first time: never on the event loop.
    verify_password(dummy_hash(with_hasher), password, with_hasher)


async def hash_password_async(password: str, with_hasher: PasswordHasher = HASHER) -> str:
    return await asyncio.to_thread(hash_password, password, with_hasher)


async def verify_password_async(
    password_hash: str | None, password: str, with_hasher: PasswordHasher = HASHER
) -> bool:
    """Verify against the stored hash, or against the dummy hash when there is no account."""
    if password_hash is None:
        await asyncio.to_thread(_verify_dummy, password, with_hasher)
        return False
    return await asyncio.to_thread(verify_password, password_hash, password, with_hasher)
