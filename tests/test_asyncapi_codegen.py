"""A contract others can generate code from: the AsyncAPI document parses with @asyncapi/parser, Modelina makes
Java and TypeScript models of every message with a name of its own (no ``AnonymousSchema_N``, no two types
sharing a title), both compile (javac, tsc --strict), and the Java, TypeScript and Go models parse every message
without losing a value."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import yaml

import schemas
from launchrelay.agreements.config import load_config
from launchrelay.asyncapi import document
from launchrelay.contract.messages import MessageType

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


def _generate(tmp_path: Path) -> tuple[Path, dict[str, list[str]]]:
    tools = schemas.fetch_codegen()
    doc_path = tmp_path / "asyncapi.yaml"
    doc_path.write_text(yaml.safe_dump(document(load_config(ROOT / "deploy/k8s/launchrelay.toml")), sort_keys=False))
    shutil.copy(ROOT / "tests" / "codegen.mjs", tools / "codegen.mjs")
    names = json.loads(_run(["node", str(tools / "codegen.mjs"), str(doc_path), str(tmp_path / "out")], tools))
    return tools, names


def _javac(tmp_path: Path, *extra: str) -> str:
    """Compile the generated Java models (and ``extra`` sources) against Jackson; the class path to run them."""
    classpath = f"{schemas.jackson_libs()}/*"
    sources = sorted(str(p) for p in (tmp_path / "out" / "java").rglob("*.java"))
    _run(["javac", "-cp", classpath, "-d", str(tmp_path / "classes"), *sources, *extra], tmp_path)
    return f"{classpath}:{tmp_path / 'classes'}"


def test_modelina_generates_java_and_typescript_that_compile(tmp_path: Path) -> None:
    tools, names = _generate(tmp_path)
    for language in ("java", "typescript"):
        anonymous = [n for n in names[language] if n.startswith("AnonymousSchema")]
        assert not anonymous, f"{language}: {anonymous}"
        assert len(set(names[language])) == len(names[language]), f"{language}: a name repeats"
        assert set(names[language]) >= MESSAGES, MESSAGES - set(names[language])
    _javac(tmp_path)
    assert (tmp_path / "classes" / "org" / "launchrelay" / "model" / "PlannedLaunch.class").exists()
    (tmp_path / "tsconfig.json").write_text(json.dumps({
        "compilerOptions": {"strict": True, "noEmit": True, "target": "es2020", "module": "es2020", "types": [],
                            "skipLibCheck": True},
        "include": ["out/ts/*.ts"],
    }))  # fmt: skip
    _run([str(tools / "node_modules" / ".bin" / "tsc"), "-p", str(tmp_path / "tsconfig.json")], tmp_path)


def _relay_wrote() -> list[tuple[str, bytes]]:
    """A forward and a receipt exactly as the relay writes them: decide() and plan() on a signed notice."""
    import sys
    from datetime import UTC, datetime

    sys.path.insert(0, str(ROOT / "tests"))
    import tempfile

    from harness import deploy_config, message
    from launchrelay.contract.codec import encode
    from launchrelay.relay.decide import InboundRecord, RelayContext, decide
    from launchrelay.relay.outputs import plan
    from launchrelay.relay.state import MemoryState

    with tempfile.TemporaryDirectory() as tmp:
        deploy = deploy_config("127.0.0.1:1", Path(tmp))
        ctx = RelayContext.build(load_config(deploy.config))
        notice = message("CN", ["RU"])
        raw = encode(notice)
        now = datetime.now(UTC)
        record = InboundRecord(deploy.topics.outbound("CN"), 0, 7, notice.launch_key.encode(), raw,
                               deploy.signers["CN"].headers(raw), int(now.timestamp() * 1000))  # fmt: skip
        out = plan(decide(record, ctx, MemoryState()), ctx.topics, deploy.relay_signer, "relay-1", now)
    forward = next(o.value for o in out if o.topic == ctx.topics.inbound("RU"))
    receipt = next(o.value for o in out if o.topic == ctx.topics.inbound("CN"))
    return [("relay-forward.json", forward), ("relay-receipt.json", receipt)]


def _same_values(sent: object, parsed: object, where: str = "") -> list[str]:
    """Where ``parsed`` (a model written back) lost or changed what ``sent`` held: every value sent must come back
    (numbers as numbers, times as the same instant); defaults a model adds are fine."""
    from datetime import datetime

    if isinstance(sent, dict):
        if not isinstance(parsed, dict):
            return [f"{where}: an object became {parsed!r}"]
        return [d for k, v in sent.items() for d in _same_values(v, parsed.get(k), f"{where}.{k}")]
    if isinstance(sent, list):
        if sent == [] and parsed is None:
            return []  # an empty list left out (Go's omitempty): the same as the models' default
        if not isinstance(parsed, list) or len(parsed) != len(sent):
            return [f"{where}: {sent!r} came back as {parsed!r}"]
        if all(isinstance(x, str) for x in sent) and sorted(sent) == sorted(parsed):
            return []  # a set of codes (uniqueItems: Java makes it a Set, which keeps no order)
        return [
            d for i, (a, b) in enumerate(zip(sent, parsed, strict=True)) for d in _same_values(a, b, f"{where}[{i}]")
        ]
    if isinstance(sent, bool) or sent is None:
        return [] if parsed == sent else [f"{where}: {sent!r} came back as {parsed!r}"]
    if isinstance(sent, int | float):
        return (
            []
            if isinstance(parsed, int | float) and float(parsed) == float(sent)
            else [f"{where}: {sent!r} != {parsed!r}"]
        )
    if isinstance(sent, str) and isinstance(parsed, str) and sent != parsed and "T" in sent:
        try:
            same = datetime.fromisoformat(sent) == datetime.fromisoformat(parsed)
        except ValueError:
            same = False
        return [] if same else [f"{where}: {sent!r} came back as {parsed!r}"]
    return [] if parsed == sent else [f"{where}: {sent!r} came back as {parsed!r}"]


def test_generated_java_and_typescript_models_parse_every_message(tmp_path: Path) -> None:
    """Every shipped example and a forward and a receipt as the relay writes them parse into the generated models,
    each into the type its message_type names, and nothing sent is lost or changed: Java with Jackson (the union
    type reads message_type, declared as the discriminator in the AsyncAPI document), TypeScript with Modelina's
    unmarshal and marshal, Go with encoding/json into the struct message_type names."""
    tools, _ = _generate(tmp_path)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    files = sorted((ROOT / "docs" / "examples" / "valid").glob("*.json"))
    for name, body in _relay_wrote():
        (corpus / name).write_bytes(body)
        files.append(corpus / name)
    classpath = _javac(tmp_path, str(ROOT / "tests" / "java" / "ParseMessages.java"))
    (tmp_path / "tsconfig.json").write_text(json.dumps({
        "compilerOptions": {"strict": True, "target": "es2020", "module": "commonjs", "outDir": "js", "types": [],
                            "skipLibCheck": True},
        "include": ["out/ts/*.ts"],
    }))  # fmt: skip
    _run([str(tools / "node_modules" / ".bin" / "tsc"), "-p", str(tmp_path / "tsconfig.json")], tmp_path)
    module = tmp_path / "gomod"  # the generated package as a counterpart's Go module would hold it
    shutil.copytree(tmp_path / "out" / "go", module / "model")
    shutil.copytree(ROOT / "tests" / "go" / "parse", module / "parse")
    (module / "go.mod").write_text("module launchrelay.test\n\ngo 1.22\n")
    parsed = {
        "go": _run(["go", "run", "./parse", *map(str, files)], module),
        "java": _run(["java", "-cp", classpath, "ParseMessages", *map(str, files)], tmp_path),
        "typescript": _run(
            ["node", str(ROOT / "tests" / "codegen_parse.cjs"), str(tmp_path / "js"), *map(str, files)], tmp_path
        ),
    }
    types = {t.value: "".join(w.title() for w in t.value.split("_")) for t in MessageType}
    assert len(files) == 13
    for language, out in parsed.items():
        lines = out.splitlines()
        assert len(lines) == len(files), (language, out)
        for path, line in zip(files, lines, strict=True):
            sent = json.loads(path.read_bytes())
            model, _, text = line.partition(" ")
            assert model == types[sent["message_type"]], (language, path.name, line[:300])
            lost = _same_values(sent, json.loads(text))
            assert not lost, (language, path.name, lost)
