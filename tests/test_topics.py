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


def test_the_size_limits_form_one_chain_from_one_number() -> None:
    """A party's request carries any value the relay accepts and is refused by an out topic only past twice the
    limit; the in and dead-letter topics take an out-topic record with the relay's headers; every consumer fetches
    the largest of them. One number in, every link computed from it (``[relay] max_message_bytes``)."""
    from launchrelay.topics import DEFAULT_MAX_MESSAGE_BYTES, KAFKA_FETCH_MAX_BYTES, size_limits

    for limit in (16 << 10, DEFAULT_MAX_MESSAGE_BYTES, 40 << 20):
        s = size_limits(limit)
        assert s.relay < s.publish_request and s.relay < s.out_topic < s.copies < s.copy_request
        assert s.fetch >= s.copies and s.fetch_total >= max(s.fetch, KAFKA_FETCH_MAX_BYTES)


async def test_the_publisher_refuses_what_the_relay_would_at_once() -> None:
    """The SDK receives the limit: a message over it is refused before it reaches Kafka (no broker here), with the
    relay's own reason code in the error; the producer's requests fit a value the relay accepts."""
    import json

    from conftest import planned_data
    from launchrelay.clients import Publisher
    from launchrelay.contract import decode
    from launchrelay.errors import PublishRefused
    from launchrelay.signing import Signer

    message = decode(json.dumps(planned_data(notes={"en": "x" * 1500})))
    publisher = Publisher("127.0.0.1:1", "CN", Signer.generate("cn"), watch_receipts=False, max_message_bytes=1024)
    assert publisher.limits.publish_request > 1024
    with pytest.raises(PublishRefused, match=r"OVERSIZE: .* the relay refuses more than 1024"):
        await publisher.publish(message)  # type: ignore[arg-type]
