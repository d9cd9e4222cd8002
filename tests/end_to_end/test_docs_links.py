"""Every relative link in the docs resolves (files and #anchors), and each plugin README links the API contract."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted(
    path
    for pattern in ("*.md", "*/README.md", "*/*.md", "docs/*.md")
    for path in PROJECT_ROOT.glob(pattern)
    if not any(part.startswith(".") for part in path.relative_to(PROJECT_ROOT).parts)
)
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
PLUGINS = ("tap-kaon-insights", "tap-kahuna-logs", "target-kissmetrics")


def anchors(path: Path) -> set[str]:
    """GitHub's anchors of a Markdown file's headings."""
    found = set()
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", title)))
    return found


@pytest.mark.parametrize("doc", DOCS, ids=[str(d.relative_to(PROJECT_ROOT)) for d in DOCS])
def test_relative_links_resolve(doc: Path) -> None:
    broken = []
    for target in _LINK.findall(doc.read_text()):
        if re.match(r"[a-z]+:", target):
            continue  # an absolute URL
        file_part, _, anchor = target.partition("#")
        path = (doc.parent / file_part).resolve() if file_part else doc
        if (
            not path.exists()
            or PROJECT_ROOT not in (path, *path.parents)
            or (anchor and path.suffix == ".md" and anchor not in anchors(path))
        ):
            broken.append(target)
    assert broken == []


@pytest.mark.parametrize("plugin", PLUGINS)
def test_each_plugin_readme_links_the_api_contract(plugin: str) -> None:
    assert "../docs/api-contract.md#" in (PROJECT_ROOT / plugin / "README.md").read_text()
