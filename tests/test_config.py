"""Configuration loads once, validates everything, and explains what is wrong."""

from __future__ import annotations

import json
import re
import tomllib
from datetime import timedelta
from pathlib import Path

import pytest

from launchrelay.agreements.config import load_config, load_presets, parse_config
from launchrelay.errors import ConfigError
from launchrelay.signing import Signer

KEY = Signer.generate("k").public_b64


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "launchrelay.toml"
    path.write_text(text)
    return path


PARTIES = f"""
[parties.CN]
name = "China"
keys = {{ cn-1 = "{KEY}" }}
[parties.RU]
name = "Russia"
keys = {{ ru-1 = "{KEY}" }}
"""


def test_all_four_presets_ship() -> None:
    """CN-RU 2009, US-RU 1988, IN-PK 2005 and the Hague Code are shipped presets."""
    assert set(load_presets()) == {"CN-RU-2009", "US-RU-1988", "IN-PK-2005", "HCOC"}


def test_preset_enabled_by_id(tmp_path: Path) -> None:
    """A deployment enables a preset by id and supplies the parties' keys."""
    deployment = load_config(_write(tmp_path, '[relay]\npresets = ["CN-RU-2009"]\n' + PARTIES))
    agreement = deployment.agreements["CN-RU-2009"]
    assert agreement.min_ballistic_range_km == 2000
    assert deployment.parties["RU"].keys == {"ru-1": KEY}


def test_preset_values_can_be_overridden(tmp_path: Path) -> None:
    """A deployment may override a preset's value, e.g. a shorter acknowledgement deadline."""
    text = '[relay]\npresets = ["CN-RU-2009"]\n' + PARTIES + '[agreements.CN-RU-2009]\nack_deadline = "PT5M"\n'
    deployment = load_config(_write(tmp_path, text))
    assert deployment.agreements["CN-RU-2009"].ack_deadline.total_seconds() == 300
    assert deployment.agreements["CN-RU-2009"].max_lead is not None  # the rest of the preset stays


def test_unknown_preset_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'XX-1'.*shipped presets"):
        load_config(_write(tmp_path, '[relay]\npresets = ["XX-1"]\n' + PARTIES))


def test_party_without_entry_is_named(tmp_path: Path) -> None:
    """An agreement naming a party that has no [parties.XX] table is refused with its name."""
    text = '[relay]\npresets = ["US-RU-1988"]\n' + PARTIES
    with pytest.raises(ConfigError, match=r"US-RU-1988 names parties \['US'\]"):
        load_config(_write(tmp_path, text))


def test_bad_duration_is_explained(tmp_path: Path) -> None:
    text = '[relay]\npresets = ["CN-RU-2009"]\n' + PARTIES + '[agreements.CN-RU-2009]\nmin_lead = "soon"\n'
    with pytest.raises(ConfigError, match=r"agreements\.CN-RU-2009\.min_lead"):
        load_config(_write(tmp_path, text))


def test_not_toml_is_explained(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(_write(tmp_path, "[relay\n"))


def test_missing_file_is_explained(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_in_pk_needs_a_boundary(tmp_path: Path) -> None:
    """IN-PK 2005 measures distances, so enabling it without a boundary file is refused."""
    parties = PARTIES.replace("CN", "IN").replace("RU", "PK")
    with pytest.raises(ConfigError, match="boundary_file"):
        load_config(_write(tmp_path, '[relay]\npresets = ["IN-PK-2005"]\n' + parties))


def test_in_pk_boundary_file_is_read_relative_to_config(tmp_path: Path) -> None:
    (tmp_path / "loc.geojson").write_text(json.dumps({"type": "LineString", "coordinates": [[75, 20], [75, 36]]}))
    parties = PARTIES.replace("CN", "IN").replace("RU", "PK")
    text = (
        '[relay]\npresets = ["IN-PK-2005"]\n'
        + parties
        + '[agreements.IN-PK-2005.geometry]\nboundary_file = "loc.geojson"\n'
        + 'party_sides = { IN = "right", PK = "left" }\n'
    )
    geometry = load_config(_write(tmp_path, text)).agreements["IN-PK-2005"].geometry
    assert geometry is not None and geometry.boundary is not None
    assert geometry.launch_site_min_km == 40


def test_bilateral_agreement_needs_two_parties(tmp_path: Path) -> None:
    text = PARTIES + (
        '[parties.US]\nname = "US"\n'
        '[agreements.X-1]\ntitle = "x"\nparties = ["CN", "RU", "US"]\ncategories = ["icbm"]\n'
    )
    with pytest.raises(ConfigError, match="exactly two parties"):
        load_config(_write(tmp_path, text))


def test_durations_are_iso_8601_and_print_the_same_way() -> None:
    """`ack_deadline = 30` would leave its unit to a guess: refused with a hint; durations print as ISO 8601."""
    from launchrelay.agreements.config import iso_duration

    for bad in ("30", '"30"', '"1 day, 0:00:00"', '"P1Y"'):
        text = '[relay]\npresets = ["CN-RU-2009"]\n' + PARTIES + f"[agreements.CN-RU-2009]\nack_deadline = {bad}\n"
        with pytest.raises(ConfigError, match=r"ISO 8601 text, e\.g\. \"PT30S\""):
            parse_config(tomllib.loads(text))
    spans = ({"hours": 1}, {"days": 30}, {"days": 1, "hours": 6}, {"seconds": 0.5}, {"minutes": -5}, {})
    assert [iso_duration(timedelta(**kw)) for kw in spans] == ["PT1H", "P30D", "P1DT6H", "PT0.5S", "-PT5M", "PT0S"]


def test_config_check_warns_of_a_party_without_keys_and_a_schedule_that_cannot_fit() -> None:
    from launchrelay.configcheck import warnings

    text = ('[relay]\npresets = ["CN-RU-2009"]\n[parties.CN]\nname = "China"\n[parties.RU]\nname = "Russia"\n'
            'keys = { ru-1 = "' + KEY + '" }\n[agreements.CN-RU-2009]\nack_deadline = "PT30M"\n'
            'retransmit = { every = "PT15M", max_attempts = 3 }\n')  # fmt: skip
    found = warnings(parse_config(tomllib.loads(text)))
    assert found[0].startswith("party CN has no keys: every message it sends will be rejected")
    assert "retransmit every PT15M, at most 3 times, does not fit before ack_deadline PT30M: only 1" in found[1]
    assert len(found) == 2


def test_each_party_declares_the_contract_versions_it_reads(tmp_path: Path) -> None:
    """`reads` lists what a party's systems read: launchrelay/1 unless it says more; an unknown version, or a list
    without launchrelay/1 (the relay's receipts are written in it), is refused with the reason."""
    base = '[relay]\npresets = ["CN-RU-2009"]\n' + PARTIES
    d = load_config(_write(tmp_path, base))
    assert d.parties["CN"].reads == ["launchrelay/1"]
    both = base.replace('name = "Russia"', 'name = "Russia"\nreads = ["launchrelay/1", "launchrelay/2"]')
    assert load_config(_write(tmp_path, both)).parties["RU"].reads == ["launchrelay/1", "launchrelay/2"]
    with pytest.raises(ConfigError, match=r"unknown contract version.*launchrelay/9"):
        load_config(_write(tmp_path, base.replace('name = "Russia"', 'name = "Russia"\nreads = ["launchrelay/9"]')))
    with pytest.raises(ConfigError, match=r"must include launchrelay/1"):
        load_config(_write(tmp_path, base.replace('name = "Russia"', 'name = "Russia"\nreads = ["launchrelay/2"]')))


def test_a_table_in_the_config_replaces_the_presets_and_an_empty_one_removes_the_rule(tmp_path: Path) -> None:
    """The CN-RU preset says "remove the table to notify launches in any direction" of its [I] reading of the
    missile scope (DOMAIN.md, "Direction of CN-RU scope"): `ballistic_directions = {}` does that, and a table given
    replaces the preset's whole (`group_limits` names every limit there is, art. 1's near-simultaneous one gone);
    an empty `retransmit` is no re-sending. A missile of RU's heading west is then in scope."""
    from conftest import NOW, planned_data
    from launchrelay.agreements.rules import check
    from launchrelay.contract import decode

    text = ('[relay]\npresets = ["CN-RU-2009"]\n' + PARTIES + "[agreements.CN-RU-2009]\nballistic_directions = {}\n"
            'group_limits = { simultaneous = "PT5M" }\nretransmit = {}\n')  # fmt: skip
    deployment = load_config(_write(tmp_path, text))
    agreement = deployment.agreements["CN-RU-2009"]
    assert agreement.ballistic_directions == {}
    assert set(agreement.group_limits) == {"simultaneous"}
    assert agreement.retransmit is None
    assert agreement.max_lead is not None  # what the config leaves alone stays the preset's
    window = {"start": "2026-12-05T00:00:00Z", "end": "2026-12-06T00:00:00Z"}
    west = decode(json.dumps(planned_data(sender="RU", recipients=["CN"], direction={"sector": "W"}, window=window)))
    assert [r.code for r in check(west, agreement, NOW).reasons] == []
    preset = load_config(_write(tmp_path, '[relay]\npresets = ["CN-RU-2009"]\n' + PARTIES)).agreements["CN-RU-2009"]
    assert [r.code for r in check(west, preset, NOW).reasons] == ["OUT_OF_SCOPE_DIRECTION"]
    origin = deployment.origin
    assert [origin("CN-RU-2009", k) for k in ("ballistic_directions", "max_lead", "validity")] == [
        "override", "preset", "default"]  # fmt: skip


def test_the_geometry_section_is_set_key_by_key_and_an_empty_one_measures_nothing(tmp_path: Path) -> None:
    """IN-PK 2005 art. 5-6: the preset's distances (40 / 70 / 40 km) stay when a deployment gives only the boundary
    and sides, and one distance may be changed alone (one summary says 75 km: DOMAIN.md); its `party_sides`
    table is the config's whole. `geometry = {}` removes the distance rules (and the need for a boundary)."""
    (tmp_path / "loc.geojson").write_text(json.dumps({"type": "LineString", "coordinates": [[75, 20], [75, 36]]}))
    parties = PARTIES.replace("CN", "IN").replace("RU", "PK")
    head = '[relay]\npresets = ["IN-PK-2005"]\n' + parties
    text = head + ('[agreements.IN-PK-2005.geometry]\nboundary_file = "loc.geojson"\nimpact_area_min_km = 75\n'
                   'party_sides = { IN = "right", PK = "left" }\n')  # fmt: skip
    deployment = load_config(_write(tmp_path, text))
    geometry = deployment.agreements["IN-PK-2005"].geometry
    assert geometry is not None
    assert (geometry.launch_site_min_km, geometry.impact_area_min_km, geometry.trajectory_min_km) == (40, 75, 40)
    assert deployment.origin("IN-PK-2005", "geometry.impact_area_min_km") == "override"
    assert deployment.origin("IN-PK-2005", "geometry.launch_site_min_km") == "preset"
    bare = load_config(_write(tmp_path, head + "[agreements.IN-PK-2005]\ngeometry = {}\n"))
    assert bare.agreements["IN-PK-2005"].geometry is None


def test_config_check_prints_every_rule_with_its_value_and_source(tmp_path: Path) -> None:
    """`config check` shows exactly what the relay will enforce: every rule of every enabled agreement (in-force
    dates, directions, group limits, report settings too), each with its value and where it comes from."""
    from launchrelay.agreements.config import Agreement
    from launchrelay.configcheck import describe, rules
    from launchrelay.settings import Settings

    own = '[agreements.X-1]\ntitle = "its own"\nparties = ["CN", "RU"]\ncategories = ["icbm"]\n'
    text = '[relay]\npresets = ["CN-RU-2009"]\n' + PARTIES + '[agreements.CN-RU-2009]\nack_deadline = "PT5M"\n' + own
    deployment = load_config(_write(tmp_path, text))
    table = {k: (v, o) for k, v, o in rules(deployment, deployment.agreements["CN-RU-2009"])}
    assert set(table) == set(Agreement.model_fields) - {"id", "title", "sources"}
    assert table["in_force_until"] == ("2030-12-16", "preset")
    assert table["ballistic_directions"] == ("{ RU = [E, NE, S, SE], CN = [W, NW, N, NE] }", "preset")
    assert table["group_limits"] == ("{ simultaneous = PT5M, near_simultaneous = PT1H }", "preset")
    assert table["report_outside_window"] == ("warn", "preset")
    assert table["max_lead_to"] == ("end", "preset")
    assert table["ack_deadline"] == ("PT5M", "override")
    assert table["validity"] == ("none (the window)", "default")
    mine = {k: (v, o) for k, v, o in rules(deployment, deployment.agreements["X-1"])}
    assert mine["categories"] == ("[icbm]", "config") and mine["ack_deadline"] == ("PT1H", "default")
    printed = describe(deployment, Settings())
    for key, (value, origin) in table.items():
        assert re.search(rf"^    {re.escape(key)} +{re.escape(value)} +{origin}$", printed, re.M), key
