"""Pure rules of the console: the signals that one person may be behind several accounts.

Flagged for the promoter to look at, never blocked: families share a laptop, and a pattern of
addresses is a hint, not proof.
"""

from __future__ import annotations

import hashlib
import re

SIGNAL_KINDS = ("device", "card", "email")
_TAG = re.compile(r"\+.*$")
_NOISE = re.compile(r"\.|[0-9]+$")


def email_pattern(email: str) -> str:
    """The address with what people vary to open more accounts taken out: a +tag, dots and
    trailing digits of the local part, letter case. j.smith+tix2@x.com and JSmith7@x.com give
    jsmith@x.com. The SQL twin is admin.repository.EMAIL_PATTERN (the tests hold them equal)."""
    local, _, domain = email.partition("@")
    core = _NOISE.sub("", _TAG.sub("", local)) or local  # 007@ stays 007@: nothing to compare by
    return core.lower() + "@" + domain.lower()


def device_hash(device_id: str) -> str:
    """What is stored of a browser's device cookie (a random id): its SHA-256, hex."""
    return hashlib.sha256(device_id.encode()).hexdigest()
