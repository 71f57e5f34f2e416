"""gsutil's wildcard language as regular expressions."""

from __future__ import annotations

import pytest

from cairn.storage.wildcards import component_regex, path_regex, split_at_first_wildcard


@pytest.mark.parametrize(
    ("pattern", "matches", "misses"),
    [
        ("*.csv", ["a.csv", ".csv"], ["a.csv.gz", "d/a.csv"]),
        ("part-?", ["part-0"], ["part-10", "part-/"]),
        ("[ab]x", ["ax", "bx"], ["cx", "/x"]),
        ("[!ab]x", ["cx"], ["ax", "/x"]),
        ("[]]x", ["]x"], ["ax"]),
        ("[a-c]", ["b"], ["d"]),
        ("a[b", ["a[b"], ["ab"]),
        ("a.b+c(d)", ["a.b+c(d)"], ["aXb+c(d)"]),
    ],
)
def test_component_patterns(pattern: str, matches: list[str], misses: list[str]) -> None:
    regex = component_regex(pattern)
    for text in matches:
        assert regex.fullmatch(text), (pattern, text)
    for text in misses:
        assert not regex.fullmatch(text), (pattern, text)


def test_double_star_crosses_directories_and_may_match_none() -> None:
    assert path_regex("**.txt").fullmatch("a/b/c.txt")
    assert path_regex("**/c.txt").fullmatch("c.txt")
    assert path_regex("**/c.txt").fullmatch("a/b/c.txt")
    assert not path_regex("*/c.txt").fullmatch("a/b/c.txt")
    assert not component_regex("**").fullmatch("a/b")


def test_split_at_first_wildcard() -> None:
    assert split_at_first_wildcard(["a", "b*", "c"]) == (["a"], ["b*", "c"])
    assert split_at_first_wildcard(["a", "b"]) == (["a", "b"], [])
