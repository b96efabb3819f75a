"""Deployment files, checked without a cluster or a Docker engine: each against the schema its own project
publishes, and against the project's naming convention (topics, ACLs: a party writes only its out topic and
reads only its in topic)."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

import schemas
from launchrelay.access import access_plan, managed_user, render_plan
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


def test_compose_runs_kafka_init_topics_relay_tracker_and_a_demo_profile() -> None:
    """Official Kafka image in KRaft mode; set-up by the image itself (init, then topics) before the services;
    health checks; config and keys from the config volume; the demo behind its own profile."""
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:4.")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    init = services["init"]
    assert init["command"][:2] == ["init", "/etc/launchrelay"] and init["volumes"] == ["config:/etc/launchrelay"]
    assert services["topics"]["command"] == ["topics", "create"]
    for name in ("topics", "relay", "tracker"):
        svc = services[name]
        assert svc["depends_on"]["init"]["condition"] == "service_completed_successfully"
        assert "config:/etc/launchrelay:ro" in svc["volumes"]
        assert svc["environment"]["LAUNCHRELAY_RELAY_KEY"] == "/etc/launchrelay/keys/relay.pem"
        assert svc["environment"]["LAUNCHRELAY_RELAY_KEY_ID"] == "relay-compose" == init["command"][5]
    for name in ("relay", "tracker"):
        svc = services[name]
        assert svc["command"] == [name]
        assert svc["depends_on"]["topics"]["condition"] == "service_completed_successfully"
        assert svc["healthcheck"]["test"] == ["CMD", "launchrelay", "health", "--ready"]
    assert services["demo"]["profiles"] == ["demo"] and services["demo"]["command"] == ["demo"]
    assert "healthcheck" in services["kafka"]
    console = services["console"]
    assert console["command"] == ["console"] and console["ports"] == ["8080:8080"]
    assert console["environment"]["LAUNCHRELAY_LEDGER"] == services["tracker"]["environment"]["LAUNCHRELAY_LEDGER"]
    assert set(console["volumes"]) >= {"config:/etc/launchrelay:ro", "ledger:/var/lib/launchrelay/ledger"}
    assert console["environment"]["LAUNCHRELAY_CONSOLE_USERS"].startswith("/etc/launchrelay/")


def test_compose_keeps_kafka_data_and_the_ledger_in_volumes() -> None:
    """The Kafka image writes where its volume is mounted (its default, /tmp/kraft-combined-logs, would go
    with the container), with a fixed cluster id so a re-created container keeps its storage; the ledger
    directory the tracker writes is one the image gives its user."""
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    kafka = services["kafka"]
    mounts = dict(v.split(":")[::-1] for v in kafka["volumes"])
    assert kafka["environment"]["KAFKA_LOG_DIRS"] in mounts and kafka["environment"]["CLUSTER_ID"]
    ledger = services["tracker"]["environment"]["LAUNCHRELAY_LEDGER"]
    tracker_mounts = dict(v.split(":")[:2][::-1] for v in services["tracker"]["volumes"])
    assert str(Path(ledger).parent) in tracker_mounts
    assert f"chown 10001:10001 {Path(ledger).parent}" in (ROOT / "Dockerfile").read_text()


def test_compose_two_centre_profile_gives_each_centre_its_own_cluster_relay_tracker_and_mirror(
    tmp_path: Path,
) -> None:
    """Profile "two-centres": per centre a Kafka (its own data, cluster id and host port), topics, relay and
    tracker pointed at that Kafka with that centre's config and key, and Kafka's own MirrorMaker 2 (from the
    Kafka image) running the properties `launchrelay init-centres` writes for what that centre receives, into
    that centre's cluster. The files it names are the ones init-centres writes, and they load; nothing of the
    one-cluster project depends on the profile."""
    from launchrelay.centres import write_centres
    from launchrelay.provision.mirror import ClusterAccess, mirror_properties, render

    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    two = {name for name, svc in services.items() if svc.get("profiles") == ["two-centres"]}
    per_centre = ("kafka", "topics", "relay", "tracker", "mirror")
    assert two == {"centres-init"} | {f"{k}-{p}" for k in per_centre for p in ("cn", "ru")}
    for name, svc in services.items():
        if name not in two and not svc.get("profiles"):
            assert not set(svc.get("depends_on", {})) & two, name
    init = services["centres-init"]["command"]
    assert init[:2] == ["init-centres", "/etc/launchrelay"]
    bootstraps = dict(init[i + 1].split("=") for i, a in enumerate(init) if a == "--bootstrap")
    written = write_centres(tmp_path, bootstraps)
    assert {p.relative_to(tmp_path).as_posix() for p in written} == {
        f"{P}/{f}" for P in ("CN", "RU") for f in ("launchrelay.toml", "relay.pem", "mm2.properties")
    }
    assert (tmp_path / "CN" / "relay.pem").stat().st_mode & 0o077 == 0, "a private key readable by its owner only"
    ports, ids = set(), set()
    for party, other in (("CN", "RU"), ("RU", "CN")):
        p, o = party.lower(), other.lower()
        kafka = services[f"kafka-{p}"]
        assert f"PLAINTEXT://{bootstraps[party]}" in kafka["environment"]["KAFKA_ADVERTISED_LISTENERS"]
        ports.add(kafka["ports"][0].split(":")[0])
        ids.add(kafka["environment"]["CLUSTER_ID"])
        assert kafka["volumes"] == [f"kafka-{p}-data:/var/lib/kafka/data"]
        config = load_config(tmp_path / party / "launchrelay.toml")
        assert config.centre is not None and config.centre.party == party
        assert config.links[other].bootstrap == bootstraps[other]
        for name in (f"topics-{p}", f"relay-{p}", f"tracker-{p}"):
            env = services[name]["environment"]
            assert env["LAUNCHRELAY_BOOTSTRAP_SERVERS"] == bootstraps[party], name
            assert env["LAUNCHRELAY_CONFIG"] == f"/etc/launchrelay/{party}/launchrelay.toml", name
            assert env["LAUNCHRELAY_RELAY_KEY"] == f"/etc/launchrelay/{party}/relay.pem", name
            assert env["LAUNCHRELAY_RELAY_KEY_ID"] in config.relay.keys, name
            assert services[name]["depends_on"][f"kafka-{p}"]["condition"] == "service_healthy"
        assert f"ledger-{p}:/var/lib/launchrelay/ledger" in services[f"tracker-{p}"]["volumes"]
        mirror = services[f"mirror-{p}"]
        assert mirror["image"] == kafka["image"] and mirror["entrypoint"] == ["/opt/kafka/bin/connect-mirror-maker.sh"]
        assert mirror["command"] == [f"/etc/launchrelay/{party}/mm2.properties", "--clusters", party]
        assert set(mirror["depends_on"]) == {f"topics-{p}", f"kafka-{o}"}
        expected = mirror_properties(ClusterAccess(other, bootstraps[other]), ClusterAccess(party, bootstraps[party]),
                                     f"lr.link.{party}")  # fmt: skip
        assert (tmp_path / party / "mm2.properties").read_text() == render(expected)
    assert len(ports) == 2 and len(ids) == 2, "two clusters, two host ports"
    assert write_centres(tmp_path, bootstraps) == [], "kept when they exist"


def test_compose_demo_environment_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo service's environment is one the settings accept (an empty METRICS_PORT crashed it once)."""
    env = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["demo"]["environment"]
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert Settings.load().metrics_port is None


def test_dockerfile_runs_the_cli_unprivileged_with_a_health_check() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["launchrelay"]' in text
    assert "USER 10001" in text and "HEALTHCHECK" in text and "LAUNCHRELAY_METRICS_PORT=9400" in text


def test_dockerfile_builds_reproducibly_from_the_lock() -> None:
    """A pinned base (to the patch release), dependencies from the hashed lock in a layer before the source,
    the codecs in the lock, OCI labels, and the licence the package declares."""
    text = (ROOT / "Dockerfile").read_text()
    base = re.search(r"^ARG PYTHON_IMAGE=python:(\d+)\.(\d+)\.(\d+)-slim-\w+$", text, re.MULTILINE)
    assert base and base.groups()[:2] == ("3", "11"), "the base names a patch release"
    assert text.index("COPY requirements.lock") < text.index("--require-hashes") < text.index("COPY src")
    for label in ("title", "version", "licenses", "source", "description"):
        assert f"org.opencontainers.image.{label}=" in text
    lock = (ROOT / "requirements.lock").read_text()
    pinned = {m.group(1).lower() for m in re.finditer(r"^([A-Za-z0-9_.-]+)==", lock, re.MULTILINE)}
    assert {"aiokafka", "cramjam", "pydantic", "cryptography"} <= pinned, "codecs (cramjam) and the core pinned"
    assert all("--hash=sha256:" in block for block in lock.split("==")[1:])
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {re.split(r"[<>=\[;! ]", d, maxsplit=1)[0].lower() for d in project["dependencies"]}
    assert wanted <= pinned, f"requirements.lock is stale (make lock): {wanted - pinned}"
    dev = (ROOT / "requirements-dev.lock").read_text()
    extras = [*project["optional-dependencies"]["dev"], *project["optional-dependencies"]["bench"]]
    dev_wanted = {re.split(r"[<>=\[;! ]", d, maxsplit=1)[0].lower() for d in extras}
    assert all(f"\n{name}==" in dev.lower() for name in dev_wanted), "requirements-dev.lock is stale (make lock)"
    assert project["license"]["text"] == "Apache-2.0"
    assert "Apache License" in (ROOT / "LICENSE").read_text() and "Version 2.0" in (ROOT / "LICENSE").read_text()


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


#: volume types the "restricted" Pod Security Standard allows
_RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                       "projected", "secret"}  # fmt: skip


def restricted_violations(pod: dict[str, Any]) -> list[str]:
    """What in ``pod`` (a PodSpec) breaks the Pod Security Standards' "restricted" profile (Kubernetes 1.30),
    plus a read-only root filesystem, which this project asks of its own containers."""
    out = []
    pod_ctx = pod.get("securityContext", {})
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(key):
            out.append(f"pod: {key}")
    for v in pod.get("volumes", []):
        kinds = set(v) - {"name"}
        if not kinds <= _RESTRICTED_VOLUMES:
            out.append(f"volume {v['name']}: type {sorted(kinds)}")
    pod_seccomp = pod_ctx.get("seccompProfile", {}).get("type")
    for c in [*pod.get("initContainers", []), *pod["containers"]]:
        ctx = c.get("securityContext", {})
        name = c["name"]
        if ctx.get("privileged"):
            out.append(f"{name}: privileged")
        if ctx.get("allowPrivilegeEscalation") is not False:
            out.append(f"{name}: allowPrivilegeEscalation must be false")
        caps = ctx.get("capabilities", {})
        if "ALL" not in caps.get("drop", []):
            out.append(f"{name}: capabilities must drop ALL")
        if set(caps.get("add", [])) - {"NET_BIND_SERVICE"}:
            out.append(f"{name}: adds capabilities {caps['add']}")
        if ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot")) is not True:
            out.append(f"{name}: runAsNonRoot must be true")
        if ctx.get("runAsUser", pod_ctx.get("runAsUser")) == 0:
            out.append(f"{name}: runs as root")
        if ctx.get("seccompProfile", {}).get("type", pod_seccomp) not in ("RuntimeDefault", "Localhost"):
            out.append(f"{name}: seccompProfile must be RuntimeDefault or Localhost")
        if ctx.get("readOnlyRootFilesystem") is not True:
            out.append(f"{name}: readOnlyRootFilesystem must be true")
        for port in c.get("ports", []):
            if "hostPort" in port:
                out.append(f"{name}: hostPort")
    return out


def _pods() -> list[tuple[str, dict[str, Any]]]:
    kinds = {"Deployment", "StatefulSet", "DaemonSet", "Job"}
    return [(d["metadata"]["name"], d["spec"]["template"]["spec"]) for _, d in _k8s_docs() if d["kind"] in kinds]


def test_every_pod_meets_the_restricted_pod_security_profile() -> None:
    pods = _pods()
    assert {name for name, _ in pods} == {"launchrelay-relay", "launchrelay-tracker", "launchrelay-proofs"}
    for name, pod in pods:
        assert restricted_violations(pod) == [], name


def test_the_restricted_check_catches_what_it_should() -> None:
    _, pod = _pods()[0]
    for path, value, expect in (
        (("containers", 0, "securityContext", "allowPrivilegeEscalation"), True, "allowPrivilegeEscalation"),
        (("containers", 0, "securityContext", "capabilities", "drop"), [], "drop ALL"),
        (("securityContext", "seccompProfile", "type"), "Unconfined", "seccompProfile"),
        (("securityContext", "runAsNonRoot"), False, "runAsNonRoot"),
        (("containers", 0, "securityContext", "readOnlyRootFilesystem"), False, "readOnlyRootFilesystem"),
        (("volumes", 0), {"name": "host", "hostPath": {"path": "/"}}, "hostPath"),
    ):
        broken = copy.deepcopy(pod)
        target = broken
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        assert any(expect in v for v in restricted_violations(broken)), path


def test_relay_has_a_disruption_budget_and_both_a_network_policy_and_a_service_monitor() -> None:
    """Evictions leave a relay running; relay, tracker and publisher of proofs reach only Kafka and DNS and are
    reached only by the monitoring namespace on the metrics port; the ServiceMonitor scrapes their metrics
    Services."""
    docs = {f"{d['kind']}/{d['metadata']['name']}": d for _, d in _k8s_docs()}
    relay_labels = docs["Deployment/launchrelay-relay"]["spec"]["template"]["metadata"]["labels"]
    pdb = docs["PodDisruptionBudget/launchrelay-relay"]["spec"]
    assert pdb["minAvailable"] == 1 and pdb["minAvailable"] < docs["Deployment/launchrelay-relay"]["spec"]["replicas"]
    assert pdb["selector"]["matchLabels"].items() <= relay_labels.items()
    policy = docs["NetworkPolicy/launchrelay-services"]["spec"]
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    (selected,) = policy["podSelector"]["matchExpressions"]
    assert set(selected["values"]) == {"launchrelay-relay", "launchrelay-tracker", "launchrelay-proofs"}
    assert [p["port"] for rule in policy["ingress"] for p in rule["ports"]] == [9400, 8080]
    egress_ports = sorted(p["port"] for rule in policy["egress"] for p in rule["ports"])
    assert egress_ports == [53, 53, 9093, 9400]  # DNS, Kafka, and the console's health page asking the relays
    bootstrap = docs["Deployment/launchrelay-relay"]["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"]
    assert bootstrap.endswith(":9093"), "the policy's Kafka port is the one the services use"
    monitor = yaml.safe_load((K8S / "monitoring" / "servicemonitor.yaml").read_text())
    assert monitor["kind"] == "ServiceMonitor" and monitor["spec"]["endpoints"][0]["port"] == "metrics"
    (wanted,) = monitor["spec"]["selector"]["matchExpressions"]
    for name in ("relay", "tracker", "proofs"):
        svc = docs[f"Service/launchrelay-{name}-metrics"]
        assert svc["metadata"]["labels"]["app.kubernetes.io/name"] in wanted["values"]
        assert svc["spec"]["ports"][0]["name"] == "metrics"


def test_topics_keep_three_copies_and_need_two_for_a_write() -> None:
    """In the Kubernetes deployment every topic has 3 replicas and min.insync.replicas 2: a broker may fail
    without a write lost or refused."""
    topics = [r for r in strimzi_resources(load_config(CONFIG)) if r["kind"] == "KafkaTopic"]
    assert topics and all(t["spec"]["replicas"] == 3 for t in topics)
    assert all(t["spec"]["config"]["min.insync.replicas"] == "2" for t in topics)


def test_deployments_probe_health_and_readiness_and_mount_config_and_keys() -> None:
    """Relay, tracker and publisher-of-proofs Deployments: liveness on /healthz, readiness on /readyz (the metrics
    port), the config from the ConfigMap, the key from the Secret (the publisher signs nothing and mounts none); the
    tracker runs alone with a persistent ledger; the console beside it has the operators' redrive key (its own
    Secret, registered in the config), which nothing else mounts. The publisher runs as the relay's user, one at
    most, and none while the sample config keeps no decision log (it would refuse to start)."""
    docs = dict((f"{d['kind']}/{d['metadata']['name']}", d) for _, d in _k8s_docs())
    for name, args, user in (("relay", ["relay"], "relay"), ("tracker", ["tracker"], "tracker"),
                             ("proofs", ["audit", "publish"], "relay")):  # fmt: skip
        dep = docs[f"Deployment/launchrelay-{name}"]
        pod = dep["spec"]["template"]["spec"]
        container = pod["containers"][0]
        assert container["args"] == args
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        env = {e["name"]: e for e in container["env"]}
        assert env["LAUNCHRELAY_METRICS_PORT"]["value"] == str(container["ports"][0]["containerPort"])
        assert env["LAUNCHRELAY_KAFKA_SASL_USERNAME"]["value"] == f"launchrelay-{user}"
        assert env["LAUNCHRELAY_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == f"launchrelay-{user}"
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["config"]["configMap"]["name"] == "launchrelay-config"
        if name == "proofs":
            assert "keys" not in volumes and "LAUNCHRELAY_RELAY_KEY" not in env
        else:
            assert volumes["keys"]["secret"]["secretName"] == "launchrelay-keys"
        metrics = docs[f"Service/launchrelay-{name}-metrics"]["spec"]
        assert metrics["selector"] == {"app.kubernetes.io/name": f"launchrelay-{name}"}
        # every variable is a real setting, and the brokers' CA is the file Strimzi's cluster-CA secret holds
        fields = {f"LAUNCHRELAY_{f.upper()}" for f in Settings.model_fields}
        assert set(env) <= fields, set(env) - fields
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        ca = volumes["kafka-ca"]["secret"]
        assert ca["secretName"] == "launchrelay-cluster-ca-cert" and ca["items"] == [
            {"key": "ca.crt", "path": "ca.crt"}
        ]
        assert env["LAUNCHRELAY_KAFKA_SSL_CAFILE"]["value"] == mounts["kafka-ca"] + "/ca.crt"
    tracker_pod = docs["Deployment/launchrelay-tracker"]["spec"]["template"]["spec"]
    assert [c["name"] for c in tracker_pod["containers"]] == ["tracker", "console"], "the console reads the ledger"
    console = tracker_pod["containers"][1]
    console_env = {e["name"]: e.get("value") for e in console["env"]}
    tracker_env = {e["name"]: e.get("value") for e in tracker_pod["containers"][0]["env"]}
    assert console_env["LAUNCHRELAY_LEDGER"] == tracker_env["LAUNCHRELAY_LEDGER"]
    assert console_env["LAUNCHRELAY_KAFKA_SASL_USERNAME"] == "launchrelay-operator"
    assert console_env["LAUNCHRELAY_CONSOLE_BEHIND_TLS"] == "true"
    # redrives from the console are signed with a key of its own Secret, under an id the config registers
    console_mounts = {m["name"]: m["mountPath"] for m in console["volumeMounts"]}
    tracker_volumes = {v["name"]: v for v in tracker_pod["volumes"]}
    assert tracker_volumes["operator-key"]["secret"]["secretName"] == "launchrelay-operator-key"
    assert console_env["LAUNCHRELAY_OPERATOR_KEY"] == console_mounts["operator-key"] + "/operator.pem"
    assert console_env["LAUNCHRELAY_OPERATOR_KEY_ID"] in load_config(CONFIG).relay.operator_keys
    assert "operator.pem" in docs["Secret/launchrelay-operator-key"]["stringData"]
    assert "operator-key" not in {m["name"] for m in tracker_pod["containers"][0]["volumeMounts"]}
    assert docs["Service/launchrelay-console"]["spec"]["ports"][0]["targetPort"] == "console"
    assert docs["Deployment/launchrelay-tracker"]["spec"]["replicas"] == 1
    proofs = docs["Deployment/launchrelay-proofs"]["spec"]
    assert proofs["strategy"]["type"] == "Recreate"
    assert proofs["replicas"] == int(load_config(CONFIG).relay.decision_log)
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
    parties = [*(topics.outbound(p) for p in deployment.parties), *(topics.inbound(p) for p in deployment.parties)]
    assert names == {topics.status, topics.deadletter, topics.relay_state, *parties}
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
    # the dead letters and the out topics (the story page shows the bytes a notice was judged on; the refused
    # ones' bytes are in the dead letters already), no party's in topic: forwards stay between the parties
    assert operator["Read"] == {topics.deadletter} | {topics.outbound(p) for p in deployment.parties}
    assert operator["Write"] == {topics.outbound(p) for p in deployment.parties}  # to redrive, never an in topic


def test_with_the_decision_log_each_party_reads_its_own_proofs_and_the_relays_user_writes_them(tmp_path: Path) -> None:
    """Issue 29: a party reads its own view of the log (never another's, never the log topic: its leaves name
    every party's decisions); the relay's user, which runs `audit publish`, reads the log and writes the views,
    with a consumer group of its own and a transactional id under the relay's prefix; the operator exports the log."""
    from launchrelay.access import PROOFS_ID

    (tmp_path / "c.toml").write_text(CONFIG.read_text().replace("[relay]", "[relay]\ndecision_log = true", 1))
    deployment = load_config(tmp_path / "c.toml")
    topics = deployment.topics
    users = {r["metadata"]["name"]: r for r in strimzi_resources(deployment) if r["kind"] == "KafkaUser"}
    for code in deployment.parties:
        reads = _topic_access(users[f"launchrelay-party-{code.lower()}"])["Read"]
        assert reads == {topics.inbound(code), topics.proofs(code)}, code
    relay = next(p for p in access_plan(deployment) if p.role == "relay")
    access = _topic_access(users["launchrelay-relay"])
    assert topics.decision_log in access["Read"] and topics.decision_log in access["Write"]
    assert {topics.proofs(p) for p in deployment.parties} <= access["Write"]
    assert not {topics.proofs(p) for p in deployment.parties} & access["Read"]
    proofs_id = PROOFS_ID.format(prefix=topics.prefix)
    assert any(g.resource == "group" and g.name == proofs_id for g in relay.grants)
    assert any(g.resource == "transactionalId" and proofs_id.startswith(g.name) for g in relay.grants)
    operator = _topic_access(users["launchrelay-operator"])
    assert operator["Read"] >= {topics.decision_log} | {topics.proofs(p) for p in deployment.parties}
    assert not {topics.proofs(p) for p in deployment.parties} & operator.get("Write", set())


def test_party_quotas_from_the_config_reach_strimzi_and_access_show(tmp_path: Path) -> None:
    """A party's quota (its own, or the relay's default) is in the plan, Strimzi's spec.quotas and `access show`."""
    text = CONFIG.read_text().replace("[relay]", "[relay]\nparty_quota = { producer_byte_rate = 20000 }", 1)
    text += "\n[parties.RU.quota]\nproducer_byte_rate = 5000\nconsumer_byte_rate = 70000\n"
    (tmp_path / "c.toml").write_text(text)
    deployment = load_config(tmp_path / "c.toml")
    plan = {p.user: dict(p.quotas) for p in access_plan(deployment)}
    assert plan["launchrelay-party-cn"] == {"producer_byte_rate": 20000.0}
    assert plan["launchrelay-party-ru"] == {"producer_byte_rate": 5000.0, "consumer_byte_rate": 70000.0}
    assert plan["launchrelay-relay"] == plan["launchrelay-tracker"] == {}  # the services are never throttled
    users = {r["metadata"]["name"]: r["spec"] for r in strimzi_resources(deployment) if r["kind"] == "KafkaUser"}
    assert users["launchrelay-party-ru"]["quotas"] == {"producerByteRate": 5000, "consumerByteRate": 70000}
    assert "quotas" not in users["launchrelay-relay"]
    shown = render_plan(access_plan(deployment))
    assert "quota            producer_byte_rate                       5000 bytes/s" in shown


@pytest.mark.parametrize(
    ("name", "ours"),
    [
        ("launchrelay-party-cn", True),
        ("launchrelay-relay", True),
        ("launchrelay-tracker", True),
        ("launchrelay-operator", True),
        ("launchrelay-party-jp", True),  # a party that left: still this deployment's to revoke
        ("launchrelay-admin", False),  # a person's account that shares the prefix
        ("launchrelay-staging-party-cn", False),  # another deployment, prefix launchrelay-staging
        ("launchrelay-staging-relay", False),
        ("launchrelay-party-cnn", False),
        ("launchrelay-relay2", False),
        ("xlaunchrelay-relay", False),
        ("launchrelay-party-cn\n", False),
    ],
)
def test_prune_manages_exactly_the_names_the_plan_can_produce(name: str, ours: bool) -> None:
    assert bool(managed_user("launchrelay").fullmatch(name)) is ours
