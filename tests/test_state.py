"""What the relay remembers of messages: one record per id, ordered per partition, and the same after a restart."""

from __future__ import annotations

import gc
import json
import tracemalloc

import pytest

from launchrelay.relay.state import MemoryState, Overlay, SeenMessage, Src
from test_decide import seen


def _at(offset: int, partition: int = 0) -> Src:
    return Src("lr.CN.out", partition, offset)


def test_state_record_round_trips_through_its_bytes() -> None:
    """What is written to the state topic reads back as the same memory (the restart path)."""
    original = seen(src=_at(41), closed=True, forget_at=1_800_000_000)
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


def _held_bytes(make: object, n: int = 5000) -> float:
    gc.collect()
    tracemalloc.start()
    state = MemoryState()
    for i in range(n):
        state.apply(make(i))  # type: ignore[operator]
    gc.collect()
    size = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return size / n


def test_memory_per_id_is_the_same_read_back_as_built_live() -> None:
    """An id read back from the state topic takes no more memory than one the relay built itself (shared small
    strings, a plain tuple for where it came from): restarting does not grow the relay."""

    def live(i: int) -> SeenMessage:
        return seen(message_id=f"cn-{i:08d}", digest=f"{i:064x}", launch_key=f"CN-L{i % 50}",
                    src=Src("lr.CN.out", i % 3, i), forget_at=1_800_000_000)  # fmt: skip

    raws = [live(i).to_bytes() for i in range(5000)]
    built, read_back = _held_bytes(live), _held_bytes(lambda i: SeenMessage.from_bytes(raws[i]))
    assert read_back <= built * 1.1, (built, read_back)


def test_a_state_record_with_a_broken_forget_time_is_refused_on_reading() -> None:
    """A forget_at that is not a number (damage, a foreign writer) fails reading the record, which the reader
    names and skips, rather than every later sweep."""
    good = json.loads(seen(forget_at=1_800_000_000).to_bytes())
    for bad in ("soon", None, 1e400):
        raw = json.dumps(good | {"forget_at": bad}).encode()
        with pytest.raises((ValueError, TypeError, OverflowError)):
            SeenMessage.from_bytes(raw)


def test_an_id_is_held_packed_and_given_back_whole() -> None:
    """What the state holds of an id (packed) is what was put in: every field, a notice, a closed flag, a time."""
    state = MemoryState()
    ids = [
        seen(src=_at(3, partition=2), forget_at=1_800_000_000, notice='{"window":{}}'),
        seen("RU", "ru/with/slashes", launch_key="RU-Ключ", recipients=("CN", "KZ"), closed=True, outcome="rejected"),
    ]
    for s in ids:
        state.apply(s)
    assert [state.get(s.sender, s.message_id) for s in ids] == ids
    state.forget("RU/ru/with/slashes")
    assert state.get("RU", "ru/with/slashes") is None and len(state) == 1


def test_an_id_takes_under_a_third_of_a_kilobyte() -> None:
    """Issue 16's target: at most 0.3 KiB per remembered id (a 45-character id, its key and everything held)."""

    def live(i: int) -> SeenMessage:
        return seen(message_id=f"cn-bench-{i:036x}", digest=f"{i:064x}", launch_key=f"CN-B-{i}",
                    src=Src("lr.CN.out", i % 3, i), forget_at=1_800_000_000)  # fmt: skip

    assert _held_bytes(live, 20000) <= 0.3 * 1024


@pytest.mark.parametrize(
    "change",
    [
        {"message_type": 5},
        {"closed": "yes"},
        {"recipients": [1]},
        {"notice": {"a": 1}},
        {"digest": "zz"},
        {"src": ["t", "0", 1]},
    ],
)
def test_a_state_record_of_the_wrong_shape_is_refused_on_reading(change: dict) -> None:
    """Damage or a foreign writer: a field of the wrong type fails reading or holding the record (the reader
    names it and skips it), never becomes a value that a later decision trips over."""
    raw = json.dumps(json.loads(seen().to_bytes()) | change).encode()
    with pytest.raises((ValueError, TypeError)):
        MemoryState().apply(SeenMessage.from_bytes(raw))


def test_an_open_notice_is_held_compressed_and_given_back_exactly() -> None:
    """The notice of an open planned launch (what an amendment is judged against) is held compressed in memory:
    the text given back is the text put in, to the byte, for notices of every shape."""
    from launchrelay.contract.codec import read
    from launchrelay.contract.messages import PlannedLaunch
    from launchrelay.contract.notice import Notice
    from test_decide import notice

    state = MemoryState()
    for i, data in enumerate([notice(), notice(direction={"sector": "NE"}), notice("FR", ["AT", "GB"], "HCOC")]):
        message = read(json.dumps(data).encode()).message
        assert isinstance(message, PlannedLaunch)
        text = Notice.of(message).to_text() + " ü" * i  # any text at all, not only what compresses well
        state.apply(seen(message_id=f"n-{i}", notice=text))
        got = state.get("CN", f"n-{i}")
        assert got is not None and got.notice == text
