"""One naming convention, with a configurable prefix."""

from __future__ import annotations

import pytest

from launchrelay.topics import Topics


def test_names_follow_the_convention() -> None:
    t = Topics("ops")
    assert (t.outbound("CN"), t.inbound("RU")) == ("ops.CN.out", "ops.RU.in")
    assert (t.status, t.deadletter, t.relay_state) == ("ops.status", "ops.deadletter", "ops.relay-state")


def test_owner_of_out_topic() -> None:
    """The relay knows which party owns the topic a record came from (spoofing check)."""
    t = Topics("launchrelay")
    assert t.owner_of("launchrelay.CN.out") == "CN"
    assert t.owner_of("launchrelay.CN.in") is None
    assert t.owner_of("other.CN.out") is None


def test_bad_prefix_refused() -> None:
    with pytest.raises(ValueError, match="prefix"):
        Topics("bad prefix!")
