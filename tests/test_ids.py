"""Ids the project mints never repeat across deployments, topic re-creation or time, and are the same when the same
input is decided again (exactly-once needs that). What an id is made of: relay/outputs.py and tracker/outputs.py."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from harness import Deploy
from launchrelay.provision.local import new_cluster_id
from launchrelay.reasons import ReasonCode
from launchrelay.relay.decide import InboundRecord, RelayContext, set_aside
from launchrelay.relay.outputs import plan
from launchrelay.topics import Topics
from launchrelay.tracker import outputs as tracker_outputs
from launchrelay.tracker.deadlines import Retransmit, Timeout
from launchrelay.tracker.lifecycle import deliveries_for, from_event
from test_decide import NOW
from test_tracker_lifecycle import _forwarded

records = st.builds(
    lambda partition, offset, ts, value: (partition, offset, ts, value),
    st.integers(0, 5),
    st.integers(0, 1 << 40),
    st.integers(1_600_000_000_000, 1_900_000_000_000),
    st.binary(max_size=64),
)


def minted(ctx: RelayContext, deploy: Deploy, origin: str, rec: tuple[int, int, int, bytes]) -> set[str]:
    """The ids the relay writes for one record of CN's out topic (its receipt and its status event)."""
    partition, offset, ts, value = rec
    record = InboundRecord(ctx.topics.outbound("CN"), partition, offset, b"k", value, [], ts)
    decision = set_aside(record, ctx, ReasonCode.INTERNAL_ERROR, RuntimeError("x"), 3)
    out = plan(decision, ctx.topics, deploy.relay_signer, "relay-a", NOW, origin)
    ids = set()
    for o in out:
        body = json.loads(o.value) if o.topic in (ctx.topics.inbound("CN"), ctx.topics.status) else {}
        ids |= {body[k] for k in ("message_id", "event_id") if k in body and o.topic != ctx.topics.deadletter}
    assert len(ids) == 2
    return ids


@given(st.lists(records, min_size=1, max_size=20, unique_by=lambda r: (r[0], r[1])))
def test_two_deployments_with_the_same_topics_and_offsets_never_share_an_id(
    offline_deploy: Deploy, offline_ctx: RelayContext, recs: list[tuple[int, int, int, bytes]]
) -> None:
    """Two clusters (two deployments) read the very same records at the same topic names and offsets: not one
    receipt or event id of one is an id of the other, and within each, no two records share an id."""
    a, b = new_cluster_id(), new_cluster_id()
    ids_a = [minted(offline_ctx, offline_deploy, a, r) for r in recs]
    ids_b = [minted(offline_ctx, offline_deploy, b, r) for r in recs]
    flat_a = set().union(*ids_a)
    flat_b = set().union(*ids_b)
    assert not flat_a & flat_b
    assert len(flat_a) == 2 * len(recs) == len(flat_b)


@given(records, st.integers(1, 10_000), st.binary(min_size=1, max_size=8))
def test_a_recreated_topic_gives_new_ids_and_a_replay_the_same(
    offline_deploy: Deploy, offline_ctx: RelayContext, rec: tuple[int, int, int, bytes], later_ms: int, other: bytes
) -> None:
    """After a topic is deleted and created again, offset 0 comes back with a later broker time (LogAppendTime)
    or other bytes: new ids. The same record decided twice (a replay after a crash): the same ids."""
    origin = new_cluster_id()
    partition, offset, ts, value = rec
    first = minted(offline_ctx, offline_deploy, origin, rec)
    assert minted(offline_ctx, offline_deploy, origin, rec) == first
    assert not minted(offline_ctx, offline_deploy, origin, (partition, offset, ts + later_ms, value)) & first
    assert not minted(offline_ctx, offline_deploy, origin, (partition, offset, ts, value + other)) & first


def test_the_trackers_ids_differ_across_deployments_and_repeat_on_replay(offline_deploy: Deploy) -> None:
    """Overdue receipts and retransmission events of the same notice id in two deployments get different ids;
    the same action planned again in one deployment gets the same ids."""
    forwarded = _forwarded(["RU"])
    n, (d,) = from_event(forwarded), deliveries_for(forwarded)
    n = replace(n, source="lr.CN.out:0:0", received_at=NOW)
    topics = Topics("lr")

    def ids(origin: str, action: Timeout | Retransmit, notice: object = n) -> set[str]:
        out = tracker_outputs.plan(action, notice, None, topics, offline_deploy.relay_signer, "t1", NOW, origin)  # type: ignore[arg-type]
        return {json.loads(o.value).get("message_id" if o.topic != topics.status else "event_id") for o in out}

    a, b = new_cluster_id(), new_cluster_id()
    for action in (Timeout(d), Retransmit(d, 1)):
        assert ids(a, action) == ids(a, action)
        assert not ids(a, action) & ids(b, action)
        recreated = replace(n, received_at=NOW + timedelta(days=1))  # the same offset on a topic made anew
        assert not ids(a, action) & ids(a, action, recreated)
