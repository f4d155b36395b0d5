"""The hot routes' query parsing (http.hot.query_params) reads a query string exactly as
Starlette's QueryParams does, or declines (None) and leaves it to Starlette."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from starlette.datastructures import QueryParams

from boxoffice.http.hot import query_params

# Names, values and separators a client can send, escapes and oddities included.
_TOKENS = [*"ab_id01239=&%+ ;é", "%20", "%3D", "%26"]
_piece = st.lists(st.sampled_from(_TOKENS), max_size=12).map("".join)


@given(st.lists(_piece, max_size=6).map("&".join))
def test_the_fast_reading_is_starlettes(query: str) -> None:
    raw = query.encode("utf-8")
    fast = query_params(raw)
    if fast is None:
        assert b"%" in raw or b"+" in raw
    else:
        assert fast == dict(QueryParams(raw))


def test_a_polls_query_and_its_edge_cases() -> None:
    assert query_params(b"concert_id=1&show_id=22") == {"concert_id": "1", "show_id": "22"}
    assert query_params(b"show_id=1&show_id=2&&flag") == {"show_id": "2", "flag": ""}  # the last wins
    assert query_params(b"") == {}
    assert query_params(b"show_id=%31") is None and query_params(b"a=b+c") is None
