"""The browser's own JSON and stream routes under /web/ (cookie session instead of Bearer tokens).

EventSource cannot send headers and no token may sit where a script can read it, so the pages'
scripts call these: the same service functions as the JSON API, authenticated by the session
cookies (and the show's admission-token cookie), writes checked for CSRF. Errors stay problem+json.
"""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
