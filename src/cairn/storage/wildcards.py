"""gsutil's wildcard language, translated to regular expressions.

`*` matches within one path component, `**` across components (`**/` also matches no
directory at all), `?` one character, `[abc]`/`[!abc]` a character class. fsspec's own
glob refuses `**` inside a component (`gs://b/**.txt`), which gsutil users write, so
Cairn matches with these expressions instead.
"""

from __future__ import annotations

import re

from cairn.storage.uris import has_wildcard


def split_at_first_wildcard(parts: list[str]) -> tuple[list[str], list[str]]:
    """Literal leading components (walked directly) and the rest (matched)."""
    for index, part in enumerate(parts):
        if has_wildcard(part):
            return parts[:index], parts[index:]
    return parts, []


def component_regex(pattern: str) -> re.Pattern[str]:
    """A regex for one path component (no `/`): `**` behaves like `*` here."""
    return re.compile(_translate(pattern, star_star="[^/]*"))


def path_regex(pattern: str) -> re.Pattern[str]:
    """A regex for a relative path of several components, where `**` crosses `/`."""
    return re.compile(_translate(pattern, star_star=".*"))


def _translate(pattern: str, star_star: str) -> str:
    out: list[str] = []
    index = 0
    while index < len(pattern):
        character = pattern[index]
        if pattern.startswith("**/", index) and star_star == ".*":
            out.append("(?:.*/)?")
            index += 3
        elif pattern.startswith("**", index):
            out.append(star_star)
            index += 2
        elif character == "*":
            out.append("[^/]*")
            index += 1
        elif character == "?":
            out.append("[^/]")
            index += 1
        elif character == "[":
            translated, index = _character_class(pattern, index)
            out.append(translated)
        else:
            out.append(re.escape(character))
            index += 1
    return "".join(out)


def _character_class(pattern: str, start: int) -> tuple[str, int]:
    """Translate `[...]` beginning at `start`; an unclosed `[` is a literal bracket."""
    index = start + 1
    negate = index < len(pattern) and pattern[index] in "!^"
    if negate:
        index += 1
    body_start = index
    if index < len(pattern) and pattern[index] == "]":
        index += 1  # a leading ']' is a member, as in shell globs
    while index < len(pattern) and pattern[index] != "]":
        index += 1
    if index >= len(pattern):
        return re.escape("["), start + 1
    body = pattern[body_start:index].replace("\\", "\\\\").replace("[", "\\[")
    body = body.replace("]", "\\]") if body.startswith("]") else body
    # A class never matches the separator, so `[!a]` cannot cross directories.
    translated = f"[^/{body}]" if negate else f"(?!/)[{body}]"
    return translated, index + 1
