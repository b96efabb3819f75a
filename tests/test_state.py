"""What the relay remembers of messages: one record per id, ordered per partition, and the same after a restart."""

from __future__ import annotations

from launchrelay.contract.messages import RecordRef
from launchrelay.relay.state import MemoryState, Overlay, SeenMessage
from test_decide import seen


def _at(offset: int, partition: int = 0) -> RecordRef:
    return RecordRef(topic="lr.CN.out", partition=partition, offset=offset)


def test_state_record_round_trips_through_its_bytes() -> None:
    """What is written to the state topic reads back as the same memory (the restart path)."""
    original = seen(src=_at(41), closed=True)
    assert SeenMessage.from_bytes(original.to_bytes()) == original


def test_a_later_change_from_the_same_partition_wins_whatever_the_order_read() -> None:
    """Forwarded at offset 1, closed by a cancellation at offset 5: read back in either order, it is closed."""
    forwarded, closed = seen(src=_at(1)), seen(src=_at(1)).closed_by(_at(5))
    for order in ((forwarded, closed), (closed, forwarded)):
        state = MemoryState()
        for s in order:
            state.apply(s)
        got = state.get("CN", "cn-0001")
        assert got is not None and got.closed and got.src == _at(5)


def test_ids_are_scoped_by_sender() -> None:
    """Two parties may use the same message id: each is remembered apart."""
    state = MemoryState()
    state.apply(seen("CN", "m-1"))
    state.apply(seen("RU", "m-1", launch_key="RU-L1"))
    assert len(state) == 2 and state.get("RU", "m-1").launch_key == "RU-L1"  # type: ignore[union-attr]


def test_overlay_shows_the_batch_in_hand_on_top_of_what_is_committed() -> None:
    """Inside one transaction a later record sees an earlier one's write; the committed state does not, yet."""
    base = MemoryState()
    overlay = Overlay(base)
    overlay.put(seen(message_id="cn-new"))
    assert overlay.get("CN", "cn-new") is not None and base.get("CN", "cn-new") is None
