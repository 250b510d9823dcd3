"""mkdocs hooks for the documentation site (mkdocs.yml): the home page is the README's overview; a
guide added to docs/ joins the nav's Guides by itself (titled by its first heading); links from the
guides to files outside docs/ (source files, the benchmarks' README) become plain text, since the
site holds only docs/. A link to a file that does not exist is left as it is, so
``mkdocs build --strict`` reports it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent
LINK = re.compile(r"\[([^\]]+)\]\(([^)#\s]+)(#[^)\s]*)?\)")


def on_config(config: Any) -> Any:
    """Append each docs/*.md that the nav does not list to its Guides section."""
    listed = set(re.findall(r"[\w/.-]+\.md", repr(config["nav"])))
    guides = next(entry["Guides"] for entry in config["nav"] if "Guides" in entry)
    for page in sorted(Path(config["docs_dir"]).glob("*.md")):
        if page.name not in listed:
            heading = re.search(r"^# (.+)$", page.read_text(encoding="utf-8"), re.M)
            guides.append({heading.group(1) if heading else page.stem: page.name})
    return config


def on_files(files: Files, config: Any) -> Files:
    """Add ``index.md``, the README with its links made relative to docs/."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    files.append(File.generated(config, "index.md", content=_from_readme(text)))
    return files


def _from_readme(text: str) -> str:
    def relink(m: re.Match[str]) -> str:
        label, target, anchor = m.group(1), m.group(2), m.group(3) or ""
        if "://" in target:
            return m.group(0)
        if target.startswith("docs/"):
            return f"[{label}]({target[len('docs/') :]}{anchor})"
        return label if (ROOT / target).exists() else m.group(0)

    return LINK.sub(relink, text)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """Links from a guide to repository files outside docs/ become their text."""
    docs = Path(config["docs_dir"]).resolve()
    source = page.file.abs_src_path
    if source is None:  # the generated home page, relinked above
        return markdown
    here = Path(source).parent

    def relink(m: re.Match[str]) -> str:
        target = m.group(2)
        if "://" in target:
            return m.group(0)
        path = (here / target).resolve()
        outside = docs not in path.parents and path != docs
        return m.group(1) if outside and path.exists() else m.group(0)

    return LINK.sub(relink, markdown)
