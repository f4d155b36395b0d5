"""One error class per stable code; the OpenAPI error docs are generated from them."""

from __future__ import annotations

import pytest

from boxoffice import errors
from boxoffice.http.problems import problems


def test_each_code_has_one_class_with_one_status() -> None:
    classes = errors.all_error_classes()
    codes = [cls.code for cls in classes]
    assert len(codes) == len(set(codes)) and len(codes) > 30
    for cls in classes:
        assert errors.error_class(cls.code) is cls
        assert cls(None).status == cls.status and cls(None).code == cls.code
    with pytest.raises(TypeError):

        class _Twin(errors.Conflict):  # a second class for SEATS_TAKEN is refused at import
            code = "SEATS_TAKEN"


def test_responses_are_generated_from_the_classes() -> None:
    docs = problems(errors.SeatsTaken, errors.HoldExists, errors.ShowNotFound)
    assert docs[409]["description"] == "HOLD_EXISTS / SEATS_TAKEN"  # sorted: stable whatever the order given
    assert docs[404]["description"] == "SHOW_NOT_FOUND"
    assert "application/problem+json" in docs[409]["content"]
