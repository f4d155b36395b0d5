"""The one id bound: ids are PostgreSQL bigints, so anything outside 1..ID_MAX is a 422 at the
edge, never a database overflow (a 500). Pure (pydantic only): schemas, deps and lean share it."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

ID_MAX = 2**63 - 1
Id = Annotated[int, Field(ge=1, le=ID_MAX)]
