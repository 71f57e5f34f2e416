from __future__ import annotations

import pytest

from cairn.domain.errors import ApiError
from cairn.domain.filters import parse_filter

JOB = {
    "jobId": "census_20240101",
    "state": "FAILED",
    "labels": {"team": "ml"},
    "createTime": "2024-05-01T10:00:00Z",
    "trainingInput": {"scaleTier": "BASIC"},
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", True),
        ("jobId:census*", True),
        ("jobId:rnn*", False),
        ("jobId:census* AND state:FAILED", True),
        ("jobId:census* AND state:SUCCEEDED", False),
        ("jobId:rnn* OR state:FAILED", True),
        ("state!=FAILED", False),
        ("NOT state:FAILED", False),
        ("-state:SUCCEEDED", True),
        ("labels.team=ml", True),
        ("labels.team=ops", False),
        ("labels:team", True),
        ('createTime>"2024-01-01T00:00:00Z"', True),
        ('createTime<"2024-01-01T00:00:00Z"', False),
        ("trainingInput.scaleTier=BASIC", True),
        ("training_input.scale_tier=BASIC", True),
        ("(jobId:x OR jobId:census*) state:FAILED", True),
        ("missing.field:x", False),
    ],
)
def test_filter_examples(text: str, expected: bool) -> None:
    assert parse_filter(text)(JOB) is expected


@pytest.mark.parametrize("text", ["jobId:", "(state:FAILED", "state FAILED", "jobId:a)", "=x"])
def test_malformed_filters_are_invalid_argument(text: str) -> None:
    with pytest.raises(ApiError) as error:
        parse_filter(text)
    assert error.value.field_violations[0].field == "filter"


@pytest.mark.parametrize(
    "text",
    ["(" * 5000, "NOT " * 3000 + "state:FAILED", "-" * 3000 + "state:FAILED", "x" * 9000],
)
def test_deep_or_huge_filters_are_invalid_argument_not_a_crash(text: str) -> None:
    """Each of these once raised RecursionError (a 500) or parsed in quadratic time."""
    with pytest.raises(ApiError) as error:
        parse_filter(text)
    assert error.value.field_violations[0].field == "filter"
    assert len(error.value.message) < 500  # the filter is not echoed in full


def test_nesting_within_the_bound_still_works() -> None:
    assert parse_filter("(" * 30 + "state:FAILED" + ")" * 30)(JOB) is True
    assert parse_filter("NOT NOT state:FAILED")(JOB) is True
