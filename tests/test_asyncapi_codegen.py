"""A contract others can generate code from: the AsyncAPI document parses with @asyncapi/parser, Modelina makes
Java and TypeScript models of every message with a name of its own (no ``AnonymousSchema_N``, no two types
sharing a title), and both compile (javac, tsc --strict)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import yaml

import schemas
from launchrelay.agreements.config import load_config
from launchrelay.asyncapi import document

ROOT = Path(__file__).resolve().parent.parent
MESSAGES = {"PlannedLaunch", "Amendment", "Cancellation", "CompletedLaunch", "Acknowledgement", "Receipt",
            "StatusEvent"}  # fmt: skip


def _run(cmd: list[str], cwd: Path) -> str:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"{' '.join(cmd[:3])} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def test_every_schema_has_a_title_of_its_own() -> None:
    """Checked on the document itself: the generators name types by title."""
    doc = document(load_config(ROOT / "deploy/k8s/launchrelay.toml"))
    titles: dict[str, str] = {}

    def walk(node: object, where: str) -> None:
        if isinstance(node, dict):
            if "$ref" not in node and ("type" in node or "enum" in node or "const" in node or "anyOf" in node
                                       or "oneOf" in node):  # fmt: skip
                assert "title" in node, f"{where} has no title"
                assert titles.setdefault(node["title"], where) == where, f"{where} repeats {node['title']!r}"
            for k, v in node.items():
                walk(v, f"{where}/{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{where}/{i}")

    walk(doc["components"]["schemas"], "#/components/schemas")
    assert {"PolygonAreaKind", "CircleAreaKind", "OceanQuadrantAreaKind", "WaterBodyAreaKind"} <= set(titles)


def test_modelina_generates_java_and_typescript_that_compile(tmp_path: Path) -> None:
    tools = schemas.fetch_codegen()
    doc_path = tmp_path / "asyncapi.yaml"
    doc_path.write_text(yaml.safe_dump(document(load_config(ROOT / "deploy/k8s/launchrelay.toml")), sort_keys=False))
    shutil.copy(ROOT / "tests" / "codegen.mjs", tools / "codegen.mjs")
    names = json.loads(_run(["node", str(tools / "codegen.mjs"), str(doc_path), str(tmp_path / "out")], tools))
    for language in ("java", "typescript"):
        anonymous = [n for n in names[language] if n.startswith("AnonymousSchema")]
        assert not anonymous, f"{language}: {anonymous}"
        assert len(set(names[language])) == len(names[language]), f"{language}: a name repeats"
        assert set(names[language]) >= MESSAGES, MESSAGES - set(names[language])
    sources = sorted(str(p) for p in (tmp_path / "out" / "java").rglob("*.java"))
    _run(["javac", "-d", str(tmp_path / "classes"), *sources], tmp_path)
    assert (tmp_path / "classes" / "org" / "launchrelay" / "model" / "PlannedLaunch.class").exists()
    (tmp_path / "tsconfig.json").write_text(json.dumps({
        "compilerOptions": {"strict": True, "noEmit": True, "target": "es2020", "module": "es2020", "types": [],
                            "skipLibCheck": True},
        "include": ["out/ts/*.ts"],
    }))  # fmt: skip
    _run([str(tools / "node_modules" / ".bin" / "tsc"), "-p", str(tmp_path / "tsconfig.json")], tmp_path)
