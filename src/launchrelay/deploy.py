"""Deployment resources generated from a config: Strimzi topics and one user per party, with ACLs.

Who may do what comes from :func:`launchrelay.access.access_plan`. The files in deploy/strimzi/
are this module's output for deploy/k8s/launchrelay.toml.
"""

from __future__ import annotations

from typing import Any

from launchrelay.access import Principal, access_plan, k8s_name
from launchrelay.agreements.config import Deployment
from launchrelay.kafka.admin import topic_specs
from launchrelay.topics import Topics

API = "kafka.strimzi.io/v1beta2"


def _user(cluster: str, principal: Principal) -> dict[str, Any]:
    acls = [
        {"resource": {"type": g.resource, "name": g.name, "patternType": g.pattern}, "operations": list(g.operations)}
        for g in principal.grants
    ]
    spec: dict[str, Any] = {
        "authentication": {"type": "scram-sha-512"},
        "authorization": {"type": "simple", "acls": acls},
    }
    if principal.quotas:  # Strimzi's names for Kafka's quota keys: producer_byte_rate -> producerByteRate
        spec["quotas"] = {_camel(k): int(v) for k, v in principal.quotas}
    return {
        "apiVersion": API,
        "kind": "KafkaUser",
        "metadata": {
            "name": principal.user,
            "labels": {
                "strimzi.io/cluster": cluster,
                "app.kubernetes.io/part-of": "launchrelay",
                "role": principal.role,
            },
        },
        "spec": spec,
    }


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(w.capitalize() for w in rest)


def strimzi_resources(deployment: Deployment, cluster: str = "launchrelay") -> list[dict[str, Any]]:
    """KafkaTopic for every topic of the convention, KafkaUser per party, for the relay and the tracker."""
    relay = deployment.relay
    topics = Topics(relay.topic_prefix)
    parties = sorted(deployment.parties)
    out: list[dict[str, Any]] = []
    # a Strimzi cluster is sized for production: three copies unless the config says otherwise
    replication = relay.replication_factor or 3
    for spec in topic_specs(topics, parties, relay.partitions, replication, relay.max_message_bytes):
        resource: dict[str, Any] = {
            "apiVersion": API,
            "kind": "KafkaTopic",
            "metadata": {"name": k8s_name(spec.name), "labels": {"strimzi.io/cluster": cluster}},
            "spec": {"topicName": spec.name, "partitions": spec.num_partitions, "replicas": spec.replication_factor},
        }
        if spec.topic_configs:
            resource["spec"]["config"] = dict(spec.topic_configs)
        out.append(resource)
    out.extend(_user(cluster, principal) for principal in access_plan(deployment))
    return out
