"""The README and docs/*.md: every relative link names a file that exists, every
#anchor a heading of its page, with GitHub's slugs (what a reader clicks on)."""

import re
from pathlib import Path

import pytest

from tests.conftest import once_per_suite

pytestmark = once_per_suite

ROOT = Path(__file__).resolve().parent.parent
# Whatever pages exist: a new docs/*.md is checked without being listed here.
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
INLINE_CODE = re.compile(r"`+[^`]*`+")
# [text](target) and ![alt](target), an optional "title" after the target.
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
LINK_TEXT = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)


def prose_lines(text: str):
    """(line number, line) outside fenced code blocks."""
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield number, line


def slug(heading: str) -> str:
    """GitHub's anchor for a heading (github-slugger): the rendered text in lower
    case, punctuation but '-' and '_' dropped, each space a hyphen."""
    text = LINK_TEXT.sub(r"\1", heading).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading's anchor; a repeated heading gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for _, line in prose_lines(page.read_text()):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def broken_links(page: Path) -> list[str]:
    """'line N: target (why)' for each relative link or anchor that goes nowhere."""
    broken = []
    for number, line in prose_lines(page.read_text()):
        for target in LINK.findall(INLINE_CODE.sub("", line)):
            if EXTERNAL.match(target):
                continue
            path, _, anchor = target.partition("#")
            resolved = (page.parent / path).resolve() if path else page
            if not resolved.exists():
                broken.append(f"line {number}: {target} (no such file)")
            elif anchor and resolved.suffix != ".md":
                broken.append(f"line {number}: {target} (an anchor in a page that is not Markdown)")
            elif anchor and anchor not in anchors(resolved):
                broken.append(f"line {number}: {target} (no such heading)")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_and_anchor_resolves(page):
    assert broken_links(page) == []


def test_slugs_are_githubs():
    assert slug("check_sync: the monitor") == "check_sync-the-monitor"
    assert slug("The commit guard (PostgreSQL)") == "the-commit-guard-postgresql"
    assert slug("Try it: `make demo`") == "try-it-make-demo"
    assert slug("check_sync --repair") == "check_sync---repair"
    assert slug("Nagios / Icinga") == "nagios--icinga"
    assert slug("See [the admin](admin.md)") == "see-the-admin"


def test_a_missing_file_a_missing_heading_and_a_code_block_heading_are_found(tmp_path):
    (tmp_path / "other.md").write_text("# Other\n\n## Twice\n\n## Twice\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n"
        "```python\n# not a heading\n[not a link](gone.md)\n```\n\n"
        "[ok](other.md#twice-1) [ok](#page) [ok](https://example.org/x) `[code](gone.md)`\n"
        "[gone](gone.md) [no heading](other.md#twice-2) [code heading](#not-a-heading)\n"
        "![picture](missing.png)\n"
    )
    assert broken_links(page) == [
        "line 9: gone.md (no such file)",
        "line 9: other.md#twice-2 (no such heading)",
        "line 9: #not-a-heading (no such heading)",
        "line 10: missing.png (no such file)",
    ]
