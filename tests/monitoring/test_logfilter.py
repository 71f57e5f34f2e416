"""Cloud Logging's filter language: what matches, what pushes down, and how errors read."""

from __future__ import annotations

import time
from typing import Any

import pytest

from cairn.domain.errors import ApiError, Code
from cairn.monitoring.logfilter import instant_us, parse_filter

REPLICA: dict[str, Any] = {
    "logName": "projects/p1/logs/master-replica-0",
    "resource": {
        "type": "ml_job",
        "labels": {"project_id": "p1", "job_id": "job_a", "task_name": "master-replica-0"},
    },
    "timestamp": "2026-11-30T10:00:01.5Z",
    "severity": "ERROR",
    "insertId": "abc-120",
    "textPayload": "ERROR:root:Loss went NaN at step 40",
    "labels": {"ml.googleapis.com/trial_id": "3"},
}
SERVICE: dict[str, Any] = {
    "logName": "organizations/cairn/logs/cairn.googleapis.com%2Fserver",
    "resource": {"type": "cairn_server", "labels": {}},
    "timestamp": "2026-11-29T23:59:59Z",
    "severity": "INFO",
    "jsonPayload": {"message": "Service log opened", "logger": "cairn", "count": 12},
}
ACCESS: dict[str, Any] = {
    "resource": {"type": "cloudml_model_version", "labels": {"model_id": "m", "version_id": "v1"}},
    "timestamp": "2026-11-30T12:00:00Z",
    "severity": "WARNING",
    "httpRequest": {"status": 429, "latency": "0.25s", "requestSize": "120"},
}


def matches(text: str, entry: dict[str, Any] = REPLICA) -> bool:
    return parse_filter(text).matches(entry)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", True),
        ("resource.type=ml_job", True),
        ('resource.type="ml_job"', True),
        ("resource.type=cloudml_model_version", False),
        ("resource.type!=ml_job", False),
        ('resource.labels.job_id="job_a" AND resource.labels.task_name="master-replica-0"', True),
        ("resource.labels.job_id=job_a resource.labels.task_name=worker-replica-0", False),
        ("severity>=ERROR", True),
        ("severity>=error", True),
        ("severity>ERROR", False),
        ("severity<=WARNING", False),
        ("severity=ERROR", True),
        ("severity>=500", True),
        ("severity>=CRITICAL", False),
        ('timestamp>="2026-11-30T10:00:00Z"', True),
        ('timestamp>="2026-11-30T10:00:02Z"', False),
        ('timestamp<"2026-11-30T11:00:00+01:00"', False),  # 10:00 UTC: not before
        ('timestamp<="2026-11-30T11:00:01.5+01:00"', True),
        ('timestamp>="2026-11-30"', True),
        ('textPayload:"went nan"', True),  # has: case-insensitive substring
        ('textPayload="went NaN"', False),  # equality is whole and exact
        ('textPayload=~"NaN at step \\d+$"', True),
        ('textPayload!~"NaN"', False),
        ('textPayload=~"^Loss"', False),
        ("textPayload:*", True),
        ("jsonPayload:*", False),
        ("NaN", True),  # a bare term searches every field
        ('"step 40"', True),
        ("nothing-like-this", False),
        ("-NaN", False),
        ("NOT NaN", False),
        ("NOT resource.type=cairn_server", True),
        ('labels."ml.googleapis.com/trial_id"=3', True),
        ('labels."ml.googleapis.com/trial_id"="4"', False),
        ('logName="projects/p1/logs/master-replica-0"', True),
        ("logName:master-replica", True),
        ('insertId="abc-120"', True),
        # OR binds tighter than AND, as in Cloud Logging: (a OR b) AND c.
        ("resource.type=cairn_server OR resource.type=ml_job severity=ERROR", True),
        ("resource.type=cairn_server OR resource.type=ml_job severity=INFO", False),
        ('(resource.type="ml_job" OR resource.type="cloudml_job") AND severity>=ERROR', True),
        ("(severity=INFO OR severity=DEBUG) OR NaN", True),
        ("NOT (severity=INFO OR severity=DEBUG)", True),
        ("-(severity=ERROR)", False),
        ("resource.labels.missing=x", False),
        ("resource.labels.missing!=x", True),
        ("a OR b OR NaN", True),
    ],
)
def test_matching(text: str, expected: bool) -> None:
    assert matches(text) is expected, text


def test_json_payloads_numbers_and_has_on_objects() -> None:
    assert matches("jsonPayload.count>10", SERVICE)
    assert matches("jsonPayload.count=12", SERVICE)
    assert not matches("jsonPayload.count<12", SERVICE)
    assert matches('jsonPayload.message:"opened"', SERVICE)
    assert matches("jsonPayload:opened", SERVICE)  # has on an object looks at its values
    assert matches("jsonPayload.logger=cairn severity<WARNING", SERVICE)
    assert matches("httpRequest.status>=400 httpRequest.status<500", ACCESS)
    assert not matches("httpRequest.status>=500", ACCESS)
    assert matches('httpRequest.latency="0.25s"', ACCESS)
    assert matches("resource.labels.version_id=v1 severity=WARNING", ACCESS)


def test_a_missing_timestamp_or_severity_never_matches_a_comparison() -> None:
    bare: dict[str, Any] = {"textPayload": "x"}
    assert not matches("severity>=DEFAULT", bare)
    assert not matches('timestamp>="2000-01-01T00:00:00Z"', bare)
    assert matches("-severity>=ERROR", bare)


def test_hints_push_down_only_what_every_match_must_have() -> None:
    hints = parse_filter(
        '(resource.type="ml_job" OR resource.type="cloudml_job") '
        'AND resource.labels.job_id="job_a" resource.labels.task_name=master-replica-0 '
        'timestamp>="2026-11-30T10:00:00Z" timestamp<"2026-11-30T11:00:00Z" severity>=ERROR'
    ).hints
    assert hints.resource_types == {"ml_job", "cloudml_job"}
    assert hints.job_ids == {"job_a"}
    assert hints.task_names == {"master-replica-0"}
    assert hints.since_us == instant_us("2026-11-30T10:00:00Z")
    assert hints.until_us == instant_us("2026-11-30T11:00:00Z")
    # Under OR or NOT nothing may be pushed down: other entries could match.
    loose = parse_filter('resource.labels.job_id="a" OR severity>=ERROR').hints
    assert loose.job_ids is None
    negated = parse_filter('NOT resource.type="ml_job" -resource.labels.model_id=m').hints
    assert negated.resource_types is None and negated.model_ids is None
    both = parse_filter("resource.labels.job_id=a resource.labels.job_id=b").hints
    assert both.job_ids == set()
    tighter = parse_filter('timestamp>="2026-11-30" timestamp>="2026-11-29"').hints
    assert tighter.since_us == instant_us("2026-11-30T00:00:00Z")


def test_string_comparisons_ignore_case_but_regular_expressions_do_not() -> None:
    # Cloud Logging's query language: comparisons of strings are case-insensitive, except
    # for regular expressions.
    assert matches("resource.labels.job_id=JOB_A")
    assert matches('textPayload="error:root:loss went nan at step 40"')
    assert not matches("resource.labels.job_id!=Job_A")
    assert matches('logName>="PROJECTS/P1/LOGS/M"')
    assert matches('textPayload=~"Loss"') and not matches('textPayload=~"loss"')
    hints = parse_filter("resource.labels.job_id=JOB_A resource.type=ML_JOB").hints
    assert hints.allows("job_ids", "job_a") and hints.allows("resource_types", "ml_job")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('resource.labels.job_id=("other" OR "job_a")', True),
        ("resource.labels.job_id=(other OR nope)", False),
        ('textPayload:("loss" AND "NaN")', True),
        ('textPayload:("loss" AND "inf")', False),
        ('textPayload:("inf" OR "loss" AND "step")', True),
        ("severity=(WARNING OR ERROR)", True),
    ],
)
def test_a_group_of_values_after_an_operator(text: str, expected: bool) -> None:
    assert matches(text) is expected


def test_a_group_of_values_pushes_down_like_its_or() -> None:
    hints = parse_filter("resource.labels.job_id=(a OR b) timestamp>=(2026-11-30)").hints
    assert hints.job_ids == {"a", "b"}
    assert hints.since_us == instant_us("2026-11-30T00:00:00Z")
    with pytest.raises(ApiError, match="OR, AND or '\\)'"):
        parse_filter("resource.labels.job_id=(a b)")
    with pytest.raises(ApiError, match="a value after '='"):
        parse_filter("resource.labels.job_id=()")


def test_timestamps_compare_to_the_nanosecond() -> None:
    entry = {"timestamp": "2026-11-30T10:00:00Z"}
    assert not matches('timestamp>"2026-11-30T10:00:00.0000001Z"', entry)
    assert matches('timestamp<"2026-11-30T10:00:00.000000001Z"', entry)
    assert not matches('timestamp="2026-11-30T10:00:00.000000500Z"', entry)
    assert matches('timestamp="2026-11-30T10:00:00.000000000Z"', entry)
    hints = parse_filter(
        'timestamp>"2026-11-30T10:00:00.0000001Z" timestamp<="2026-11-30T11:00:00.9999999Z"'
    ).hints
    assert hints.since_us == instant_us("2026-11-30T10:00:00.000001Z")
    assert hints.until_us == instant_us("2026-11-30T11:00:00.999999Z")


def test_hints_see_through_nested_ands_as_the_cli_wraps_a_filter() -> None:
    # `cairn logging read FILTER` sends `(FILTER) AND timestamp>=...`.
    wrapped = parse_filter(
        "(resource.labels.job_id=job_a (severity>=ERROR resource.type=ml_job)) "
        'AND timestamp>="2026-11-30T10:00:00Z"'
    ).hints
    assert wrapped.job_ids == {"job_a"}
    assert wrapped.resource_types == {"ml_job"}
    assert wrapped.since_us == instant_us("2026-11-30T10:00:00Z")
    assert parse_filter("(a=1 OR resource.labels.job_id=x) AND b=2").hints.job_ids is None


@pytest.mark.parametrize(
    ("text", "position", "expected"),
    [
        ("severity>=", 11, "a value after '>='"),
        ("(severity=ERROR", 16, "')'"),
        ("severity=ERROR)", 15, "AND, OR, NOT, a term or the end"),
        ("a AND", 6, "a term"),
        ("AND a", 1, "a term before AND"),
        ("a OR OR b", 6, "a term"),
        ('textPayload="unclosed', 13, "closing '\"'"),
        ('timestamp>="yesterday"', 1, "an RFC 3339 time"),
        ("severity>=LOUD", 1, "a severity"),
        ('x=~"(a)\\1"', 1, "a valid RE2 regular expression (invalid escape"),
        ('x=~"a(?=b)"', 1, "a valid RE2 regular expression"),
        ('x=~"("', 1, "a valid RE2 regular expression (missing )"),
        ('"quoted"=field', 1, "field names are not quoted"),
        ("x ! y", 3, "one of"),
        ("a.=b", 3, "a field name"),
    ],
)
def test_errors_name_the_position_and_what_was_expected(
    text: str, position: int, expected: str
) -> None:
    with pytest.raises(ApiError) as caught:
        parse_filter(text)
    error = caught.value
    assert error.code is Code.INVALID_ARGUMENT
    assert error.field_violations[0].field == "filter"
    assert f"at character {position}:" in error.message, error.message
    assert expected in error.message, error.message


def test_bounds_on_length_and_nesting() -> None:
    with pytest.raises(ApiError, match="at most 20000"):
        parse_filter("a " * 10_001)
    with pytest.raises(ApiError, match="nests more than 32"):
        parse_filter("(" * 40 + "a" + ")" * 40)
    with pytest.raises(ApiError, match="nests more than 32"):
        parse_filter("NOT " * 40 + "a")
    assert parse_filter("(" * 30 + "NaN" + ")" * 30).matches(REPLICA)


def test_words_inside_values_are_not_keywords_and_minus_inside_words_is_not_not() -> None:
    assert matches("resource.labels.task_name=master-replica-0")
    assert matches('textPayload:"NOT"') is False
    assert matches("ANDROID") is False  # a word starting with AND is a search term
    assert parse_filter("and or not").matches({"textPayload": "and or not"})


def test_string_escapes_keep_regular_expressions_as_written() -> None:
    quoted = {"textPayload": 'he said "hi" \\ then left'}
    assert parse_filter(r'textPayload:"said \"hi\" \\ then"').matches(quoted)
    assert parse_filter(r'textPayload=~"step \d+"').matches(REPLICA)
    assert not parse_filter(r'textPayload=~"step \d{3}"').matches(REPLICA)


@pytest.mark.parametrize(
    ("pattern", "text"),
    [
        # Each took seconds to minutes on a backtracking engine (the review's evidence).
        ("(.|\\w)*ZZZ", "2026-11-30 10:00:00 step 1 loss 0.001"),
        ("(\\s|.)*ZZZ", "x" * 40),
        ("a*a*b", "a" * 20_000),
        ("a*a*a*b", "a" * 20_000),
        (".*.*z", "x" * 20_000),
        ("(a|aa)+$", "a" * 20_000 + "!"),
        ("(a|a)*c", "a" * 40),
        ("(a|ab|aab)*c", "a" * 40),
        ("(a+)+b", "a" * 40),
        ("a.*b.*c.*d.*e", "abcd" * 5_000),
    ],
)
def test_no_regular_expression_takes_long(pattern: str, text: str) -> None:
    log_filter = parse_filter(f'textPayload=~"{pattern}"')
    started = time.perf_counter()
    assert not log_filter.matches({"textPayload": text})
    assert time.perf_counter() - started < 0.5  # linear in the text: milliseconds


@pytest.mark.parametrize(
    ("line", "severity"),
    [
        ("ERROR:root:boom", "ERROR"),
        ("WARNING:tensorflow:deprecated", "WARNING"),
        ("2026-11-30 10:00:00,123 - trainer - ERROR - bad batch", "ERROR"),
        ("2026-11-30T10:00:00Z [CRITICAL] out of memory", "CRITICAL"),
        ("E1130 10:00:00.000000  4242 kernel.cc:99] failed", "ERROR"),
        ("W1130 10:00:00.000000  4242 kernel.cc:99] slow", "WARNING"),
        ("Traceback (most recent call last):", "ERROR"),
        ("[warn] low disk", "INFO"),  # lower case is no level word
        ("epoch 3 loss 0.25", "INFO"),
        ("the ERROR rate is 0", "INFO"),  # a level word later in plain text is just a word
        ("2 ERROR samples dropped", "INFO"),  # after a number that is no time, too
        ("10 WARNING: not a level", "INFO"),
        ("2026-11-30 10:00:00 ERROR disk full", "ERROR"),
        ("10:00:00.123 [WARNING] slow", "WARNING"),
        ("2026-11-30T10:00:00.5+01:00 CRITICAL stopping", "CRITICAL"),
    ],
)
def test_the_severity_of_a_text_line(line: str, severity: str) -> None:
    from cairn.monitoring.logentries import severity_of_text

    assert severity_of_text(line, "INFO") == severity
