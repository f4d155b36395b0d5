"""The seat map of a show: built from PostgreSQL once per version (single-flight through a Redis
lock), kept in Redis (catalog/cache.py), refreshed from the seat statuses only (a show's layout
never changes); each API process renders it once per version (single flight, `view`) and serves
the layout (immutable, named by its digest) apart from the statuses (small, changing), both as
encoded bytes with a strong ETag."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import time
import uuid
from dataclasses import dataclass

import structlog
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from boxoffice.catalog import cache, repository
from boxoffice.catalog.schemas import (
    SeatStatus,
)
from boxoffice.errors import (
    ShowNotFound,
)
from boxoffice.kit.localcache import LocalCache
from boxoffice.runtime import Runtime

log = structlog.get_logger("boxoffice.catalog")

COLD_READ_WAIT_SECONDS = 5.0  # a reader waits this long for another process's rebuild, then reads itself
COLD_READ_POLL_SECONDS = 0.02


async def seat_statuses(session: AsyncSession, show_id: int) -> tuple[int, str]:
    """(first seat id, one letter per seat in id order: A/T/R) straight from PostgreSQL."""
    summary = await repository.fetch_status_summary(session, show_id)
    if summary["n"] == 0:
        return 0, ""
    if summary["n"] == summary["top"] - summary["base"] + 1:
        return int(summary["base"]), str(summary["chars"])
    pairs = await repository.fetch_seat_statuses(session, show_id)
    return int(summary["base"]), cache.status_string(
        int(summary["base"]), summary["top"] - summary["base"] + 1, pairs
    ).decode()


async def _load_seat_map(runtime: Runtime, show_id: int) -> cache.BuiltSeatMap:
    async with runtime.sessions() as session:
        rows = await repository.fetch_seat_rows(session, show_id)
        if not rows:
            if not await repository.show_exists(session, show_id):
                raise ShowNotFound(f"Show {show_id} not found", show_id=show_id)
    return cache.build_seat_map([cache.SeatRow(*r) for r in rows])


async def _load_statuses(runtime: Runtime, show_id: int, base: int, span: int) -> bytes | None:
    """The current statuses aligned with a cached layout, or None when the layout no longer fits."""
    async with runtime.sessions() as session:
        summary = await repository.fetch_status_summary(session, show_id)
        if summary["n"] == 0 or summary["base"] != base or summary["top"] - base + 1 != span:
            return None
        if summary["n"] == span:  # contiguous ids (the usual case): PostgreSQL built the string
            return str(summary["chars"]).encode()
        pairs = await repository.fetch_seat_statuses(session, show_id)
    return cache.status_string(base, span, pairs)


async def _rebuild(runtime: Runtime, show_id: int, token: str, gen: str) -> cache.BuiltSeatMap | None:
    """Holding the lock: read the whole map from PostgreSQL and store it. -> the map to serve when it
    was invalidated meanwhile (so not stored), else None (the caller re-reads Redis)."""
    try:
        built = await _load_seat_map(runtime, show_id)
    except BaseException:
        await cache.release_lock(runtime.redis, show_id, token)
        raise
    version = await cache.store_seat_map(runtime.redis, show_id, token, gen, built, full=True)
    return built if version is None else None


async def _refresh(runtime: Runtime, show_id: int, token: str, gen: str, cached: cache.CachedSeatMap) -> None:
    """Holding the lock: re-read only the statuses (the layout of a show never changes)."""
    try:
        base = await cache.cached_base(runtime.redis, show_id)
        status = None if base is None else await _load_statuses(runtime, show_id, base, len(cached.status))
    except BaseException:
        await cache.release_lock(runtime.redis, show_id, token)
        raise
    if status is None or base is None:
        await cache.release_lock(runtime.redis, show_id, token)
        await cache.invalidate_seat_map(runtime.redis, show_id)
        return
    built = cache.BuiltSeatMap(base=base, layout=cached.layout, status=status)
    await cache.store_seat_map(runtime.redis, show_id, token, gen, built, full=False)


async def _read(runtime: Runtime, show_id: int, *, layout: bool) -> cache.CachedSeatMap:
    """The map as Redis keeps it (built from PostgreSQL when cold or stale, see _seat_map_cached).
    Redis down: read PostgreSQL directly (the map is a cache; losing it loses nothing)."""
    try:
        return await _seat_map_cached(runtime, show_id, layout=layout)
    except RedisError:
        log.warning("seat_map_cache_unavailable", show_id=show_id)
        return _unstored(await _load_seat_map(runtime, show_id))


def _unstored(built: cache.BuiltSeatMap) -> cache.CachedSeatMap:
    # gen "" matches no stored generation: the next check reads the map again.
    return cache.CachedSeatMap(built.layout, built.status, 0, fresh=False, base=built.base, gen="")


async def _seat_map_cached(runtime: Runtime, show_id: int, *, layout: bool) -> cache.CachedSeatMap:
    """Cold: one reader (Redis SET NX lock) rebuilds from PostgreSQL while the others wait for it, so
    a stampede of cold reads costs one query. Warm but older than FRESH_MS: one reader re-reads the
    statuses while the others serve the cached copy (patched on every committed change anyway)."""
    redis = runtime.redis
    token = uuid.uuid4().hex
    loop = asyncio.get_running_loop()
    deadline = loop.time() + COLD_READ_WAIT_SECONDS
    refreshed = False
    while True:
        cached = await cache.read_seat_map(redis, show_id, layout=layout)
        if cached is not None and (cached.fresh or refreshed):
            return cached
        gen = await cache.try_lock(redis, show_id, token)
        if gen is None:
            if cached is not None:  # another reader is refreshing: this copy is patched anyway
                return cached
        else:
            # Double-check under the lock: the previous holder may have stored it just now.
            current = await cache.read_seat_map(redis, show_id, layout=layout)
            if current is not None and current.fresh:
                await cache.release_lock(redis, show_id, token)
                return current
            if current is not None:
                refreshed = True
                await _refresh(runtime, show_id, token, gen, current)
                continue
            built = await _rebuild(runtime, show_id, token, gen)
            if built is not None:
                return _unstored(built)
            layout = True  # rebuilt: the layout may be new
            continue
        if loop.time() > deadline:
            # The rebuilder is stuck: answer from PostgreSQL rather than keep the fan waiting.
            return _unstored(await _load_seat_map(runtime, show_id))
        await asyncio.sleep(COLD_READ_POLL_SECONDS)


# ---------------------------------------------------------------- the process's rendered copy
# Every API process keeps, per show, the layout (immutable: parsed and encoded once per layout
# generation) and the statuses of the last version it saw, with the answers already encoded. A
# read asks Redis whether the version moved at most every CHECK_SECONDS (one MGET); concurrent
# readers of a show share one check and one render (single flight). A seat change this process
# committed is seen at once (`changed`); another process's within CHECK_SECONDS (the seat stream
# says it sooner). The hold statement stays the authority: a map a moment old costs a 409, never
# a double sale.

CHECK_SECONDS = 0.05
WAITLIST_SECONDS = 1.0  # how long "fans wait on this show's waitlist" is trusted
LAYOUT_MAX_AGE = 31_536_000  # a layout named by its digest never changes: cache it for a year
_STATUS_FIELD = b',"status":"'


@dataclass(frozen=True, slots=True)
class Layout:
    """A show's seats without their statuses: what never changes between two layout generations."""

    show_id: int
    base: int
    span: int
    gen: str
    digest: str  # the layout's version: names it in URLs and ETags
    frags: list[bytes]  # per id from `base`: the seat's JSON up to its status (b"" in a gap)
    seats: list[tuple[int, str, int, int, int]]  # (id, section, row, number, price) in id order
    body: bytes  # {show_id, layout, base, seats: [{id, section, row, number, price}]}

    @property
    def etag(self) -> str:
        return f'"l.{self.digest}"'


def _layout(show_id: int, cached: cache.CachedSeatMap, known: Layout | None) -> Layout:
    digest = hashlib.blake2b(cached.layout, digest_size=10).hexdigest()
    if known is not None and known.digest == digest:
        return known if known.gen == cached.gen else dataclasses.replace(known, gen=cached.gen)
    frags = cached.layout.split(b"\n") if cached.layout else []
    plain = [f[: -len(_STATUS_FIELD)] + b"}" for f in frags if f]
    listed = b",".join(plain)
    seats = [(s["id"], s["section"], s["row"], s["number"], s["price"]) for s in json.loads(b"[%b]" % listed)]
    body = b'{"show_id":%d,"layout":"%b","base":%d,"seats":[%b]}' % (
        show_id,
        digest.encode(),
        cached.base or 0,
        listed,
    )
    return Layout(show_id, cached.base or 0, len(frags), cached.gen, digest, frags, seats, body)


@dataclass(slots=True)
class View:
    """One version of a show's seat map as this process serves it, encoded once."""

    layout: Layout
    version: int
    raw: bytes  # one byte per id from layout.base: A / T / R, `-` in a gap (as PostgreSQL says)
    waitlist: bool  # fans wait on the show's waitlist: the AVAILABLE seats are owed to them
    status: bytes  # what the crowd is shown: owed seats as T (held)
    etag: str  # strong: the layout, the version and the statuses shown
    status_body: bytes
    seen: int = 0  # the last version Redis named that had these statuses (versions can change nothing)
    _full: dict[str | None, bytes] = dataclasses.field(default_factory=dict)

    def full(self, only: SeatStatus | None = None) -> bytes:
        """The whole map {show_id, version, seats: [...]} (the compatible answer), rendered once."""
        body = self._full.get(only)
        if body is None:
            want = ord(cache.STATUS_CHAR[only]) if only else None
            pairs = zip(self.layout.frags, self.status, strict=False)
            parts = [f + cache.SUFFIX[c] for f, c in pairs if c != cache.GAP and (want is None or c == want)]
            body = self._full[only] = b'{"show_id":%d,"version":%d,"seats":[%b]}' % (
                self.layout.show_id,
                self.version,
                b",".join(parts),
            )
        return body

    def full_etag(self, only: SeatStatus | None = None) -> str:
        return f'"m.{self.etag[1:-1]}.{cache.STATUS_CHAR[only] if only else "all"}"'


def _view(layout: Layout, version: int, raw: bytes, waitlist: bool) -> View:
    shown = raw.replace(b"A", b"T") if waitlist else raw
    mark = hashlib.blake2b(shown, digest_size=8).hexdigest()
    etag = f'"s.{layout.digest}.{version}.{mark}{".w" if waitlist else ""}"'
    body = b'{"show_id":%d,"version":%d,"layout":"%b","base":%d,"waitlist":%b,"status":"%b"}' % (
        layout.show_id,
        version,
        layout.digest.encode(),
        layout.base,
        b"true" if waitlist else b"false",
        shown,
    )
    return View(layout, version, raw, waitlist, shown, etag, body, seen=version)


class SeatMaps:
    """The process's views, one per show (a runtime component: dropped with the local caches)."""

    def __init__(self) -> None:
        self.views: dict[int, View] = {}
        self.checked: dict[int, float] = {}
        self.changes: dict[int, int] = {}
        self.loading: dict[int, asyncio.Future[View]] = {}
        self.epoch = 0  # bumped by discard: a load that started before it keeps nothing
        self.waitlists: LocalCache[int, bool] = LocalCache(WAITLIST_SECONDS, 10_000)
        self.ranks: dict[tuple[int, str], dict[str, int]] = {}  # (show, layout digest) -> sections
        self.renders = 0  # views built (tests and the bench read it)

    def discard(self) -> None:
        self.epoch += 1
        self.loading.clear()
        self.views.clear()
        self.checked.clear()
        self.ranks.clear()
        self.waitlists = LocalCache(WAITLIST_SECONDS, 10_000)

    async def aclose(self) -> None:
        self.discard()


def _maps(runtime: Runtime) -> SeatMaps:
    return runtime.component("catalog.seat_maps", SeatMaps)


def changed(runtime: Runtime, show_id: int) -> None:
    """This process committed a seat change of the show: its next read checks the version."""
    maps = _maps(runtime)
    maps.checked.pop(show_id, None)
    maps.changes[show_id] = maps.changes.get(show_id, 0) + 1


async def view(runtime: Runtime, show_id: int) -> View:
    """The show's current view (404 SHOW_NOT_FOUND for no show); see the section comment."""
    maps = _maps(runtime)
    current = maps.views.get(show_id)
    if current is not None and time.monotonic() - maps.checked.get(show_id, 0.0) < CHECK_SECONDS:
        return current
    task = maps.loading.get(show_id)
    if task is None:
        # One load per show at a time, in a task of its own: a reader that gives up (a client
        # that disconnects) does not cancel it for the others.
        task = asyncio.ensure_future(_load_and_keep(runtime, maps, show_id, current))
        task.add_done_callback(_retrieved)
        maps.loading[show_id] = task
    return await asyncio.shield(task)


def _retrieved(task: asyncio.Future[View]) -> None:
    if not task.cancelled():
        task.exception()  # every reader has it; nobody logs "never retrieved"


async def _load_and_keep(runtime: Runtime, maps: SeatMaps, show_id: int, current: View | None) -> View:
    started, seen, epoch = time.monotonic(), maps.changes.get(show_id, 0), maps.epoch
    try:
        found = await _load_view(runtime, maps, show_id, current)
    finally:
        maps.loading.pop(show_id, None)
    if maps.epoch == epoch:  # not discarded meanwhile (the data it was read from may be gone)
        maps.views[show_id] = found
        # A change committed here while we read may be missing from what we read: check next time.
        maps.checked[show_id] = started if maps.changes.get(show_id, 0) == seen else 0.0
    return found


async def _waitlisted(runtime: Runtime, maps: SeatMaps, show_id: int) -> bool:
    async def load() -> bool:
        async with runtime.sessions() as session:
            return await repository.waitlist_waiting(session, show_id)

    return await maps.waitlists.get_or_load(show_id, load)


async def _load_view(runtime: Runtime, maps: SeatMaps, show_id: int, current: View | None) -> View:
    if current is not None:
        try:
            version, fresh, gen = await cache.read_marks(runtime.hot_redis, show_id)
        except (RedisError, OSError, TimeoutError):
            version, fresh, gen = -1, False, ""
        if fresh and version == current.seen and gen == current.layout.gen:
            waitlist = await _waitlisted(runtime, maps, show_id)
            if waitlist == current.waitlist:
                return current
            maps.renders += 1
            return _view(current.layout, version, current.raw, waitlist)
    known = current.layout if current is not None else None
    got = await _read(runtime, show_id, layout=known is None)
    if (
        known is not None
        and not got.layout
        and (got.gen != known.gen or got.base != known.base or len(got.status) != known.span)
    ):
        got = await _read(runtime, show_id, layout=True)
    layout = known if not got.layout and known is not None else _layout(show_id, got, known)
    waitlist = await _waitlisted(runtime, maps, show_id)
    if current is not None and current.layout is layout and current.raw == got.status:
        if current.waitlist == waitlist:
            # A version that changed nothing (a refresh from PostgreSQL): the same bytes, the same
            # ETag (the version shown is the one that first had these statuses).
            current.seen = got.version
            return current
    maps.renders += 1
    return _view(layout, got.version, got.status, waitlist)


async def seat_map(runtime: Runtime, show_id: int, status: SeatStatus | None = None) -> bytes:
    """The seat map as JSON bytes {show_id, version, seats} (the whole map, statuses as the crowd
    sees them), from the process's view."""
    return (await view(runtime, show_id)).full(status)


async def layout_of(runtime: Runtime, show_id: int) -> Layout:
    return (await view(runtime, show_id)).layout


async def spots(
    runtime: Runtime, show_id: int, section: str | None
) -> list[tuple[int, str, int, int, int, int, bool]]:
    """Best available's view of the seats: (id, section, section rank, row, number, price, free),
    from the process's map (the hold statement decides anyway); free = AVAILABLE right now."""
    found = await view(runtime, show_id)
    layout, raw = found.layout, found.raw
    ranks = await _ranks(runtime, layout)
    free = ord("A")
    return [
        (i, sec, ranks.get(sec, 0), row, number, price, raw[i - layout.base] == free)
        for i, sec, row, number, price in layout.seats
        if section is None or sec == section
    ]


async def _ranks(runtime: Runtime, layout: Layout) -> dict[str, int]:
    """The show's sections in the venue's order (lower is better), once per layout and process."""
    maps = _maps(runtime)
    key = (layout.show_id, layout.digest)
    found = maps.ranks.get(key)
    if found is None:
        async with runtime.sessions() as session:
            found = maps.ranks[key] = await repository.section_ranks(session, layout.show_id)
    return found
