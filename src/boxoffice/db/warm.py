"""The buyers' hot statements, planned on every pooled connection before traffic.

A PostgreSQL backend loads the catalog entries of every table and index a statement touches the
first time it plans it, and asyncpg looks up the parameter types it does not know on each new
connection. For the first buyers of a sale, on fresh pool connections, that doubled a hold's
wall-clock: 80 holds released at once into a fresh server (`boxoffice bench burst --attempts 80
--seats 1000 --trace-sample 1`) waited 210 ms on PostgreSQL cold and 40 ms warm.

A repository marks such a statement with `hot(...)` where it defines it; `Runtime.warm_up` runs
`warm()` on each connection it opens: an EXPLAIN of each with NULL parameters, which parses and
plans the statement (loading those catalogs and types) but executes nothing.
"""

from __future__ import annotations

import re

import asyncpg

HOT: list[str] = []
_PARAMETER = re.compile(r"\$(\d+)")


def hot(sql: str) -> str:
    """Register `sql` (a raw asyncpg statement with $n parameters) for warm-up; returns it."""
    HOT.append(sql)
    return sql


def parameter_count(sql: str) -> int:
    return max((int(n) for n in _PARAMETER.findall(sql)), default=0)


async def warm(conn: asyncpg.Connection) -> None:
    """Plan every hot statement once on this connection (EXPLAIN executes nothing)."""
    for sql in HOT:
        await conn.fetch("EXPLAIN " + sql, *([None] * parameter_count(sql)))
