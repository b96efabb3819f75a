"""Who may do what on the cluster: one plan, rendered for Strimzi or applied to any Kafka.

A party may write only its own out topic and read only its own in topic (and
use consumer groups named for it); the relay and the tracker get exactly what
they use. :func:`access_plan` is the single source of these rules:
``launchrelay deploy strimzi`` renders it as KafkaUser resources, and
``launchrelay access apply`` writes it to a cluster that has no operator, as
SCRAM-SHA-512 users and ACLs (:mod:`launchrelay.kafka.access`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from launchrelay.agreements.config import Deployment
from launchrelay.topics import Topics

Resource = Literal["topic", "group", "transactionalId"]
#: the publisher of the decision log's proofs (``launchrelay audit publish``, as the relay's user): its consumer
#: group and its transactional id (under the relay's prefix)
PROOFS_ID = "{prefix}.relay.proofs"
Role = Literal["party", "relay", "tracker", "operator", "mirror", "link"]


@dataclass(frozen=True)
class Grant:
    """Allow ``operations`` on one resource name (``literal``) or every name starting with it (``prefix``)."""

    resource: Resource
    name: str
    operations: tuple[str, ...]
    pattern: Literal["literal", "prefix"] = "literal"
    #: why the user needs it (the README's access table is generated from these)
    why: str = ""


@dataclass(frozen=True)
class Principal:
    """One Kafka user (principal ``User:<user>``) and everything it is allowed."""

    user: str
    role: Role
    grants: tuple[Grant, ...]
    party: str | None = None
    #: client quotas at the broker (Kafka's keys, e.g. ``producer_byte_rate``); none: not limited
    quotas: tuple[tuple[str, float], ...] = ()


def k8s_name(text: str) -> str:
    """A Kubernetes resource name; users get one too, as Strimzi names the principal after its KafkaUser."""
    return re.sub(r"[^a-z0-9.-]", "-", text.lower()).strip("-.")


def user_prefix(topic_prefix: str) -> str:
    """What every user name of a deployment starts with: the users ``access apply --prune`` manages."""
    return k8s_name(topic_prefix) + "-"


_ROLES = r"(?:party-[a-z]{2}|relay|tracker|operator|mirror|link-[a-z]{2})"


def managed_user(topic_prefix: str) -> re.Pattern[str]:
    """The user names a deployment's plan can produce, and only those: what ``access apply --prune`` may touch.

    Exactly ``<prefix>-party-<cc>``, ``-relay``, ``-tracker`` and ``-operator``: a name that merely
    starts with the prefix (``launchrelay-admin``, or ``launchrelay-staging-party-cn`` of a deployment
    whose prefix is ``launchrelay-staging``) is someone else's.
    """
    return re.compile(re.escape(user_prefix(topic_prefix)) + _ROLES + r"\Z")


def access_plan(deployment: Deployment) -> list[Principal]:
    """One user per party, one for the relay, one for the tracker, one for the watch's operators, in a stable order.

    The operator may list dead letters and write them back to the out topic
    they came from (``launchrelay deadletters`` / ``redrive``). Writing an out
    topic forges nothing: the relay still checks each record's signature and
    sender, and a replay of anything forwarded is a duplicate. It reads the out
    topics (and what linked centres send) so the console can show the bytes a
    notification was judged on; it already reads the refused ones' bytes in the
    dead letters.
    """
    topics = deployment.topics
    prefix = topics.prefix
    users = user_prefix(prefix)
    parties = deployment.local_parties  # in two-centre mode, only this centre's party has topics here
    linked = sorted(deployment.links)
    plan = [
        Principal(
            users + k8s_name(f"party-{code}"),
            "party",
            (
                Grant("topic", topics.outbound(code), ("Write", "Describe"), why="publish its notices"),
                Grant("topic", topics.inbound(code), ("Read", "Describe"), why="receive forwards and receipts"),
                Grant(
                    "group",
                    f"{prefix}.inbox.{code}",
                    ("Read",),
                    "prefix",
                    why="its own consumer groups (the SDK's Inbox names them so), no one else's",
                ),
                *(
                    (
                        Grant("topic", topics.proofs(code), ("Read", "Describe"), why="its view of the decision log"),
                        *(
                            Grant(
                                "topic",
                                topics.proofs_in(p),
                                ("Read", "Describe"),
                                why=f"its view of {p}'s centre's decision log (mirrored)",
                            )
                            for p in linked
                        ),
                    )
                    if deployment.relay.decision_log
                    else ()
                ),
            ),
            party=code,
            quotas=tuple((deployment.parties[code].quota or deployment.relay.party_quota).items().items()),
        )
        for code in parties
    ]
    plan.append(
        Principal(
            users + "relay",
            "relay",
            (
                *(
                    Grant("topic", topics.outbound(p), ("Read", "Describe"), why="the notices it checks")
                    for p in parties
                ),
                *(
                    Grant("topic", topics.inbound(p), ("Write", "Describe"), why="forwards and signed receipts")
                    for p in parties
                ),
                *(
                    Grant("topic", topics.link_in(p), ("Read", "Describe"), why="what a linked centre sends (mirrored)")
                    for p in linked
                ),
                *(
                    Grant("topic", topics.link_out(p), ("Write", "Describe"), why="what it sends a linked centre")
                    for p in linked
                ),
                Grant("topic", topics.status, ("Write", "Describe"), why="a lifecycle event per decision"),
                Grant("topic", topics.deadletter, ("Write", "Describe"), why="the original bytes of each rejection"),
                *(
                    (
                        Grant(
                            "topic",
                            topics.decision_log,
                            ("Read", "Write", "Describe"),
                            why="the decision log: leaves and heads, read back to prove them to the parties",
                        ),
                        *(
                            Grant("topic", topics.proofs(p), ("Write", "Describe"), why="each party's view of the log")
                            for p in deployment.parties  # a linked party's too: its centre's mirror copies it
                        ),
                        Grant(
                            "group",
                            PROOFS_ID.format(prefix=prefix),
                            ("Read",),
                            why="where the publisher of proofs has read the log to",
                        ),
                    )
                    if deployment.relay.decision_log
                    else ()
                ),
                Grant(
                    "topic",
                    topics.relay_state,
                    ("Read", "Write", "Describe"),
                    why="what it forwarded, read back on start (duplicates, references)",
                ),
                Grant(
                    "group", f"{prefix}.relay", ("Read",), why="the relay instances share the out topics' partitions"
                ),
                Grant(
                    "transactionalId",
                    f"{prefix}.relay.",
                    ("Write", "Describe"),
                    "prefix",
                    why="one transactional id per input partition: exactly once across crashes",
                ),
            ),
        )
    )
    plan.append(
        Principal(
            users + "tracker",
            "tracker",
            (
                Grant(
                    "topic",
                    topics.status,
                    ("Read", "Write", "Describe"),
                    why="reads the lifecycle; writes retransmission and overdue events",
                ),
                *(
                    Grant(
                        "topic",
                        topics.inbound(p),
                        ("Write", "Describe"),
                        why="re-sends an unacknowledged notice; tells the sender of an overdue one",
                    )
                    for p in parties
                ),
                *(
                    Grant(
                        "topic",
                        topics.outbound(p),
                        ("Read", "Describe"),
                        why="the original bytes and signature it re-sends",
                    )
                    for p in parties
                ),
                *(
                    Grant("topic", topics.link_out(p), ("Write", "Describe"), why="re-sends to a linked centre")
                    for p in linked
                ),
                Grant(
                    "transactionalId",
                    f"{prefix}.tracker",
                    ("Write", "Describe"),
                    why="its events and re-sends commit together, once",
                ),
                *(
                    (
                        Grant(
                            "topic",
                            topics.decision_log,
                            ("Read", "Write", "Describe"),
                            why="its alerts as leaves of its own log, read back on start",
                        ),
                    )
                    if deployment.relay.decision_log
                    else ()
                ),
            ),
        )
    )
    plan.append(
        Principal(
            users + "operator",
            "operator",
            (
                Grant("topic", topics.deadletter, ("Read", "Describe"), why="list dead letters and their reasons"),
                *(
                    (
                        Grant("topic", topics.decision_log, ("Read", "Describe"), why="export the decision log"),
                        *(
                            Grant(
                                "topic",
                                topics.proofs(p),
                                ("Read", "Describe"),
                                why="the console checks what each party is sent about the log",
                            )
                            for p in deployment.parties
                        ),
                    )
                    if deployment.relay.decision_log
                    else ()
                ),
                *(
                    Grant(
                        "topic",
                        topics.outbound(p),
                        ("Read", "Write", "Describe"),
                        why="show a notification's original bytes and signature; redrive a dead letter to where it "
                        "came from (signed with an operator key)",
                    )
                    for p in parties
                ),
                *(
                    Grant(
                        "topic",
                        topics.link_in(p),
                        ("Read", "Describe"),
                        why="show the original bytes of a notification a linked centre sent",
                    )
                    for p in linked
                ),
            ),
        )
    )
    if linked:
        plan += _link_principals(topics, users, linked, deployment.relay.decision_log)
    return plan


def _link_principals(topics: Topics, users: str, linked: list[str], proofs: bool) -> list[Principal]:
    """Two-centre mode: the mirror this centre runs (it writes here what it copies from a counterpart), and, for
    each counterpart, the read-only user this centre issues to that counterpart's mirror.

    The counterpart's mirror may read its one link topic here and nothing else: no write anywhere in this
    cluster, so no credential either centre holds writes to the other's cluster. Its offsets, status and
    heartbeats live in its own cluster (``offset-syncs.topic.location = target``, checkpoints off)."""
    mirror = Principal(
        users + "mirror",
        "mirror",
        (
            *(
                Grant(
                    "topic",
                    topics.link_in(p),
                    ("Write", "Describe", "DescribeConfigs"),
                    why="what it copies from that centre's link topic",
                )
                for p in linked
            ),
            Grant(
                "topic",
                "mm2-",
                ("Read", "Write", "Create", "Describe", "DescribeConfigs"),
                "prefix",
                why="MirrorMaker 2's own offsets, status, configuration and offset syncs",
            ),
            Grant(
                "topic",
                "heartbeats",
                ("Read", "Write", "Create", "Describe", "DescribeConfigs"),
                why="MirrorMaker 2's heartbeats",
            ),
            *(
                Grant("group", f"{p}-mm2", ("Read", "Describe"), why="the mirror's Connect worker group")
                for p in linked
            ),
            *(
                Grant(
                    "topic",
                    topics.proofs_in(p),
                    ("Write", "Describe", "DescribeConfigs"),
                    why="what that centre proves to this centre's party (the decision log)",
                )
                for p in linked
                if proofs
            ),
        ),
    )
    issued = [
        Principal(
            users + k8s_name(f"link-{p}"),
            "link",
            (
                Grant(
                    "topic",
                    topics.link_out(p),
                    ("Read", "Describe", "DescribeConfigs"),
                    why=f"issued to {p}'s mirror: read what this centre sends {p}, nothing else",
                ),
                *(
                    (
                        Grant(
                            "topic",
                            topics.proofs(p),
                            ("Read", "Describe", "DescribeConfigs"),
                            why=f"issued to {p}'s mirror: what this centre proves to {p} (the decision log)",
                        ),
                    )
                    if proofs
                    else ()
                ),
            ),
            party=p,
        )
        for p in linked
    ]
    return [mirror, *issued]


def access_markdown(deployment: Deployment) -> str:
    """Every grant of the plan as a Markdown table, one row per kind of grant (party codes written XX)."""
    codes = sorted(deployment.parties)
    general = re.compile(r"(?<![A-Za-z])(" + "|".join(codes + [c.lower() for c in codes]) + r")(?![A-Za-z])")

    def xx(text: str) -> str:
        return general.sub(lambda m: "XX" if m.group(1).isupper() else "xx", text)

    lines = ["| user | may | on | why |", "| --- | --- | --- | --- |"]
    seen: set[str] = set()
    for principal in access_plan(deployment):
        rows = [(", ".join(g.operations), f"{g.resource} `{xx(g.name)}{'*' if g.pattern == 'prefix' else ''}`"
                 + (" (prefix)" if g.pattern == "prefix" else ""), g.why) for g in principal.grants]  # fmt: skip
        rows += [(f"at most {v:.0f} bytes/s", f"quota `{k}`", "the broker throttles a flood (`[relay] party_quota`)")
                 for k, v in principal.quotas]  # fmt: skip
        for may, on, why in rows:
            line = f"| `{xx(principal.user)}` | {may} | {on} | {why} |"
            if line not in seen:
                seen.add(line)
                lines.append(line)
    return "\n".join(lines) + "\n"


def render_plan(plan: list[Principal]) -> str:
    """The plan as `launchrelay access show` prints it: each user, then its grants (``*``: a name prefix)."""
    lines = []
    for principal in plan:
        lines.append(f"User:{principal.user}  ({principal.role}{' ' + principal.party if principal.party else ''})")
        for g in principal.grants:
            name = g.name + ("*" if g.pattern == "prefix" else "")
            lines.append(f"  {g.resource:<16} {name:<40} {', '.join(g.operations)}")
        for quota, value in principal.quotas:
            lines.append(f"  {'quota':<16} {quota:<40} {value:.0f} bytes/s")
    return "\n".join(lines)
