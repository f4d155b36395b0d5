"""The console's signals of one person behind several accounts: the email pattern, the device hash."""

from __future__ import annotations

from boxoffice.admin import rules


def test_the_email_pattern_drops_what_people_vary() -> None:
    assert rules.email_pattern("j.smith+tix2@Example.com") == "jsmith@example.com"
    assert rules.email_pattern("JSmith7@example.com") == "jsmith@example.com"
    assert rules.email_pattern("jsmith@other.com") == "jsmith@other.com"  # another domain stays apart
    assert rules.email_pattern("anna@example.com") != rules.email_pattern("jsmith@example.com")
    assert rules.email_pattern("007@example.com") == "007@example.com"  # nothing left: kept whole


def test_the_device_is_kept_hashed() -> None:
    h = rules.device_hash("a" * 32)
    assert len(h) == 64 and "a" * 32 not in h and h == rules.device_hash("a" * 32)
