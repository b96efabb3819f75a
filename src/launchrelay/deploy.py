"""Deployment resources generated from a config: Strimzi topics and one user per party, with ACLs.

A party may write only its own out topic and read only its own in topic; the
relay and the tracker get exactly what they use. The files in deploy/strimzi/
are this module's output for deploy/k8s/launchrelay.toml.
"""

from __future__ import annotations

import re
from typing import Any

from launchrelay.agreements.config import Deployment
from launchrelay.broker.admin import topic_specs
from launchrelay.topics import Topics

API = "kafka.strimzi.io/v1beta2"


def _k8s_name(text: str) -> str:
    """A Kubernetes resource name (lowercase DNS subdomain) for a topic or user."""
    return re.sub(r"[^a-z0-9.-]", "-", text.lower()).strip("-.")


def _acl(kind: str, name: str, operations: list[str], pattern: str = "literal") -> dict[str, Any]:
    return {"resource": {"type": kind, "name": name, "patternType": pattern}, "operations": operations}


def _user(cluster: str, name: str, acls: list[dict[str, Any]], role: str) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "KafkaUser",
        "metadata": {
            "name": _k8s_name(name),
            "labels": {"strimzi.io/cluster": cluster, "app.kubernetes.io/part-of": "launchrelay", "role": role},
        },
        "spec": {
            "authentication": {"type": "scram-sha-512"},
            "authorization": {"type": "simple", "acls": acls},
        },
    }


def strimzi_resources(deployment: Deployment, cluster: str = "launchrelay") -> list[dict[str, Any]]:
    """KafkaTopic for every topic of the convention, KafkaUser per party, for the relay and the tracker."""
    relay = deployment.relay
    topics = Topics(relay.topic_prefix)
    parties = sorted(deployment.parties)
    out: list[dict[str, Any]] = []
    for spec in topic_specs(topics, parties, relay.partitions, relay.replication_factor, relay.max_message_bytes):
        resource: dict[str, Any] = {
            "apiVersion": API,
            "kind": "KafkaTopic",
            "metadata": {"name": _k8s_name(spec.name), "labels": {"strimzi.io/cluster": cluster}},
            "spec": {"topicName": spec.name, "partitions": spec.num_partitions, "replicas": spec.replication_factor},
        }
        if spec.topic_configs:
            resource["spec"]["config"] = dict(spec.topic_configs)
        out.append(resource)
    for code in parties:
        out.append(
            _user(
                cluster,
                f"{topics.prefix}-party-{code}",
                [
                    _acl("topic", topics.outbound(code), ["Write", "Describe"]),
                    _acl("topic", topics.inbound(code), ["Read", "Describe"]),
                    _acl("group", f"{topics.prefix}.inbox.{code}", ["Read"], "prefix"),
                ],
                role="party",
            )
        )
    writes = [topics.inbound(p) for p in parties] + [topics.status, topics.deadletter, topics.relay_state]
    out.append(
        _user(
            cluster,
            f"{topics.prefix}-relay",
            [
                *(_acl("topic", topics.outbound(p), ["Read", "Describe"]) for p in parties),
                *(_acl("topic", t, ["Write", "Describe"]) for t in writes),
                _acl("topic", topics.relay_state, ["Read"]),
                _acl("group", f"{topics.prefix}.relay", ["Read"]),
                _acl("transactionalId", f"{topics.prefix}.relay.", ["Write", "Describe"], "prefix"),
            ],
            role="relay",
        )
    )
    out.append(
        _user(
            cluster,
            f"{topics.prefix}-tracker",
            [
                _acl("topic", topics.status, ["Read", "Write", "Describe"]),
                *(_acl("topic", topics.inbound(p), ["Write", "Describe"]) for p in parties),
                *(_acl("topic", topics.outbound(p), ["Read", "Describe"]) for p in parties),
                _acl("transactionalId", f"{topics.prefix}.tracker", ["Write", "Describe"]),
            ],
            role="tracker",
        )
    )
    return out
