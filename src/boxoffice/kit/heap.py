"""Keep the cyclic garbage collector's full passes off the request path.

A full (generation 2) collection walks every tracked object of the process and stops the event
loop while it does. An API process holds ~180,000 objects right after building the app (FastAPI,
pydantic, SQLAlchemy, the routes), more once its pools, catalogs and caches fill, nearly all of
them alive until it exits; measured during `boxoffice bench flash-sale` (5,000 fans) each API
process ran ~30 full collections of ~190 ms (up to 370 ms), and every request in flight at that
moment (a buyer's hold among them) waited for it.

`settle()` runs once a process is ready to serve: one collection, then `gc.freeze()` moves every
survivor to the permanent generation, which collections never walk again (the CPython docs'
advice for servers: https://docs.python.org/3/library/gc.html#gc.freeze). What the process builds
afterwards (caches, connections) is still collected as usual. The young generation's threshold is
raised from 700 allocations to YOUNG_THRESHOLD: a request allocates a few hundred objects, so the
default collects several times a request on a busy loop, and every tenth of the older
generation's collections may start a full one. With both, an API process ran 2 full collections
in the same bench run (at startup, the settle's own among them), against ~30.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000


def settle() -> None:
    """Freeze what the process has built so far; call when startup is done, before traffic."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
