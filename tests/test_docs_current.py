"""Committed generated docs match the code, and every example in docs/examples behaves as labelled."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from launchrelay.contract import decode, json_schema
from launchrelay.docsgen import generated_files, readme_text
from launchrelay.errors import ContractError

ROOT = Path(__file__).resolve().parent.parent
VALID = sorted((ROOT / "docs" / "examples" / "valid").glob("*.json"))
INVALID = sorted((ROOT / "docs" / "examples" / "invalid").glob("*.json"))


@pytest.mark.parametrize("rel", sorted(generated_files(ROOT)))
def test_generated_doc_is_current(rel: str) -> None:
    """docs/ holds exactly what `launchrelay docs` generates now (run it after changing the models)."""
    committed = (ROOT / "docs" / rel).read_text(encoding="utf-8")
    stale = f"docs/{rel} is stale: run `launchrelay docs` at the repository root"
    assert committed == generated_files(ROOT)[rel], stale


def test_readme_access_table_is_the_plan() -> None:
    """The README's table of grants is what launchrelay.access gives each user (`launchrelay docs` rewrites it)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme == readme_text(readme, ROOT), "README.md's generated tables are stale: run `launchrelay docs`"


def test_readme_says_what_the_wire_carries() -> None:
    """The README's table of fields is the models' (above); and where the prose names fields a receipt or a status
    event carries, the model has them."""
    from launchrelay.contract.events import StatusEvent
    from launchrelay.contract.messages import Receipt

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "`changed` (the fields the amendment changed) and `notice`" in readme
    assert {"changed", "notice"} <= set(StatusEvent.model_fields)
    assert not {"changed", "notice"} & set(Receipt.model_fields), "receipts carry neither: the README says so"
    for row in readme.split("<!-- message fields")[1].split("<!-- end of message fields")[0].splitlines()[3:]:
        assert row.startswith("| "), row


def test_schema_is_valid_json_schema() -> None:
    """The generated schema is itself a valid JSON Schema 2020-12 document."""
    jsonschema.Draft202012Validator.check_schema(json_schema())


def test_there_are_examples() -> None:
    assert len(VALID) >= 8 and len(INVALID) >= 10


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_valid_example(path: Path) -> None:
    """A valid example passes both the models and the published JSON Schema."""
    raw = path.read_bytes()
    decode(raw)
    jsonschema.validate(json.loads(raw), json_schema(), cls=jsonschema.Draft202012Validator)


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_example(path: Path) -> None:
    """An invalid example is refused by the models."""
    with pytest.raises(ContractError):
        decode(path.read_bytes())


def test_readme_rule_table_names_every_rule_of_an_agreement() -> None:
    """Issue 27: the README's rule table shows every rule as enforced: each setting of an agreement (all but its
    id, title and sources) has a row, as `config check` prints it."""
    from launchrelay.agreements.config import Agreement

    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("| field                         | rule (reason code)") :]
    table = table[: table.index("\n\n")]
    named = set(re.findall(r"`([a-z_]+)`", "\n".join(row.split("|")[1] for row in table.splitlines())))
    named |= {"in_force_until"} if "`_until`" in table else set()
    assert set(Agreement.model_fields) - {"id", "title", "sources"} <= named
