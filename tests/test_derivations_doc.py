"""docs/derivations.md and the primitives stay in step: a section per primitive, linked from it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nnet.autograd.ops import PRIMITIVES
from nnet.kernels import FUSED

DOC = Path(__file__).resolve().parents[1] / "docs" / "derivations.md"
ANCHOR = re.compile(r"derivations\.md#([A-Za-z0-9_-]+)")
MARKER = "**Primitives:**"


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lowercase, punctuation dropped, spaces as hyphens."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def sections(text: str) -> dict[str, str]:
    """Anchor -> body for every heading, numbering repeats as GitHub does (name, name-1, ...)."""
    out: dict[str, str] = {}
    slug, body = "", []
    in_code = False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        m = None if in_code else re.match(r"^(#{1,6})\s+(.*)$", line)
        if m:
            out[slug] = "\n".join(body)
            base = github_slug(m.group(2))
            slug, n = base, 0
            while slug in out:
                n += 1
                slug = f"{base}-{n}"
            body = []
        else:
            body.append(line)
    out[slug] = "\n".join(body)
    return out


def named_primitives(body: str) -> list[str]:
    """The class names on a section's ``**Primitives:**`` line (before any link to a file)."""
    names: list[str] = []
    for line in body.splitlines():
        if line.startswith(MARKER):
            names += re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", line.split("](")[0].split("([")[0])
    return names


SECTIONS = sections(DOC.read_text(encoding="utf-8"))
DOCUMENTED = PRIMITIVES + FUSED  # the fused fast paths have a section each too
NAMES = {cls.__name__ for cls in DOCUMENTED}


def test_slug_matches_github() -> None:
    assert github_slug("Add, sub, neg") == "add-sub-neg"
    assert github_slug("Log-softmax") == "log-softmax"
    assert github_slug("`Astype`") == "astype"


def test_every_primitive_has_exactly_one_section() -> None:
    seen: dict[str, list[str]] = {}
    for slug, body in SECTIONS.items():
        for name in named_primitives(body):
            seen.setdefault(name, []).append(slug)
    missing = sorted(NAMES - set(seen))
    assert not missing, f"primitives without a section in {DOC.name}: {missing}"
    twice = {n: s for n, s in seen.items() if len(s) > 1}
    assert not twice, f"primitives named by more than one section: {twice}"


def test_every_primitive_section_names_existing_primitives() -> None:
    for slug, body in SECTIONS.items():
        listed = named_primitives(body)
        if any(line.startswith(MARKER) for line in body.splitlines()):
            assert listed, f"section #{slug} has a {MARKER} line naming no class"
        unknown = [n for n in listed if n not in NAMES]
        assert not unknown, f"section #{slug} names {unknown}, which are not in PRIMITIVES or FUSED"


@pytest.mark.parametrize("cls", DOCUMENTED, ids=lambda c: c.__name__)
def test_docstring_anchor_leads_to_its_section(cls: type) -> None:
    anchors = ANCHOR.findall(cls.__doc__ or "")
    assert anchors, f"{cls.__name__}'s docstring does not link to docs/derivations.md#<section>"
    for anchor in anchors:
        assert anchor in SECTIONS, f"{cls.__name__} links to #{anchor}, which {DOC.name} lacks"
        assert cls.__name__ in named_primitives(SECTIONS[anchor]), (
            f"{cls.__name__} links to #{anchor}, but that section's {MARKER} line does not name it"
        )


def test_internal_links_resolve() -> None:
    text = DOC.read_text(encoding="utf-8")
    broken = sorted({a for a in re.findall(r"\]\(#([^)]+)\)", text) if a not in SECTIONS})
    assert not broken, f"links to missing sections: {broken}"
