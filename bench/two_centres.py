"""Two centres: `python -m bench.two_centres [--seconds 20] [--cut 60]`.

Two single-node clusters on this machine, joined by MirrorMaker 2 both ways, a relay and a tracker each
(launchrelay.centres). Measured in the same run, alternating:

- **relay path**: CN publishes a signed notice to CN's out topic; the time until RU's read_committed reader sees it
  on RU's in topic (CN's relay, the mirror, RU's relay);
- **floor path**: the same bytes through the least any exactly-once relay at each centre must do: a transactional
  consume -> produce pipe in CN's cluster (``bench.bare_pipe --transactions --tuned``: no signature, no rules, no
  receipts, one record out per record in), the mirror, and the same pipe in RU's cluster;
- **bare hop**: the same bytes published to a plain topic of CN's cluster, copied by a MirrorMaker 2 of the same
  settings into RU's cluster; the time until a read_committed reader there sees it (no relays at all);

each at 10 and 100 notices a second; p50 and p99. The floor path tells what the target (relay path p99 at most 1.5 x
the bare hop's) asks of any design with a transactional hop at each centre, apart from this relay's own work. Before
the rounds every path carries ``--warm`` seconds of traffic at 50 a second, in turn: the brokers and mirrors are
JVMs, and a JVM's first minutes go to compiling its hot paths (in a 20 s round of a cold run the two brokers' JIT
compilers took 25 s of CPU between them, on two cores). A watch centre runs for months; the rounds measure it
running, and each round records the JIT compile seconds of every JVM (``jstat -compiler``) so a round still warming
shows as one. Then the link is cut for ``--cut`` seconds (RU's mirror frozen with SIGSTOP, so its start-up is not
counted) while CN publishes at 10 a second; the figure is the time from the end of the cut to the last backlogged
notice delivered. Writes bench/results/two_centres.{json,md} with the load.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.measure import CpuWaited, Measured, notice, percentiles, python, write_results
from launchrelay.centres import TwoCentres, centre_keys
from launchrelay.kafka.consume import partitions_of
from launchrelay.provision.mirror import ClusterAccess, LocalMirror

ROOT = Path(__file__).resolve().parent.parent
BARE = "bare.hop"
#: the floor path's topics: published to in CN, the CN pipe's output (mirrored), the RU pipe's output
FLOOR_OUT, FLOOR_LINK, FLOOR_IN = "floor.out", "floor.link", "floor.in"
VARIANTS = ("relay path", "floor path", "bare hop")
#: The bare mirror (the same flow settings, the floor path's link topic too) runs between the same two clusters as
#: the centres' mirrors, under aliases of its own (CNB -> RUB: a mirror's Connect group and internal topics are
#: named after its aliases, and the centres' own hold CN and RU). MirrorMaker 2 copies every heartbeats topic
#: whatever its topic filter, and tells a cycle only by its own target alias in a topic's name, so with ``.`` as
#: its separator it took RU's heartbeats, mirrored into CN as ``RU.heartbeats``, back to RU as
#: ``CNB.RU.heartbeats``, which RU's mirror to CN took on as ``RU.CNB.RU.heartbeats``, and so on, a topic more
#: each way every refresh, until after about six minutes a name passed Kafka's 249 characters and both mirrors'
#: tasks died (runs before 2026-12-03 17:00 carried that load). With ``_`` it reads no name of the centres' as a
#: heartbeats topic (nor do they read its copies as one): its copies are ``CNB_bare.hop`` and ``CNB_floor.link``.
BARE_MIRROR = {"replication.policy.separator": "_"}


class Arrivals:
    """A read_committed reader of one topic from its end: when each id arrived (time.time())."""

    def __init__(self, bootstrap: str, topic: str, id_of: Any) -> None:
        self.bootstrap, self.topic, self.id_of = bootstrap, topic, id_of
        self.seen: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, isolation_level="read_committed",
                                    enable_auto_commit=False, fetch_max_wait_ms=10)  # fmt: skip
        await consumer.start()
        tps = await partitions_of(consumer, self.topic)
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        for tp in tps:
            await consumer.position(tp)

        async def read() -> None:
            try:
                while True:
                    batch = await consumer.getmany(timeout_ms=200)
                    now = time.time()
                    for rs in batch.values():
                        for r in rs:
                            key = self.id_of(r)
                            if key is not None:
                                self.seen.setdefault(key, now)
            finally:
                await consumer.stop()

        self._task = asyncio.create_task(read())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_pipe(logs: Path, bootstrap: str, source: str, sink: str, group: str) -> Measured:
    """A tuned transactional consume -> produce pipe (``bench.bare_pipe``), once it says it is ready."""
    pipe = Measured(group, python("-m", "bench.bare_pipe", "--bootstrap", bootstrap, "--source", source,
                                  "--sink", sink, "--group", group, "--transactions", "--tuned"),
                    dict(os.environ), logs).start()  # fmt: skip
    pipe.wait_log("ready", timeout_s=60)
    return pipe


def processes(tc: TwoCentres, bare: LocalMirror, pipes: dict[str, Measured]) -> dict[str, int]:
    """Every process of the two centres by name (brokers, mirrors, relays, trackers, pipes), for their CPU."""
    pids: dict[str, int] = {"bare mirror": bare.pid} if bare.pid is not None else {}
    pids.update({name: pipe.proc.pid for name, pipe in pipes.items() if pipe.proc is not None})
    for party in ("CN", "RU"):
        c = tc[party]
        if c.broker.pid is not None:
            pids[f"{party} broker"] = c.broker.pid
        if c.mirror is not None and c.mirror.pid is not None:
            pids[f"{party} mirror"] = c.mirror.pid
        for name, proc in c.procs.items():
            pids[f"{party} {name}"] = proc.pid
    return pids


def jit_seconds(pids: dict[str, int]) -> dict[str, float]:
    """Each JVM's JIT compile time so far, in seconds (``jstat -compiler``; empty where jstat is missing)."""
    jstat = shutil.which("jstat")
    out: dict[str, float] = {}
    for name, pid in pids.items():
        if jstat is None or not ("broker" in name or "mirror" in name):
            continue
        done = subprocess.run([jstat, "-compiler", str(pid)], capture_output=True, text=True, check=False)
        header, _, values = done.stdout.partition("\n")
        fields = dict(zip(header.split(), values.split(), strict=False))
        with contextlib.suppress(KeyError, ValueError):
            out[name] = float(fields["Time"])
    return out


def _message_id(r: Any) -> str | None:
    try:
        body = json.loads(r.value)
    except ValueError:
        return None
    return body.get("message_id") if body.get("message_type") == "planned_launch" else None


async def paced(producer: AIOKafkaProducer, topic: str, rate: int, seconds: float, signer: Any,
                sent: dict[str, float]) -> None:  # fmt: skip
    """Publish CN's notices to ``topic`` at ``rate`` a second for ``seconds``; their send times into ``sent``."""
    began, n = time.monotonic(), 0
    while (elapsed := time.monotonic() - began) < seconds:
        for _ in range(int(elapsed * rate) + 1 - n):
            key, value, headers = notice(signer, n)
            mid = json.loads(value)["message_id"]
            sent[mid] = time.time()
            await producer.send(topic, value, key=key, headers=headers)
            n += 1
        await asyncio.sleep(0.005)
    await producer.flush()


async def latencies(sent: dict[str, float], arrivals: Arrivals, timeout_s: float = 120) -> list[float]:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end and not set(sent) <= set(arrivals.seen):
        await asyncio.sleep(0.2)
    return [(arrivals.seen[m] - t) * 1000 for m, t in sent.items() if m in arrivals.seen]


async def run(seconds: float, cut_s: float, warm_s: float) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="lr-two-centres-"))
    tc = TwoCentres(work, centre_keys(work / "keys"))
    bare: LocalMirror | None = None
    pipes: dict[str, Measured] = {}
    results: dict[str, Any] = {"rounds": []}
    try:
        tc.start_brokers()
        await tc.make_topics()
        cn, ru = tc["CN"], tc["RU"]
        for bootstrap, names in ((cn.bootstrap, (BARE, FLOOR_OUT, FLOOR_LINK)),
                                 (ru.bootstrap, (f"CNB_{BARE}", f"CNB_{FLOOR_LINK}", FLOOR_IN))):  # fmt: skip
            admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
            await admin.start()
            await admin.create_topics([NewTopic(n, 3, 1, topic_configs={"message.timestamp.type": "LogAppendTime"})
                                       for n in names])  # fmt: skip
            await admin.close()
        tc.start_mirrors()
        bare = LocalMirror(work / "bare-mirror", ClusterAccess("CNB", cn.bootstrap), ClusterAccess("RUB", ru.bootstrap),
                           BARE, also=(FLOOR_LINK,), extra=BARE_MIRROR)  # fmt: skip
        bare.start()
        tc.start_services()
        pipes["CN pipe"] = start_pipe(work, cn.bootstrap, FLOOR_OUT, FLOOR_LINK, "floor-cn")
        pipes["RU pipe"] = start_pipe(work, ru.bootstrap, f"CNB_{FLOOR_LINK}", FLOOR_IN, "floor-ru")
        relay_in = Arrivals(ru.bootstrap, f"{tc.prefix}.RU.in", _message_id)
        floor_in = Arrivals(ru.bootstrap, FLOOR_IN, _message_id)
        bare_in = Arrivals(ru.bootstrap, f"CNB_{BARE}", _message_id)
        # where each path's time goes: CN's link topic (CN's relay or pipe committed), its copy in RU's cluster
        # (the mirror wrote it), then RU's in topic (RU's relay or pipe committed: the path's own arrivals)
        stages = {
            "relay path": {"CN relay": Arrivals(cn.bootstrap, f"{tc.prefix}.link.RU", _message_id),
                           "mirror": Arrivals(ru.bootstrap, f"CN.{tc.prefix}.link.RU", _message_id),
                           "RU relay": relay_in},
            "floor path": {"CN pipe": Arrivals(cn.bootstrap, FLOOR_LINK, _message_id),
                           "mirror": Arrivals(ru.bootstrap, f"CNB_{FLOOR_LINK}", _message_id),
                           "RU pipe": floor_in},
        }  # fmt: skip
        readers = {relay_in, floor_in, bare_in, *(a for s in stages.values() for a in s.values())}
        for arrivals in readers:
            await arrivals.start()
        pids = processes(tc, bare, pipes)
        producer = AIOKafkaProducer(bootstrap_servers=cn.bootstrap, acks="all", enable_idempotence=True, linger_ms=0)
        await producer.start()
        signer = tc.keys["CN"]
        # warm-up: every path carries traffic first, in turn (the JVMs' JIT, connections, metadata)
        warmed = 0.0
        while warm_s - warmed > 0.5:
            step = min(10.0, (warm_s - warmed) / 3)  # each path in turn, ``warm_s`` in all
            for topic in (f"{tc.prefix}.CN.out", FLOOR_OUT, BARE):
                await paced(producer, topic, 50, step, signer, {})
            warmed += 3 * step
        await asyncio.sleep(5)
        results["warm_s"] = warm_s
        results["jvm_options"] = os.environ.get("LAUNCHRELAY_JVM_OPTIONS", "")
        for rate in (10, 100):
            paths = [("relay path", f"{tc.prefix}.CN.out", relay_in), ("floor path", FLOOR_OUT, floor_in),
                     ("bare hop", BARE, bare_in)]  # fmt: skip
            for i, (name, topic, arrivals) in enumerate(paths * 2):
                sent: dict[str, float] = {}
                load = round(os.getloadavg()[0], 2)
                cpu0 = {n: cpu_seconds(pid) for n, pid in pids.items()}
                jit0 = jit_seconds(pids)
                waited = CpuWaited()
                await paced(producer, topic, rate, seconds, signer, sent)
                lat = await latencies(sent, arrivals)
                cpu_waited = waited.share()
                cpu = {n: round((cpu_seconds(pid) - cpu0[n]) / seconds, 3) for n, pid in pids.items()}
                jit = {n: round(t - jit0[n], 2) for n, t in jit_seconds(pids).items() if n in jit0}
                row: dict[str, Any] = {"variant": name, "rate": rate, "round": i // len(paths) + 1, "load_1m": load, "sent": len(sent),
                       "arrived": len(lat), **percentiles(lat), "cpu_cores": cpu,
                       "jit_s": jit, "cpu_waited": cpu_waited}  # fmt: skip
                if name in stages:  # each stage's arrival after the one before (the publish, for the first)
                    before, row["stages"] = sent, {}
                    for stage, seen in ((n, a.seen) for n, a in stages[name].items()):
                        row["stages"][stage] = {
                            k: round(v, 1)
                            for k, v in percentiles(
                                [(seen[m] - before[m]) * 1000 for m in sent if m in seen and m in before]
                            ).items()
                        }
                        before = seen
                results["rounds"].append(row)
                print(f"  {name} at {rate}/s: {results['rounds'][-1]}", flush=True)
        # the link is cut: RU's mirror frozen while CN goes on publishing
        mirror = ru.mirror
        assert mirror is not None and mirror.pid is not None
        backlog: dict[str, float] = {}
        os.kill(mirror.pid, signal.SIGSTOP)
        try:
            await paced(producer, f"{tc.prefix}.CN.out", 10, cut_s, signer, backlog)
        finally:
            os.kill(mirror.pid, signal.SIGCONT)
        cut_ended = time.time()
        await latencies(backlog, relay_in, timeout_s=300)
        last = max(relay_in.seen[m] for m in backlog if m in relay_in.seen)
        results["backlog"] = {"cut_s": cut_s, "notices": len(backlog),
                              "delivered": sum(1 for m in backlog if m in relay_in.seen),
                              "drained_s": round(last - cut_ended, 2), "load_1m": round(os.getloadavg()[0], 2)}  # fmt: skip
        print(f"  backlog: {results['backlog']}", flush=True)
        await producer.stop()
        for arrivals in readers:
            await arrivals.stop()
    finally:
        for pipe in pipes.values():
            pipe.stop()
        if bare is not None:
            bare.stop()
        tc.stop()
        shutil.rmtree(work, ignore_errors=True)
    results["date"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    results["summary"] = summarise(results["rounds"])
    return results


def summarise(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per rate: each path's median p50 and worst p99 over its rounds, and the relay path's p99 over the bare hop's
    (and the floor path's, where the run had one)."""
    out: dict[str, Any] = {}
    for rate in (10, 100):
        by = {v: rs for v in VARIANTS if (rs := [r for r in rounds if r["rate"] == rate and r["variant"] == v])}
        p99 = {v: max(r["p99"] for r in rs) for v, rs in by.items()}
        p50 = {v: sorted(r["p50"] for r in rs)[len(rs) // 2] for v, rs in by.items()}
        out[str(rate)] = {"relay_p50_ms": round(p50["relay path"], 1), "relay_p99_ms": round(p99["relay path"], 1),
                          "bare_p50_ms": round(p50["bare hop"], 1), "bare_p99_ms": round(p99["bare hop"], 1),
                          "p99_ratio": round(p99["relay path"] / p99["bare hop"], 2)}  # fmt: skip
        if "floor path" in by:
            out[str(rate)] |= {"floor_p50_ms": round(p50["floor path"], 1), "floor_p99_ms": round(p99["floor path"], 1),
                               "floor_p99_ratio": round(p99["floor path"] / p99["bare hop"], 2)}  # fmt: skip
    return out


def markdown(doc: dict[str, Any]) -> str:
    b = doc["backlog"]
    floor = all("floor_p99_ratio" in s for s in doc["summary"].values())
    names = sorted({n for r in doc["rounds"] for n in r.get("cpu_cores", {})})
    lines = [
        "# Two centres: publish -> visible to the counterpart's reader, across MirrorMaker 2",
        "",
        f"{doc['date']}. Two single-node clusters on one 2-core machine; the relay path (CN's relay, the mirror, "
        "RU's relay) beside a bare MirrorMaker 2 hop of the same bytes, alternating, two rounds each"
        + (
            ""
            if not floor
            else ", and the floor path between them: the same mirror between two transactional "
            "consume -> produce pipes that check nothing (the least an exactly-once hop at each centre costs)"
        )
        + ". Worst p99 of the rounds. Target: relay path p99 at most 1.5 x the bare hop's; a 60 s backlog drained within 10 s. "
        f"Every path carried {doc.get('warm_s', 3):g} s of traffic before the rounds (JIT compile seconds of the "
        "JVMs during each round in the table below, and the share of the round in which some task waited for a "
        "CPU, from the kernel's pressure stall information)"
        + (f"; the JVMs ran with `{doc['jvm_options']}`." if doc.get("jvm_options") else "."),
        "",
        "| rate /s | relay p50 ms | relay p99 ms | bare hop p50 ms | bare hop p99 ms | p99 ratio |"
        + (" floor p50 ms | floor p99 ms | floor p99 ratio |" if floor else ""),
        "| ---: | ---: | ---: | ---: | ---: | ---: |" + (" ---: | ---: | ---: |" if floor else ""),
        *[
            f"| {rate} | {s['relay_p50_ms']} | {s['relay_p99_ms']} | {s['bare_p50_ms']} | {s['bare_p99_ms']} "
            f"| {s['p99_ratio']} |"
            + (f" {s['floor_p50_ms']} | {s['floor_p99_ms']} | {s['floor_p99_ratio']} |" if floor else "")
            for rate, s in doc["summary"].items()
        ],
        "",
        f"Link cut {b['cut_s']:g} s (RU's mirror frozen) while CN published {b['notices']} notices: all "
        f"{b['delivered']} delivered, the last {b['drained_s']} s after the cut ended (load {b['load_1m']}).",
        "",
        "| variant | rate | round | sent | arrived | p50 ms | p95 ms | p99 ms | max ms | load (1 min) | JIT s | CPU waited |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        *[
            f"| {r['variant']} | {r['rate']} | {r['round']} | {r['sent']} | {r['arrived']} | {r['p50']:.1f} "
            f"| {r['p95']:.1f} | {r['p99']:.1f} | {r['max']:.1f} | {r['load_1m']} "
            f"| {round(sum(r.get('jit_s', {}).values()), 2)} | {'' if r.get('cpu_waited') is None else r['cpu_waited']} |"
            for r in doc["rounds"]
        ],
        "",
        "Where the time goes, per round (ms from the stage before: CN's relay or pipe from the publish to its "
        "commit on the link topic, the mirror to the copy in RU's cluster, RU's relay or pipe to its commit on the "
        "topic RU's reader reads):",
        "",
        "| variant | rate | round | CN hop p50 | CN hop p99 | mirror p50 | mirror p99 | RU hop p50 | RU hop p99 |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        *[
            f"| {r['variant']} | {r['rate']} | {r['round']} | "
            + " | ".join(f"{s['p50']} | {s['p99']}" for s in r["stages"].values())
            + " |"
            for r in doc["rounds"]
            if "stages" in r
        ],
        "",
        "CPU of each process during each round (cores: CPU seconds over the publishing seconds; the bench's own "
        "process, which signs the notices and reads every stage, not counted):",
        "",
        "| variant | rate | round | " + " | ".join(names) + " | all |",
        "| --- | ---: | ---: | " + " | ".join("---:" for _ in names) + " | ---: |",
        *[
            f"| {r['variant']} | {r['rate']} | {r['round']} | "
            + " | ".join(str(r["cpu_cores"].get(n, "")) for n in names)
            + f" | {round(sum(r['cpu_cores'].values()), 2)} |"
            for r in doc["rounds"]
        ],
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--cut", type=float, default=60)
    parser.add_argument("--warm", type=float, default=120, help="seconds of traffic before the rounds")
    args = parser.parse_args()
    doc = asyncio.run(run(args.seconds, args.cut, args.warm))
    write_results(ROOT / "bench" / "results", "two_centres", doc, markdown(doc))


if __name__ == "__main__":
    main()
