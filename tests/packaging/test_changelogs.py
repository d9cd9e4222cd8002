"""Each plugin's CHANGELOG.md is in Keep a Changelog form and its newest release is the plugin's version."""

from __future__ import annotations

import re
from datetime import date

import pytest

from tests.packaging.test_distributions import PACKAGES, PROJECT_ROOT, version_of

_RELEASE = re.compile(r"^## \[(\d+\.\d+\.\d+)\](?: - (\d{4}-\d{2}-\d{2}))?$", re.M)


@pytest.mark.parametrize("plugin", sorted(PACKAGES))
def test_the_newest_release_in_the_changelog_is_the_plugins_version(plugin: str) -> None:
    text = (PROJECT_ROOT / plugin / "CHANGELOG.md").read_text()
    assert text.startswith("# Changelog\n")
    headings = re.findall(r"^## .*$", text, re.M)
    assert headings[0] == "## [Unreleased]", "Keep a Changelog: [Unreleased] comes first"
    releases = _RELEASE.findall(text)
    assert len(releases) == len(headings) - 1, f"a heading is neither [Unreleased] nor [x.y.z] - date: {headings}"
    newest, released_on = releases[0]
    assert newest == version_of(PACKAGES[plugin])
    assert date.fromisoformat(released_on) <= date.today()
    versions = [tuple(int(part) for part in version.split(".")) for version, _ in releases]
    assert versions == sorted(versions, reverse=True), "newest first"
