"""Who is on the other end of a request: its address and scheme, believing the forwarding headers
only from a trusted proxy (settings.trusted_proxies: the gateway).

Every front door that limits by address (logins, signups) or marks cookies `Secure` asks here, so
the API and the pages see the same client.
"""

from __future__ import annotations

from starlette.requests import HTTPConnection

from boxoffice.config import Settings

NO_ADDRESS = "unknown"  # an ASGI server that reports no peer (none of ours: uvicorn over TCP)


def _from_trusted_proxy(request: HTTPConnection, settings: Settings) -> bool:
    peer = request.client.host if request.client else None
    return peer is not None and peer in settings.trusted_proxies


def client_address(request: HTTPConnection, settings: Settings) -> str:
    """The peer, or the last X-Forwarded-For hop that is not a trusted proxy."""
    peer = request.client.host if request.client else None
    if peer is None:
        return NO_ADDRESS
    if peer not in settings.trusted_proxies:
        return peer
    hops = [hop.strip() for hop in request.headers.get("x-forwarded-for", "").split(",") if hop.strip()]
    for hop in reversed(hops):
        if hop not in settings.trusted_proxies:
            return hop[:64]
    return peer


def is_https(request: HTTPConnection, settings: Settings) -> bool:
    """Whether the browser reached us over HTTPS: the request's own scheme, or the trusted
    gateway's X-Forwarded-Proto (the gateway terminates TLS)."""
    if request.url.scheme in ("https", "wss"):
        return True
    if _from_trusted_proxy(request, settings):
        proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
        return proto == "https"
    return False
