"""argon2id hashing, verification, rehash detection and the dummy hash for unknown emails."""

from __future__ import annotations

from argon2 import PasswordHasher, Type

from boxoffice.auth import passwords


def test_hash_is_argon2id_and_verifies() -> None:
    hashed = passwords.hash_password("correct horse battery")
    assert hashed.startswith("$argon2id$")
    assert "correct horse battery" not in hashed
    assert passwords.verify_password(hashed, "correct horse battery")
    assert not passwords.verify_password(hashed, "correct horse battery!")
    assert not passwords.needs_rehash(hashed)


def test_same_password_hashes_differently() -> None:
    assert passwords.hash_password("same password") != passwords.hash_password("same password")


def test_old_parameters_need_rehash() -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1, type=Type.ID).hash("password123")
    assert passwords.verify_password(weak, "password123")
    assert passwords.needs_rehash(weak)


def test_unreadable_hash_is_a_failed_verification_not_an_error() -> None:
    assert not passwords.verify_password("not-a-real-hash", "whatever1")
    assert passwords.needs_rehash("not-a-real-hash")


def test_dummy_hash_uses_current_parameters() -> None:
    # Unknown emails verify against it: same parameters -> same cost as a wrong password.
    assert passwords.dummy_hash().startswith("$argon2id$")
    assert not passwords.needs_rehash(passwords.dummy_hash())
    assert passwords.dummy_hash() == passwords.dummy_hash()


async def test_async_helpers() -> None:
    hashed = await passwords.hash_password_async("pass-word-1")
    assert await passwords.verify_password_async(hashed, "pass-word-1")
    assert not await passwords.verify_password_async(hashed, "pass-word-2")
    assert not await passwords.verify_password_async(None, "pass-word-1")
