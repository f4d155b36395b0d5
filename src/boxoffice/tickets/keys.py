"""The ticket signing keys: Ed25519 (the `cryptography` package), newest first.

`BOXOFFICE_TICKET_SIGNING_KEYS` (comma-separated secrets, newest first) or, when unset, the data
dir's generated `ticket_signing_keys` in secrets.json (as every generated secret). Each secret
seeds one Ed25519 key pair; a key's id is derived from its public key. The newest key signs new
tickets; every key listed still verifies, so rotating (`boxoffice rotate-ticket-key` puts a new
secret in front) never invalidates a ticket already issued. Drop an old secret only once no show
whose tickets it signed is still to come.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from boxoffice.config import Settings, data_dir_secrets, rotate_data_dir_secret, secret
from boxoffice.runtime import Runtime
from boxoffice.tickets.rules import ParsedPayload, TicketClaims, assemble, parse_payload, signing_input

SECRET_NAME = "ticket_signing_keys"  # noqa: S105 - the name in secrets.json, not a secret
_SEED_CONTEXT = b"boxoffice ticket signing key v1:"


@dataclass(frozen=True, slots=True)
class PublicKey:
    key_id: str
    raw: bytes  # 32 bytes

    @property
    def b64(self) -> str:
        return base64.urlsafe_b64encode(self.raw).rstrip(b"=").decode("ascii")


def _pair(seed_secret: str) -> tuple[str, Ed25519PrivateKey]:
    private = Ed25519PrivateKey.from_private_bytes(
        hashlib.sha256(_SEED_CONTEXT + seed_secret.encode()).digest()
    )
    raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:10], private


class Keyring:
    """Signs with the newest key; verifies with any key it holds."""

    def __init__(self, secrets: list[str]) -> None:
        if not secrets:
            raise ValueError("a keyring needs at least one key")
        pairs = [_pair(s) for s in secrets]
        self._signing_id, self._signing = pairs[0]
        self._verifying: dict[str, Ed25519PublicKey] = {}
        for key_id, private in pairs:
            self._verifying.setdefault(key_id, private.public_key())

    @classmethod
    def from_secret_list(cls, value: str) -> Keyring:
        return cls([s.strip() for s in value.split(",") if s.strip()])

    @classmethod
    def from_settings(cls, settings: Settings) -> Keyring:
        if settings.ticket_signing_keys is not None:
            return cls.from_secret_list(secret(settings.ticket_signing_keys))
        return cls.from_secret_list(data_dir_secrets(settings.data_dir, (SECRET_NAME,))[SECRET_NAME])

    @property
    def signing_key_id(self) -> str:
        return self._signing_id

    def public_keys(self) -> list[PublicKey]:
        return [
            PublicKey(key_id, key.public_bytes(Encoding.Raw, PublicFormat.Raw))
            for key_id, key in self._verifying.items()
        ]

    def discard(self) -> None:
        """A runtime component: the keys are not data a test wipes."""

    async def aclose(self) -> None:
        """A runtime component: nothing to close."""

    def sign(self, claims: TicketClaims) -> str:
        """The payload (`BO1.<body>.<signature>`); `claims.key_id` must be the signing key's."""
        if claims.key_id != self._signing_id:
            raise ValueError("claims name another key than the signing key")
        signed = signing_input(claims)
        return assemble(signed, self._signing.sign(signed.encode("ascii")))

    def verify(self, payload: str) -> TicketClaims | None:
        """The claims of a payload one of our keys signed, else None (forged, truncated, altered,
        unknown key, not a payload at all)."""
        parsed = parse_payload(payload)
        if parsed is None:
            return None
        return verify_parsed(parsed, {k.key_id: k.raw for k in self.public_keys()})


def keyring(runtime: Runtime) -> Keyring:
    """This process's keyring, loaded on first use (a runtime component)."""
    return runtime.component(SECRET_NAME, lambda: Keyring.from_settings(runtime.settings))


def reload_keyring(runtime: Runtime) -> Keyring:
    """Read the keys again (after a rotation in this process)."""
    runtime.components.pop(SECRET_NAME, None)
    return keyring(runtime)


def verify_parsed(parsed: ParsedPayload, public_keys: dict[str, bytes]) -> TicketClaims | None:
    """Verification with public keys only: what an offline gate does with the downloaded keys."""
    raw = public_keys.get(parsed.claims.key_id)
    if raw is None:
        return None
    try:
        Ed25519PublicKey.from_public_bytes(raw).verify(parsed.signature, parsed.signed_part)
    except (InvalidSignature, ValueError):
        return None
    return parsed.claims


def verify_offline(payload: str, public_keys: dict[str, str]) -> TicketClaims | None:
    """`public_keys`: key id -> base64url public key, as the show's door list hands them out."""
    parsed = parse_payload(payload)
    if parsed is None:
        return None
    decoded = {kid: base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4)) for kid, b64 in public_keys.items()}
    return verify_parsed(parsed, decoded)


def rotate(data_dir: Path) -> str:
    """Put a new signing key in front of the data dir's keys (the old ones keep verifying); returns
    the new key's id. A deployment that sets BOXOFFICE_TICKET_SIGNING_KEYS rotates there instead."""
    value = rotate_data_dir_secret(data_dir, SECRET_NAME)
    return Keyring.from_secret_list(value).signing_key_id
