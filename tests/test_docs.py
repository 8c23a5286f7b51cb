"""Every link between the repository's documents leads somewhere: a reader never follows a link
to a file or a heading that is not there."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SKIP = {".git", ".venv", ".bench-venv", ".pytest_cache", ".hypothesis", "var", "build", "node_modules"}
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _documents() -> list[Path]:
    return [p for p in REPO.rglob("*.md") if not SKIP & set(p.relative_to(REPO).parts)]


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_relative_links_lead_to_files_and_headings_that_exist() -> None:
    broken = []
    for document in _documents():
        for target in LINK.findall(document.read_text()):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            destination = (document.parent / path).resolve() if path else document
            if not destination.exists():
                broken.append(f"{document.relative_to(REPO)}: {target}")
            elif anchor and destination.is_file():
                headings = {_anchor(h) for h in re.findall(r"^#+ (.+)$", destination.read_text(), flags=re.M)}
                if anchor not in headings:
                    broken.append(f"{document.relative_to(REPO)}: {target} (no such heading)")
    assert _documents() and not broken, broken
