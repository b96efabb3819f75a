"""Deployment files, checked without a cluster or a Docker engine: each against the schema its own project
publishes, and against the project's naming convention (topics, ACLs: a party writes only its out topic and
reads only its in topic)."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

import schemas
from launchrelay.agreements.config import load_config
from launchrelay.deploy import strimzi_resources
from launchrelay.settings import Settings
from launchrelay.topics import Topics

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
CONFIG = K8S / "launchrelay.toml"
K8S_VERSION = "1.30.0"


def _k8s_docs() -> list[tuple[str, dict[str, Any]]]:
    return [(p.name, d) for p in sorted(K8S.glob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d]


# --- docker compose ------------------------------------------------------------------------------


def compose_validator() -> jsonschema.Draft201909Validator:
    return jsonschema.Draft201909Validator(json.loads(schemas.path("compose-spec.json").read_text()))


def test_compose_file_matches_the_compose_specification() -> None:
    """docker-compose.yml validates against the Compose specification's schema; a broken copy does not."""
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    validator = compose_validator()
    assert list(validator.iter_errors(doc)) == []
    broken = copy.deepcopy(doc)
    broken["services"]["relay"]["depends_on"] = {"topics": {"condition": "eventually"}}
    assert list(validator.iter_errors(broken)), "the schema must reject an unknown depends_on condition"


def test_compose_runs_kafka_relay_tracker_topics_and_a_demo_profile() -> None:
    """Official Kafka image in KRaft mode, topic creation before the services, health checks, mounted config
    and key, and the demo behind its own profile."""
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:4.")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["topics"]["command"] == ["topics", "create"]
    for name in ("relay", "tracker"):
        svc = services[name]
        assert svc["command"] == [name]
        assert svc["depends_on"]["topics"]["condition"] == "service_completed_successfully"
        assert svc["healthcheck"]["test"] == ["CMD", "launchrelay", "health", "--ready"]
        assert "relay_key" in svc["secrets"]
        assert any(v.endswith(":/etc/launchrelay/launchrelay.toml:ro") for v in svc["volumes"])
    assert services["demo"]["profiles"] == ["demo"] and services["demo"]["command"] == ["demo"]
    assert "healthcheck" in services["kafka"]


def test_dockerfile_runs_the_cli_unprivileged_with_a_health_check() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in text and 'ENTRYPOINT ["launchrelay"]' in text
    assert "USER 10001" in text and "HEALTHCHECK" in text and "LAUNCHRELAY_METRICS_PORT=9400" in text


# --- Kubernetes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "doc"), _k8s_docs(), ids=lambda x: x if isinstance(x, str) else x["kind"])
def test_kubernetes_manifest_is_valid(name: str, doc: dict[str, Any]) -> None:
    """Every manifest in deploy/k8s validates (strictly) against Kubernetes' own schema."""
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_kubernetes_validation_rejects_a_broken_manifest() -> None:
    deployment = next(d for _, d in _k8s_docs() if d["kind"] == "Deployment")
    broken = copy.deepcopy(deployment)
    broken["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["paht"] = "/healthz"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_deployments_probe_health_and_readiness_and_mount_config_and_keys() -> None:
    """Relay and tracker Deployments: liveness on /healthz, readiness on /readyz (the metrics port), the config
    from the ConfigMap, the key from the Secret; the tracker runs alone with a persistent ledger."""
    docs = dict((f"{d['kind']}/{d['metadata']['name']}", d) for _, d in _k8s_docs())
    for name in ("relay", "tracker"):
        dep = docs[f"Deployment/launchrelay-{name}"]
        pod = dep["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["args"] == [name]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        env = {e["name"]: e for e in container["env"]}
        assert env["LAUNCHRELAY_METRICS_PORT"]["value"] == str(container["ports"][0]["containerPort"])
        assert env["LAUNCHRELAY_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == f"launchrelay-{name}"
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["config"]["configMap"]["name"] == "launchrelay-config"
        assert volumes["keys"]["secret"]["secretName"] == "launchrelay-keys"
        # every variable is a real setting, and the brokers' CA is the file Strimzi's cluster-CA secret holds
        fields = {f"LAUNCHRELAY_{f.upper()}" for f in Settings.model_fields}
        assert set(env) <= fields, set(env) - fields
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        ca = volumes["kafka-ca"]["secret"]
        assert ca["secretName"] == "launchrelay-cluster-ca-cert" and ca["items"] == [
            {"key": "ca.crt", "path": "ca.crt"}
        ]
        assert env["LAUNCHRELAY_KAFKA_SSL_CAFILE"]["value"] == mounts["kafka-ca"] + "/ca.crt"
    assert docs["Deployment/launchrelay-tracker"]["spec"]["replicas"] == 1
    assert docs["Deployment/launchrelay-tracker"]["spec"]["strategy"]["type"] == "Recreate"
    assert "relay.pem" in docs["Secret/launchrelay-keys"]["stringData"]
    assert docs["ConfigMap/launchrelay-config"]["data"]["launchrelay.toml"].strip() == CONFIG.read_text().strip()


# --- Strimzi -------------------------------------------------------------------------------------


def test_strimzi_resources_are_current() -> None:
    """deploy/strimzi/resources.yaml is what `launchrelay deploy strimzi` makes from deploy/k8s/launchrelay.toml."""
    committed = [d for d in yaml.safe_load_all((ROOT / "deploy/strimzi/resources.yaml").read_text()) if d]
    assert committed == strimzi_resources(load_config(CONFIG)), "regenerate: launchrelay deploy strimzi"


def test_strimzi_resources_bind_to_strimzis_own_model() -> None:
    """Every KafkaTopic and KafkaUser binds to Strimzi's API classes (io.strimzi:api) with no unknown field."""
    run = subprocess.run(
        ["java", "-cp", f"{schemas.strimzi_libs()}/*", str(ROOT / "tests/java/ValidateStrimzi.java"),
         str(ROOT / "deploy/strimzi/resources.yaml")],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "12 resources, 0 problems" in run.stdout  # 7 topics, 2 parties, relay, tracker, operator


def test_strimzi_check_catches_a_typo(tmp_path: Path) -> None:
    broken = (ROOT / "deploy/strimzi/resources.yaml").read_text().replace("topicName:", "topicNmae:", 1)
    (tmp_path / "broken.yaml").write_text(broken)
    run = subprocess.run(
        ["java", "-cp", f"{schemas.strimzi_libs()}/*", str(ROOT / "tests/java/ValidateStrimzi.java"),
         str(tmp_path / "broken.yaml")],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert run.returncode == 1 and "topicNmae" in run.stdout


def test_topics_follow_the_naming_convention() -> None:
    deployment = load_config(CONFIG)
    topics = Topics(deployment.relay.topic_prefix)
    resources = strimzi_resources(deployment)
    names = {r["spec"]["topicName"] for r in resources if r["kind"] == "KafkaTopic"}
    assert names == set(topics.all_for(list(deployment.parties)))
    configs = {r["spec"]["topicName"]: r["spec"].get("config", {}) for r in resources if r["kind"] == "KafkaTopic"}
    assert configs[topics.outbound("CN")]["message.timestamp.type"] == "LogAppendTime"
    assert configs[topics.relay_state]["cleanup.policy"] == "compact"


def _topic_access(user: dict[str, Any]) -> dict[str, set[str]]:
    access: dict[str, set[str]] = {}
    for acl in user["spec"]["authorization"]["acls"]:
        if acl["resource"]["type"] == "topic":
            for op in acl["operations"]:
                access.setdefault(op, set()).add(acl["resource"]["name"])
    return access


def test_each_party_writes_only_its_out_topic_and_reads_only_its_in_topic() -> None:
    """Isolation by ACL: party XX may Write exactly P.XX.out and Read exactly P.XX.in, nothing else."""
    deployment = load_config(CONFIG)
    topics = Topics(deployment.relay.topic_prefix)
    users = {r["metadata"]["name"]: r for r in strimzi_resources(deployment) if r["kind"] == "KafkaUser"}
    for code in deployment.parties:
        access = _topic_access(users[f"launchrelay-party-{code.lower()}"])
        assert access["Write"] == {topics.outbound(code)}
        assert access["Read"] == {topics.inbound(code)}
        assert set(access) <= {"Write", "Read", "Describe"}
    relay = _topic_access(users["launchrelay-relay"])
    assert relay["Read"] == {topics.outbound(p) for p in deployment.parties} | {topics.relay_state}
    assert topics.status in relay["Write"] and topics.deadletter in relay["Write"]
    operator = _topic_access(users["launchrelay-operator"])
    assert operator["Read"] == {topics.deadletter}  # no party's in topic: forwards stay between the parties
    assert operator["Write"] == {topics.outbound(p) for p in deployment.parties}  # to redrive, never an in topic
