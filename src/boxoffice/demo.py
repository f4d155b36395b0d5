"""Demo data for `boxoffice up` / `boxoffice seed-demo`, built through the domain services.

Seeded once: a second run finds the demo venue and changes nothing.
"""

from __future__ import annotations

from boxoffice.runtime import Runtime


async def seed_demo(runtime: Runtime) -> str:
    """Filled in by the catalog issue (venue, concerts, shows) and the auth issue (accounts)."""
    return "none yet"
