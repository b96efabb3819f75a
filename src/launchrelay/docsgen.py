"""Generated documentation: the JSON Schema and the reason catalogue, kept in docs/."""

from __future__ import annotations

import json
from pathlib import Path

from launchrelay.contract.codec import json_schema
from launchrelay.reasons import render_markdown


def generated_files() -> dict[str, str]:
    """Relative path under docs/ -> the exact text that should be committed there."""
    return {
        "schema/message.schema.json": json.dumps(json_schema(), indent=2, sort_keys=True) + "\n",
        "reasons.md": render_markdown(),
    }


def write_docs(docs_dir: Path) -> list[Path]:
    """Write every generated file; returns those that changed."""
    changed = []
    for rel, text in generated_files().items():
        path = docs_dir / rel
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed
