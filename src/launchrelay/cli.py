"""The command line: parse arguments, call the library. Nothing else lives here."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from launchrelay.errors import ConfigError, LaunchRelayError
from launchrelay.runtime.logging import configure_logging
from launchrelay.settings import Settings, SettingsError

if TYPE_CHECKING:
    from launchrelay.agreements.config import Deployment

log = structlog.get_logger("launchrelay.cli")


def _cmd_broker(args: argparse.Namespace, settings: Settings) -> int:
    from launchrelay.provision.local import (
        LocalBroker,
        directory_bytes,
        ensure_class_archive,
        ensure_jars,
        ensure_tools,
        stop_by_pidfile,
    )

    data_dir = settings.data_dir / "broker"
    if args.action == "fetch":
        from launchrelay.provision.mirror import ensure_mirror_jars

        # the broker's jars, Kafka's own tools (the tests use them) and MirrorMaker 2's (two-centre mode)
        jars = (
            ensure_jars(settings.cache_dir),
            ensure_tools(settings.cache_dir),
            ensure_mirror_jars(settings.cache_dir),
        )
        for libs in jars:
            print(f"{libs} ({directory_bytes(libs) / 1e6:.1f} MB)")
        archive = ensure_class_archive(settings.cache_dir)  # every later broker starts faster from it
        print(f"{archive} ({archive.stat().st_size / 1e6:.1f} MB)")
        return 0
    if args.action == "stop":  # a single broker, or every node of a cluster
        stopped = [stop_by_pidfile(d) for d in (data_dir, *sorted(data_dir.glob("node-*")))]
        print("broker stopped" if any(stopped) else "no broker was running")
        return 0
    if args.nodes > 1:
        from launchrelay.provision.cluster import LocalCluster

        heap_mb = min(settings.broker_heap_mb, 512)  # three JVMs share the machine
        cluster = LocalCluster.on_ports(data_dir, args.nodes, settings.broker_port, settings.controller_port,
                                        heap_mb=heap_mb, cache_dir=settings.cache_dir)  # fmt: skip
        cluster.start()
        print(f"Kafka cluster of {args.nodes} nodes at {cluster.bootstrap} running (logs: {data_dir}/node-*/logs)")
        if args.action == "start":
            cluster.detach()
            return 0
        try:
            cluster.members[0].run_until_signal()
        finally:
            cluster.stop()
        return 0
    broker = LocalBroker(
        data_dir=data_dir,
        port=settings.broker_port,
        controller_port=settings.controller_port,
        heap_mb=settings.broker_heap_mb,
        cache_dir=settings.cache_dir,
    )
    broker.start()
    print(f"Kafka {broker.bootstrap} running (log: {broker.log_path})")
    if args.action == "start":
        broker.detach()  # `launchrelay broker stop` ends it through the pid file
    else:
        broker.run_until_signal()
    return 0


def _cmd_config_check(args: argparse.Namespace, settings: Settings) -> int:
    from launchrelay.agreements.config import load_config
    from launchrelay.configcheck import describe, warnings

    deployment = load_config(Path(args.path or settings.config))
    print(describe(deployment, settings))
    found = warnings(deployment)
    for line in found:
        print(f"warning: {line}")
    print(f"config OK, {len(found)} warning{'s' if len(found) != 1 else ''}" if found else "config OK")
    return 0


def _deployment(args: argparse.Namespace, settings: Settings) -> Deployment:
    """The config named by the command's --config, else the settings' (LAUNCHRELAY_CONFIG)."""
    from launchrelay.agreements.config import load_config

    return load_config(Path(getattr(args, "config", None) or settings.config))


def _cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    import json
    from datetime import UTC, datetime

    from launchrelay.relay.check import as_json, check_message, render

    def read(name: str) -> bytes:
        try:
            return Path(name).read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read {name}: {exc.strerror}") from exc

    if args.message is None:  # `check --after NOTICE MESSAGE`: --after took every file; the last is the message
        if not args.after:
            raise ConfigError("check needs the message file: launchrelay check MESSAGE [--after EARLIER ...]")
        args.message = args.after.pop()
    if (args.signature is None) != (args.key_id is None):
        raise ConfigError("give --signature and --key-id together (or neither, to skip the signature)")
    received = datetime.now(UTC)
    if args.received_at:
        try:
            received = datetime.fromisoformat(args.received_at)
        except ValueError as exc:
            raise ConfigError(f"--received-at {args.received_at!r} is not an ISO 8601 time") from exc
        if received.tzinfo is None:
            raise ConfigError("--received-at needs a UTC offset, e.g. 2026-11-28T09:01:00Z")
    checked = check_message(
        _deployment(args, settings), read(args.message), received, signature_b64=args.signature, key_id=args.key_id,
        key=args.key.encode() if args.key else None, after=[(name, read(name)) for name in args.after],
    )  # fmt: skip
    print(json.dumps(as_json(checked), indent=2) if args.json else render(checked))
    from launchrelay.contract.outcomes import Outcome

    return 0 if checked.decision.kind is Outcome.FORWARDED else 1


def _cmd_docs(args: argparse.Namespace, settings: Settings) -> int:
    from launchrelay.docsgen import write_docs

    changed = write_docs(Path(args.out))
    print("\n".join(str(p) for p in changed) or "docs are current")
    return 0


def _cmd_asyncapi(args: argparse.Namespace, settings: Settings) -> int:
    from launchrelay.docsgen import asyncapi_yaml

    print(asyncapi_yaml(_deployment(args, settings)), end="")
    return 0


def _cmd_keygen(args: argparse.Namespace, settings: Settings) -> int:
    from launchrelay.signing import Signer

    signer = Signer.generate(args.key_id)
    out = Path(args.out)
    out.write_bytes(signer.to_pem())
    out.chmod(0o600)
    print(f'{args.key_id} = "{signer.public_b64}"')
    print(f"# a party's key: under [parties.XX] keys; the relay's own: [relay] keys = {{ {args.key_id} = ... }}",
          file=sys.stderr)  # fmt: skip
    return 0


def _cmd_init(args: argparse.Namespace, settings: Settings) -> int:
    from launchrelay.ops.initialise import initialise

    parties = {}
    for item in args.party:
        code, _, name = item.partition("=")
        parties[code.strip().upper()] = name.strip() or code.strip().upper()
    done = initialise(Path(args.dir), parties, args.preset, args.relay_key_id, args.topic_prefix, args.partitions)
    for path in done.written:
        print(f"wrote {path}")
    if not done.written:
        print(f"{done.config} and its keys exist; nothing changed")
    print(f'relay public key: {args.relay_key_id} = "{done.relay_public}"')
    return 0


def _cmd_init_centres(args: argparse.Namespace, settings: Settings) -> int:
    from launchrelay.centres import write_centres

    bootstraps = {}
    for item in args.bootstrap:
        code, sep, address = item.partition("=")
        if not sep or not address.strip():
            raise ConfigError(f"{item!r} is not CODE=HOST:PORT")
        bootstraps[code.strip().upper()] = address.strip()
    try:
        written = write_centres(Path(args.dir), bootstraps, args.topic_prefix)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    for path in written:
        print(f"wrote {path}")
    if not written:
        print(f"{args.dir}: both centres' files exist; nothing changed")
    return 0


def _services(text: str | None) -> dict[str, str]:
    """``relay=http://relay:9400,tracker=http://tracker:9400`` -> {name: url}."""
    out = {}
    for item in (text or "").split(","):
        name, sep, url = item.strip().partition("=")
        if not item.strip():
            continue
        if not sep or not url.startswith(("http://", "https://")):
            raise ConfigError(f"LAUNCHRELAY_CONSOLE_SERVICES: {item.strip()!r} is not NAME=http(s)://HOST:PORT")
        out[name.strip()] = url.strip().rstrip("/")
    return out


def _cmd_console(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from launchrelay.agreements.config import load_config
    from launchrelay.console.app import ConsoleConfig, build_app

    tls = settings.console_tls_cert is not None
    if tls != (settings.console_tls_key is not None):
        raise ConfigError("LAUNCHRELAY_CONSOLE_TLS_CERT and LAUNCHRELAY_CONSOLE_TLS_KEY go together")
    deployment = load_config(settings.config) if settings.config.exists() else None
    keys = {code: dict(party.keys) for code, party in deployment.parties.items()} if deployment else {}
    config = ConsoleConfig(ledger=settings.ledger_path(), users=settings.console_users_path(),
                           secure_cookies=tls or settings.console_behind_tls, bootstrap=settings.bootstrap(),
                           topic_prefix=deployment.relay.topic_prefix if deployment else "launchrelay",
                           client_options=settings.kafka_options(),
                           services=_services(settings.console_services),
                           session_lifetime_s=settings.console_session_lifetime_s,
                           session_idle_s=settings.console_session_idle_s,
                           party_keys=keys, agreements=dict(deployment.agreements) if deployment else {},
                           relay_keys=dict(deployment.relay.keys)
                           if deployment and deployment.relay.decision_log else {})  # fmt: skip
    if settings.operator_key is not None and deployment is not None:
        from launchrelay.runtime.process import operator_signer

        config.operator_key = operator_signer(deployment, settings)
    if settings.console_session_key is not None:
        config.session_key = settings.console_session_key.get_secret_value()
    scheme = "https" if tls else "http"
    log.info("console.listening", url=f"{scheme}://{settings.console_host}:{settings.console_port}/",
             ledger=str(config.ledger), users=str(config.users))  # fmt: skip
    uvicorn.run(build_app(config), host=settings.console_host, port=settings.console_port, log_config=None,
                access_log=False, ssl_certfile=settings.console_tls_cert, ssl_keyfile=settings.console_tls_key,
                proxy_headers=True, forwarded_allow_ips=settings.console_trusted_proxies)  # fmt: skip
    return 0


def _cmd_console_user(args: argparse.Namespace, settings: Settings) -> int:
    import getpass

    from launchrelay.console.accounts import Role, set_user

    password = (
        sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass(f"password for {args.name}: ")
    )
    set_user(settings.console_users_path(), args.name, Role(args.role), password)
    print(f"{args.name} ({args.role}) saved in {settings.console_users_path()}")
    return 0


def _cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from launchrelay.demo import run_demo

    if "log_level" not in settings.model_fields_set:
        # the demo narrates; the services' own event logs are in files it names at the end
        configure_logging("WARNING", settings.log_format)
    if args.two_centres:
        from launchrelay.centres import run_two_centres_demo

        return asyncio.run(run_two_centres_demo(settings.data_dir.resolve(), settings.cache_dir))
    return asyncio.run(run_demo(settings, console=args.console))


def _cmd_relay(args: argparse.Namespace, settings: Settings) -> int:
    from launchrelay.relay.run import run_relay

    return asyncio.run(run_relay(settings))


def _cmd_tracker(args: argparse.Namespace, settings: Settings) -> int:
    from launchrelay.tracker.run import run_tracker

    return asyncio.run(run_tracker(settings))


def _cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    import json
    from datetime import UTC, datetime

    from launchrelay.tracker import status
    from launchrelay.tracker.ledger import SqliteLedger

    path = settings.ledger_path()
    ledger = SqliteLedger.open_existing(path)
    if ledger is None:
        print(f"launchrelay: no ledger at {path}: start the tracker (launchrelay tracker) or set LAUNCHRELAY_LEDGER",
              file=sys.stderr)  # fmt: skip
        return 1
    now = datetime.now(UTC)
    try:
        if args.id:
            view = status.timeline(ledger, args.id, now)
            if view is None:
                print(f"launchrelay: no notification {args.id!r} in {path}", file=sys.stderr)
                return 1
            print(json.dumps(view, indent=2) if args.json else status.render_timeline(view))
            return 0
        filters = status.Filters(args.pending, args.overdue, args.party, args.agreement)
        page = status.recent(ledger, filters, now, limit=args.limit or None)
        table = list(reversed(page.rows))  # the latest change last, where the eye lands
        if args.json:
            print(json.dumps(table, indent=2))
        elif not ledger.has_notifications():
            print(f"the ledger at {path} is empty: no notifications yet")
        elif not table:
            print("no notifications match")
        else:
            print(status.render_table(table))
        if page.more and not args.json:
            print(f"(the {args.limit} latest changed shown; more match: --limit 0 shows all, or narrow with a filter)",
                  file=sys.stderr)  # fmt: skip
    finally:
        ledger.close()
    return 0


def _cmd_health(args: argparse.Namespace, settings: Settings) -> int:
    import urllib.error
    import urllib.request

    if settings.metrics_port is None:
        print("launchrelay: health needs LAUNCHRELAY_METRICS_PORT", file=sys.stderr)
        return 2
    host = "127.0.0.1" if settings.metrics_host in ("0.0.0.0", "") else settings.metrics_host  # noqa: S104
    url = f"http://{host}:{settings.metrics_port}/{'readyz' if args.ready else 'healthz'}"
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            print(resp.read().decode().strip())
            return 0
    except (urllib.error.URLError, OSError) as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1


def _cmd_link(args: argparse.Namespace, settings: Settings) -> int:
    """Two-centre mode: the MirrorMaker 2 that brings what a linked centre sends into this centre's cluster."""
    from launchrelay.kafka.admin import ensure_topics, topic_specs
    from launchrelay.provision.mirror import ensure_mirror_jars, mirror_for, stop_mirror_by_pidfile

    if args.action == "fetch":
        print(ensure_mirror_jars(settings.cache_dir))
        return 0
    data_dir = settings.data_dir / f"mirror-{args.counterpart}"
    if args.action == "stop":
        print("mirror stopped" if stop_mirror_by_pidfile(data_dir) else "no mirror was running")
        return 0
    d = _deployment(args, settings)
    mirror = mirror_for(d, args.counterpart, settings, data_dir)
    r = d.relay
    wanted = d.topics.link_in(args.counterpart)  # made here first: stamped with this broker's time of arrival
    specs = [s for s in topic_specs(d.topics, list(d.parties), r.partitions, r.replication_factor,
                                    r.max_message_bytes) if s.name == wanted]  # fmt: skip
    asyncio.run(ensure_topics(settings.bootstrap(), specs, client_options=settings.kafka_options()))
    mirror.start()
    print(f"mirror {args.counterpart} -> {mirror.target.alias} running: {mirror.topic} into {wanted} "
          f"(log: {mirror.log_path})")  # fmt: skip
    if args.action == "start":
        mirror.detach()  # `launchrelay link stop XX` ends it through the pid file
        return 0
    mirror.run_until_signal()
    return 0


def _cmd_topics(args: argparse.Namespace, settings: Settings) -> int:
    from launchrelay.kafka.admin import ensure_topics, topic_specs

    d = _deployment(args, settings)
    r = d.relay
    specs = topic_specs(d.topics, list(d.parties), r.partitions, r.replication_factor, r.max_message_bytes)
    created = asyncio.run(ensure_topics(settings.bootstrap(), specs, client_options=settings.kafka_options()))
    print(f"{len(created)} created, {len(specs) - len(created)} already there")
    return 0


def _cmd_deploy(args: argparse.Namespace, settings: Settings) -> int:
    import yaml

    from launchrelay.deploy import strimzi_resources

    resources = strimzi_resources(_deployment(args, settings), cluster=args.cluster)
    print("# Generated by `launchrelay deploy strimzi`; regenerate after changing the config.")
    print(yaml.safe_dump_all(resources, sort_keys=False), end="")
    return 0


def _cmd_access(args: argparse.Namespace, settings: Settings) -> int:
    from launchrelay.access import access_plan, managed_user, render_plan
    from launchrelay.kafka.access import apply_access, read_passwords

    deployment = _deployment(args, settings)
    plan = access_plan(deployment)
    if args.action == "show":
        print(render_plan(plan))
        return 0
    passwords = read_passwords(Path(args.passwords)) if args.passwords else {}
    prune = managed_user(deployment.relay.topic_prefix) if args.prune else None
    report = apply_access(settings.bootstrap(), plan, passwords, settings.kafka_options(), prune=prune,
                          ca_file=settings.kafka_ssl_cafile, dry_run=args.dry_run)  # fmt: skip
    if args.dry_run:
        print("\n".join(report.lines()) or "nothing would change")
        return 0
    print(f"{len(report.users)} users set, {report.acls} ACLs in place for {len(plan)} principals"
          f" ({len(report.added_acls)} added), quotas changed for {len(report.quota_changes)} users")  # fmt: skip
    if args.prune:
        print(f"pruned: {len(report.removed_acls)} ACLs, users {', '.join(report.removed_users) or 'none'}")
    return 0


def _cmd_deadletters(args: argparse.Namespace, settings: Settings) -> int:
    import json

    from launchrelay.ops.deadletters import read_dead_letters, render_table, select
    from launchrelay.topics import Topics

    topics = Topics(_deployment(args, settings).relay.topic_prefix)
    letters = asyncio.run(read_dead_letters(settings.bootstrap(), topics, settings.kafka_options()))
    rows = [d.as_dict() for d in select(letters, reason=args.reason, sender=args.sender)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(render_table(rows, topics))
    return 0


def _audit_publish(args: argparse.Namespace, settings: Settings) -> int:
    from launchrelay.relay.proofs import run_publisher

    return asyncio.run(run_publisher(_deployment(args, settings), settings))


def _cmd_audit(args: argparse.Namespace, settings: Settings) -> int:
    """Exit 0 when every check of docs/audit-log.md passes, 1 when a problem is found (each printed), 2 when the
    input cannot be read."""
    import json

    from launchrelay.audit.verify import read_statements, verify_statements
    from launchrelay.signing import public_key_from_b64

    if args.action == "publish":
        return _audit_publish(args, settings)
    if args.action in ("export", "fetch"):
        from launchrelay.ops.auditlog import read_log, read_party

        deployment = _deployment(args, settings)
        bootstrap, options = settings.bootstrap(), settings.kafka_options()
        held = (read_log(bootstrap, deployment.topics, options) if args.action == "export"
                else read_party(bootstrap, deployment.topics, args.party, options))  # fmt: skip
        for statement in asyncio.run(held):
            print(json.dumps(statement, separators=(",", ":")))
        return 0
    given = dict(item.partition("=")[::2] for item in args.key)
    if not given:  # the relay's keys, and in two-centre mode each linked centre's relay's
        deployment = _deployment(args, settings)
        given = dict(deployment.relay.keys)
        for link in deployment.links.values():
            given.update(link.relay_keys)
    try:
        keys = {k: public_key_from_b64(v) for k, v in given.items()}
    except (ValueError, LaunchRelayError) as exc:
        raise ConfigError(f"--key: {exc}") from exc
    statements = []
    for name in args.files:
        try:
            statements += read_statements(Path(name).read_text().splitlines())
        except (OSError, ValueError) as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            return 2
    report = verify_statements(statements, keys).as_dict()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        counts = ", ".join(f"{n} {what.replace('_', ' ')}" for what, n in report["checked"].items())
        print(f"{'ok' if report['ok'] else 'PROBLEMS'}: checked {counts or 'nothing'}")
        for p in report["problems"]:
            print(f"  {p['kind']}{' (' + p['log'] + ')' if p['log'] else ''}: {p['detail']}")
    return 0 if report["ok"] else 1


def _cmd_redrive(args: argparse.Namespace, settings: Settings) -> int:
    from launchrelay.ops.deadletters import redrive
    from launchrelay.runtime.process import operator_signer
    from launchrelay.topics import Topics

    deployment = _deployment(args, settings)
    topics = Topics(deployment.relay.topic_prefix)
    signer = operator_signer(deployment, settings)
    marks = (signer, args.by or settings.operator_name)
    for r in asyncio.run(redrive(settings.bootstrap(), topics, args.refs, settings.kafka_options(), marks)):
        print(f"{topics.deadletter}:{r.dead_letter} -> {r.to}")
    return 0


_LOGGING = ("log_level", "log_format")
_KAFKA = ("config", "bootstrap_servers", "broker_port", "kafka_security_protocol", "kafka_ssl_cafile",
          "kafka_sasl_mechanism", "kafka_sasl_username", "kafka_sasl_password")  # fmt: skip
_BROKER = ("data_dir", "broker_port", "controller_port", "broker_heap_mb", "cache_dir")
_SERVICE = (*_KAFKA, "relay_key", "relay_key_id", "metrics_port", "metrics_host", "record_attempts", "stall_after_s")
#: the settings each command reads, listed in its --help
READS: dict[str, tuple[str, ...]] = {
    "broker": _BROKER,
    "link": (*_KAFKA, "data_dir", "cache_dir"),
    "config": tuple(Settings.model_fields),  # prints them all
    "check": ("config",),
    "docs": (),
    "asyncapi": ("config",),
    "keygen": (),
    "init": (),
    "init-centres": (),
    "console": (
        *_KAFKA,
        "data_dir",
        "ledger",
        "operator_key",
        "operator_key_id",
        "console_host",
        "console_port",
        "console_users",
        "console_tls_cert",
        "console_tls_key",
        "console_behind_tls",
        "console_session_key",
        "console_services",
    ),
    "console-user": ("data_dir", "console_users"),
    "relay": (*_SERVICE, "relay_id", "relay_batch", "relay_fetch_wait_ms"),
    "tracker": (*_SERVICE, "data_dir", "ledger", "tracker_id", "tracker_tick_s"),
    "status": ("data_dir", "ledger"),
    "health": ("metrics_port", "metrics_host"),
    "deadletters": _KAFKA,
    "audit": ("config", *_KAFKA),
    "redrive": (*_KAFKA, "operator_key", "operator_key_id", "operator_name"),
    "topics": _KAFKA,
    "deploy": ("config",),
    "access": _KAFKA,
    "demo": (*_BROKER, "bootstrap_servers", "use_docker", "console_host", "console_port"),
}


def _environment(command: str) -> str:
    """The --help epilog: each setting ``command`` reads, as its environment variable, with what it means."""
    fields = Settings.model_fields
    lines = ["environment (or the same name in lower case in the config file's [settings] table):"]
    for name in dict.fromkeys((*READS[command], *_LOGGING)):
        info = fields[name]
        default = "" if info.default_factory is not None or info.default is None else f" (default {info.default})"
        lines.append(f"  LAUNCHRELAY_{name.upper():<26} {info.description or ''}{default}".rstrip())
    return "\n".join(lines)


def _version() -> str:
    from launchrelay import __version__
    from launchrelay.provision.local import KAFKA_VERSION

    return f"launchrelay {__version__} (local broker: Apache Kafka {KAFKA_VERSION})"


def _count(text: str) -> int:
    """A whole number of rows, 0 or more (argparse turns the error into one line naming the option)."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"{n} is below 0 (0 shows every row)")
    return n


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="launchrelay", description=__doc__)
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser = sub.add_parser

    def command(name: str, **kw: Any) -> argparse.ArgumentParser:
        return add_parser(name, epilog=_environment(name), formatter_class=argparse.RawDescriptionHelpFormatter,
                          description=kw.get("help"), **kw)  # fmt: skip

    sub.add_parser = command  # type: ignore[method-assign]

    broker = sub.add_parser("broker", help="a local Kafka (KRaft) built from Maven Central jars")
    broker.add_argument("action", choices=["run", "start", "stop", "fetch"],
                        help="run in the foreground, start in the background, stop, or fetch the jars")  # fmt: skip
    broker.add_argument("--nodes", type=int, default=1, choices=range(1, 6), metavar="N",
                        help="a cluster of N nodes (ports BROKER_PORT+2i, CONTROLLER_PORT+2i; topics get "
                        "min(3, N) copies, min.insync.replicas 2 from 3)")  # fmt: skip
    broker.set_defaults(func=_cmd_broker)

    link = sub.add_parser("link", help="two-centre mode: MirrorMaker 2 bringing a linked centre's records here")
    link.add_argument(
        "action",
        choices=["run", "start", "stop", "fetch"],
        help="run in the foreground, start in the background, stop, or fetch MirrorMaker 2's jars",
    )
    link.add_argument("counterpart", nargs="?", default="", help="the party whose centre sends (its [links.XX])")
    link.add_argument("--config", help="config file (default: LAUNCHRELAY_CONFIG)")
    link.set_defaults(func=_cmd_link)

    config = sub.add_parser("config", help="configuration")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    check = config_sub.add_parser("check", help="validate a config file and print what it resolved")
    check.add_argument("path", nargs="?")
    check.set_defaults(func=_cmd_config_check)

    chk = sub.add_parser("check", help="the relay's decision for one message, offline: forward (exit 0) or not (1)")
    chk.add_argument("message", nargs="?", help="the message, a JSON file as it would be published (before or "
                     "after --after: the last file named is the message)")  # fmt: skip
    chk.add_argument("--config", help="config file (default: LAUNCHRELAY_CONFIG)")
    chk.add_argument("--received-at", help="judge as received at this UTC time (ISO 8601; default: now)")
    chk.add_argument("--signature", help="base64 Ed25519 signature of the file's bytes (checked with --key-id)")
    chk.add_argument("--key-id", help="the key id the signature is registered under for the sender")
    chk.add_argument("--key", help="the Kafka record key it would be published with (default: its launch_key)")
    chk.add_argument("--after", nargs="*", default=[], metavar="FILE",
                     help="earlier messages it refers to, in order (each judged at its own created_at)")  # fmt: skip
    chk.add_argument("--json", action="store_true", help="machine-readable output")
    chk.set_defaults(func=_cmd_check)

    docs = sub.add_parser("docs", help="regenerate docs/ (JSON Schema, reason codes, the sample AsyncAPI)")
    docs.add_argument("--out", default="docs")
    docs.set_defaults(func=_cmd_docs)

    asyncapi = sub.add_parser("asyncapi", help="print the AsyncAPI 3.0 document of a deployment's channels")
    asyncapi.add_argument("--config", help="config file (default: LAUNCHRELAY_CONFIG)")
    asyncapi.set_defaults(func=_cmd_asyncapi)

    keygen = sub.add_parser("keygen", help="make an Ed25519 signing key (PEM) and print its public half")
    keygen.add_argument("key_id")
    keygen.add_argument("out")
    keygen.set_defaults(func=_cmd_keygen)

    init = sub.add_parser("init", help="make a first deployment's config and keys in DIR (existing files kept)")
    init.add_argument("dir", help="where launchrelay.toml and keys/ go (e.g. /etc/launchrelay)")
    init.add_argument("--party", action="append", default=[], metavar="CODE=NAME", required=True,
                      help="a party, e.g. CN=\"People's Republic of China\" (repeat for each)")  # fmt: skip
    init.add_argument("--preset", action="append", default=[], required=True, help="an agreement preset id")
    init.add_argument("--relay-key-id", default="relay", help="the relay key's id (as LAUNCHRELAY_RELAY_KEY_ID)")
    init.add_argument("--topic-prefix", default="launchrelay")
    init.add_argument("--partitions", type=int, default=3)
    init.set_defaults(func=_cmd_init)

    centres = sub.add_parser("init-centres", help="two-centre mode on one host (compose's two-centres profile): "
                             "both centres' configs, keys and MirrorMaker 2 properties in DIR")  # fmt: skip
    centres.add_argument("dir", help="CN/ and RU/ (launchrelay.toml, relay.pem, mm2.properties) and keys/ go here")
    centres.add_argument(
        "--bootstrap", action="append", default=[], metavar="CODE=HOST:PORT", required=True,
        help="each centre's cluster as the other's mirror reaches it, e.g. CN=kafka-cn:9092",
    )  # fmt: skip
    centres.add_argument("--topic-prefix", default="lr")
    centres.set_defaults(func=_cmd_init_centres)

    console = sub.add_parser("console", help="the operators' web console: the live board, each notification's story")
    console.set_defaults(func=_cmd_console)

    cuser = sub.add_parser("console-user", help="add a console account or change its role and password")
    cuser.add_argument("name")
    cuser.add_argument("--role", choices=["viewer", "operator"], required=True,
                       help="viewer: sees everything; operator: may also redrive dead letters")  # fmt: skip
    cuser.add_argument("--password-stdin", action="store_true", help="read the password from stdin, not a prompt")
    cuser.set_defaults(func=_cmd_console_user)

    relay = sub.add_parser("relay", help="run the relay: validate and forward every party's messages")
    relay.set_defaults(func=_cmd_relay)

    tracker = sub.add_parser("tracker", help="run the tracker: acknowledgements, deadlines, the ledger")
    tracker.set_defaults(func=_cmd_tracker)

    st = sub.add_parser("status", help="notifications and their state, from the tracker's ledger")
    st.add_argument("id", nargs="?", help="a message id: show its full timeline")
    st.add_argument("--pending", action="store_true", help="only those awaiting acknowledgement")
    st.add_argument("--overdue", action="store_true", help="only those with an acknowledgement overdue")
    st.add_argument("--party", help="sent by or to this party")
    st.add_argument("--agreement", help="under this agreement")
    st.add_argument("--json", action="store_true", help="machine-readable output")
    st.add_argument("--limit", type=_count, default=100, metavar="N",
                    help="at most N rows, the latest changed (default 100; 0: all)")  # fmt: skip
    st.set_defaults(func=_cmd_status)

    health = sub.add_parser("health", help="probe this machine's relay or tracker endpoint; exit 0 when healthy")
    health.add_argument("--ready", action="store_true", help="check /readyz instead of /healthz")
    health.set_defaults(func=_cmd_health)

    dl = sub.add_parser("deadletters", help="list dead letters: where each came from and why it was refused")
    dl.add_argument("--reason", help="only those with this reason code")
    dl.add_argument("--sender", help="only those whose message names this sender")
    dl.add_argument("--json", action="store_true", help="machine-readable output")
    dl.set_defaults(func=_cmd_deadletters)

    rd = sub.add_parser("redrive", help="send dead letters back to the relay after fixing what refused them")
    rd.add_argument("refs", nargs="+", metavar="PARTITION:OFFSET", help="dead letters as `deadletters` lists them")
    rd.add_argument("--by", help="the operator's name in the signed mark (default: LAUNCHRELAY_OPERATOR_NAME)")
    rd.set_defaults(func=_cmd_redrive)

    audit = sub.add_parser("audit", help="the decision log: check the heads, proofs and receipts a party received")
    audit_sub = audit.add_subparsers(dest="action", required=True)
    verify = audit_sub.add_parser("verify", help="check a party's statements (exit 1 when a problem is found)")
    verify.add_argument("files", nargs="+", metavar="FILE",
                        help="statements, one JSON object per line (docs/audit-log.md)")  # fmt: skip
    verify.add_argument("--key", action="append", default=[], metavar="KEY_ID=BASE64",
                        help="a relay public key (repeatable; default: [relay] keys of the config)")  # fmt: skip
    verify.add_argument("--config", help="config file (default: LAUNCHRELAY_CONFIG)")
    verify.add_argument("--json", action="store_true", help="the whole report as JSON")
    export = audit_sub.add_parser("export", help="print the log topic's leaves and heads as statements")
    export.add_argument("--config", help="config file (default: LAUNCHRELAY_CONFIG)")
    fetch = audit_sub.add_parser("fetch", help="print what a party holds as statements: its proofs and what its "
                                 "in topic told it (run with the party's credentials)")  # fmt: skip
    fetch.add_argument("--party", required=True, help="the party's code, e.g. CN")
    fetch.add_argument("--config", help="config file (default: LAUNCHRELAY_CONFIG)")
    publish = audit_sub.add_parser("publish", help="send each party its view of the decision log (heads, proofs); "
                                   "one per deployment, as the relay's user")  # fmt: skip
    publish.add_argument("--config", help="config file (default: LAUNCHRELAY_CONFIG)")
    audit.set_defaults(func=_cmd_audit)

    topics = sub.add_parser("topics", help="create the convention's topics for the configured parties")
    topics.add_argument("action", choices=["create"])
    topics.set_defaults(func=_cmd_topics)

    deploy = sub.add_parser("deploy", help="generate deployment resources from a config")
    deploy.add_argument("what", choices=["strimzi"])
    deploy.add_argument("--config", help="config file (default: LAUNCHRELAY_CONFIG)")
    deploy.add_argument("--cluster", default="launchrelay", help="the Strimzi Kafka cluster name")
    deploy.set_defaults(func=_cmd_deploy)

    access = sub.add_parser("access", help="users and ACLs: a party writes only its out topic, reads only its in")
    access.add_argument("action", choices=["show", "apply"])
    access.add_argument("--config", help="config file (default: LAUNCHRELAY_CONFIG)")
    access.add_argument(
        "--passwords", help='TOML file of user = "password": create or update those SCRAM-SHA-512 users'
    )
    access.add_argument(
        "--prune",
        action="store_true",
        help="also revoke: this deployment's users (exactly the names the plan can produce) lose ACLs and quotas "
        "not in the plan; those no longer in it are deleted",
    )
    access.add_argument("--dry-run", action="store_true", help="print what would change, change nothing")
    access.set_defaults(func=_cmd_access)

    demo = sub.add_parser("demo", help="the main job: broker, topics and an exchange between two parties")
    demo.add_argument("--console", action="store_true",
                      help="then serve the operators' console over it until Ctrl-C (an account is made)")  # fmt: skip
    demo.add_argument(
        "--two-centres",
        action="store_true",
        help="two centres instead: two clusters, MirrorMaker 2 both ways, a relay and tracker each",
    )
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.load()
    except SettingsError as exc:
        print(f"launchrelay: error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    try:
        code: int = args.func(args, settings)
    except LaunchRelayError as exc:
        print(f"launchrelay: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
