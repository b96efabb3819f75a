"""The house has floors: an import only ever points down, or sideways where the floor allows it.

From the bottom: the contract and the names every module shares; the agreements and signing; Kafka at the
edges (kafka/: talking to it; provision/: starting it); the processes' plumbing (runtime/); the services and
tools side by side, none importing another; on top, what a person runs (cli, demo, the generated docs) and the
package's face. Read from the source with ``ast``, so a test fails the moment an arrow runs back up or a service
reaches into another.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
#: floor -> top-level names under ``launchrelay`` that stand on it
FLOORS: dict[int, set[str]] = {
    1: {"contract", "topics", "reasons", "errors", "settings"},
    2: {"agreements", "signing", "access", "audit"},
    3: {"kafka", "provision"},
    4: {"runtime"},
    5: {"relay", "tracker", "clients", "ops", "asyncapi", "deploy", "configcheck"},
    6: {"cli", "demo", "centres", "docsgen", "console", "__main__", "__init__"},
}
#: floors whose rooms stand side by side: no room imports another on the same floor
SIDE_BY_SIDE = {5}


def _room(module: str) -> str:
    parts = module.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


def _floor(room: str) -> int:
    return next(floor for floor, rooms in FLOORS.items() if room in rooms)


@functools.cache
def _imports() -> dict[str, set[str]]:
    """Module name -> the launchrelay modules it imports (at any depth of the file, lazy imports included)."""
    paths = {
        ".".join(p.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__"): p
        for p in sorted((SRC / "launchrelay").rglob("*.py"))
    }
    out: dict[str, set[str]] = {}
    for module, path in paths.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("launchrelay"):
                # `from package import submodule` imports the submodule, not only the package's face
                subs = {f"{node.module}.{a.name}" for a in node.names} & paths.keys()
                found |= subs or {node.module}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("launchrelay")}
        out[module] = found
    return out


def test_every_room_is_on_a_floor() -> None:
    rooms = {_room(m) for m in _imports()}
    placed = set().union(*FLOORS.values())
    assert rooms <= placed, f"rooms with no floor: {sorted(rooms - placed)}"


def test_no_import_runs_back_up() -> None:
    """Every import points to a lower floor, or to the same room, or sideways on a floor that allows it."""
    wrong = []
    for module, targets in _imports().items():
        here = _room(module)
        for target in targets:
            there = _room(target)
            if there == here:
                continue
            up = _floor(there) > _floor(here)
            sideways = _floor(there) == _floor(here) and _floor(here) in SIDE_BY_SIDE
            if up or sideways:
                wrong.append(f"{module} -> {target}")
    assert wrong == [], "\n".join(wrong)


def test_no_import_circles() -> None:
    """No module reaches itself through its imports (which sideways imports on the low floors could allow)."""
    graph = {m: {t for t in ts if t in _imports()} for m, ts in _imports().items()}
    seen: dict[str, int] = {}

    def visit(m: str, trail: list[str]) -> None:
        seen[m] = 1
        for t in graph[m]:
            assert seen.get(t) != 1, " -> ".join([*trail, m, t])
            if t not in seen:
                visit(t, [*trail, m])
        seen[m] = 2

    for m in graph:
        if m not in seen:
            visit(m, [])


def test_the_architecture_page_names_every_room_on_its_floor_and_only_files_that_exist() -> None:
    """docs/architecture.md is kept true: its floors table has each room of FLOORS on its floor, and each source
    file it names exists."""
    import re

    page = (SRC.parent / "docs" / "architecture.md").read_text()
    rows = dict((room, int(floor)) for floor, room in re.findall(r"^\| (\d) \| `([\w_]+)` \|", page, re.M))
    assert rows == {room: floor for floor, rooms in FLOORS.items() for room in rooms}
    named = set(re.findall(r"`(src/launchrelay/[\w/.]+)`", page))
    assert named and all((SRC.parent / p).exists() for p in named), sorted(
        p for p in named if not (SRC.parent / p).exists()
    )
