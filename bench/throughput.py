"""Throughput: how fast the consumer catches up on a pre-loaded stream, CALI's processor vs a no-op processor.

1. Pre-load ``--records`` generator records (Fluent Bit's bytes, ~200 B, ``--error-ratio`` 0.1 ERROR+WARN) into
   a 2-shard stream with PutRecords of 500 (moto serialises requests: one producer).
2. For each processor, a fresh application (new lease table, TRIM_HORIZON) on the same MultiLangDaemon and
   properties; only ``executableName`` differs:
   - ``noop``: ``bench.noop_processor``, reads every record and checkpoints at the end of each batch (the
     protocol's own ceiling);
   - ``cali``: ``bench.timed_consumer`` = ``python -m consumer`` with one timing mark per batch. The real throttle
     (5/min, shared in DynamoDB) and dedup; ``CALI_DIGEST_INTERVAL_SECONDS=1`` so the digest goes out as soon as
     the budget allows; ``CALI_CHECKPOINT_INTERVAL_SECONDS=0.5``.
   Timed from the first record handed to a processor until (a) the batch holding each shard's last record
   returned, (b) each shard's lease checkpoint reached its last sequence number (lease table polled every 0.25 s).
3. In-process profiles (pyinstrument) of CALI's per-record path, the same kind of records through
   ``consumer.alerter.Alerter`` with a sender that does nothing: with ``DynamoState`` on the emulator (the daemon
   stopped; DynamoDB requests counted per operation), and with ``MemoryState`` (the pure CPU cost); plus what
   amazon-kclpy's own decoding of the daemon's JSON lines costs for them.

Run: ``python -m bench.throughput [--records 100000] [--skip-live] [--profile-records 100000 (0: none)]
[--mode webhook|webapi] [--digest-interval 1] [--rounds 1]``. With ``--rounds N`` the two catch-ups run one after
the other N times on the same pre-loaded records (each round a fresh application for each), and the ratio reported
is the median of the rounds' ratios: a single ratio varies by about +-0.1 from run to run on this machine.
"""

from __future__ import annotations

import base64
import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import psutil  # type: ignore[import-untyped]

from bench.common import (
    MODES,
    Summary,
    add_mode,
    base_parser,
    checkpoint_at_least,
    leases,
    mean,
    new_stack,
    processor_stats,
    put_datas,
    read_marks,
    running,
    say,
    setup_logging,
    table,
)
from bench.marks import MARK_FILE_ENV
from consumer.alerter import Alerter, RecordIn
from consumer.deliver.slack import Posted
from consumer.model import Level
from consumer.state.memory import MemoryState
from generator.fluentbit import fluent_bit_record
from generator.lines import LogLineFactory
from localmode.stack import Stack

CHUNK = 5000
PROCESSORS = {"noop": "bench.noop_processor", "cali": "bench.timed_consumer"}
CALI_ENV = {"THROTTLE_MAX_PER_MINUTE": "5", "CALI_DIGEST_INTERVAL_SECONDS": "1",
            "CALI_CHECKPOINT_INTERVAL_SECONDS": "0.5"}


# -- pre-load --------------------------------------------------------------------------------------------------------
@dataclass
class ShardLoad:
    records: int = 0
    bytes: int = 0
    last: str = "0"


@dataclass
class Preloaded:
    shards: dict[str, ShardLoad] = field(default_factory=dict)
    levels: Counter[str] = field(default_factory=Counter)
    put_seconds: float = 0.0

    @property
    def records(self) -> int:
        return sum(s.records for s in self.shards.values())

    @property
    def bytes(self) -> int:
        return sum(s.bytes for s in self.shards.values())


def preload(stack: Stack, n: int, error_ratio: float, seed: int) -> Preloaded:
    factory = LogLineFactory(seed, error_ratio)
    kinesis = stack.client("kinesis")
    out = Preloaded()
    for start in range(0, n, CHUNK):
        batch = factory.take(min(CHUNK, n - start))
        datas = [fluent_bit_record(r) for r in batch]
        t0 = time.monotonic()
        positions = put_datas(kinesis, stack.settings.stream_name, datas)
        out.put_seconds += time.monotonic() - t0
        for data, (shard, seq) in zip(datas, positions, strict=True):
            load = out.shards.setdefault(shard, ShardLoad())
            load.records += 1
            load.bytes += len(data)
            if int(seq) > int(load.last):
                load.last = seq
        out.levels.update(str(r["level"]) for r in batch)
        if (start + len(batch)) % 20000 == 0:
            say(f"pre-loaded {start + len(batch)} records ({(start + len(batch)) / out.put_seconds:.0f}/s)")
    return out


# -- catch-up --------------------------------------------------------------------------------------------------------
@dataclass
class ShardRun:
    records: int
    bytes: int
    first: float  # the first batch handed to the processor
    done: float  # the batch holding the shard's last record returned
    checkpointed: float | None
    batches: int
    seen: int
    busy: float  # seconds inside process_records, all batches

    @property
    def seconds(self) -> float:
        return self.done - self.first

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else float("nan")

    @property
    def mb_per_s(self) -> float:
        return self.bytes / 1e6 / self.seconds if self.seconds > 0 else float("nan")


@dataclass
class CatchUp:
    kind: str
    daemon_started: float
    shards: dict[str, ShardRun]
    processor_stats: dict[str, dict[str, Any]] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds from the first record to the last batch

    @property
    def first(self) -> float:
        return min(s.first for s in self.shards.values())

    @property
    def records(self) -> int:
        return sum(s.records for s in self.shards.values())

    @property
    def processed_seconds(self) -> float:
        return max(s.done for s in self.shards.values()) - self.first

    @property
    def checkpoint_seconds(self) -> float | None:
        ends = [s.checkpointed for s in self.shards.values()]
        return None if any(e is None for e in ends) else max(e for e in ends if e is not None) - self.first


def cpu_seconds(emulator: psutil.Process, receiver: psutil.Process, daemon: psutil.Process) -> dict[str, float]:
    """CPU seconds (user + system) used so far by the emulator, the Slack receiver, the KCL daemon and its Python
    processors (the machine's cores are shared by all of them)."""
    def used(proc: psutil.Process) -> float:
        try:
            times = proc.cpu_times()
            return float(times.user + times.system)
        except psutil.NoSuchProcess:
            return 0.0

    return {"emulator": used(emulator), "Slack receiver": used(receiver), "KCL daemon": used(daemon),
            "Python processors": sum(used(child) for child in daemon.children(recursive=True))}


def cpu_between(samples: Sequence[tuple[float, dict[str, float]]], start: float, end: float) -> dict[str, float]:
    """From the polls' samples: what each used between the last sample before ``start`` and the first after
    ``end`` (0.25 s apart)."""
    before = [cpu for t, cpu in samples if t <= start] or [samples[0][1]]
    after = [cpu for t, cpu in samples if t >= end] or [samples[-1][1]]
    return {name: after[0][name] - before[-1][name] for name in after[0]}


def catch_up(stack: Stack, load: Preloaded, kind: str, timeout: float, round_: int = 1,
             pids: tuple[int, int] | None = None) -> CatchUp:
    """One catch-up; ``pids``: the emulator's and the receiver's, to measure what each process used."""
    app = f"{stack.settings.stream_name}-{kind}" + (f"-{round_}" if round_ > 1 else "")
    mark_file = stack.run_dir / f"marks-{kind}-{round_}.jsonl"
    stack.env.update({"CALI_APP_NAME": app, MARK_FILE_ENV: str(mark_file)})
    stack.create_resources()  # seeds the new application's lease table (TRIM_HORIZON) and its -state table
    dynamodb = stack.client("dynamodb")
    started = time.time()
    daemon = stack.start_daemon(overrides={"executableName": f"{sys.executable} -m {PROCESSORS[kind]}"})
    procs = (psutil.Process(pids[0]), psutil.Process(pids[1]), psutil.Process(daemon.process.pid)) if pids else None
    samples: list[tuple[float, dict[str, float]]] = []
    checkpointed: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    try:
        while len(checkpointed) < len(load.shards):
            if not daemon.alive():
                raise RuntimeError(f"the daemon exited (see {stack.supervisor.log_dir})")
            if procs is not None:
                samples.append((time.time(), cpu_seconds(*procs)))
            table_now, now = leases(dynamodb, app), time.time()
            for shard, shard_load in load.shards.items():
                if shard not in checkpointed and checkpoint_at_least(table_now.get(shard), shard_load.last):
                    checkpointed[shard] = now
            if time.monotonic() > deadline:
                say(f"{kind}: checkpoints did not reach the end within {timeout:.0f}s")
                break
            time.sleep(0.25)
    finally:
        stack.supervisor.stop(daemon)
    marks = read_marks(mark_file)
    shards = {}
    for shard, shard_load in load.shards.items():
        own = [m for m in marks if m["shard"] == shard]
        if not own:
            raise RuntimeError(f"{kind}: no batch of {shard} was processed (see {stack.supervisor.log_dir})")
        last = [m for m in own if int(m["last"]) >= int(shard_load.last)]
        shards[shard] = ShardRun(shard_load.records, shard_load.bytes, min(m["t0"] for m in own),
                                 min(m["t1"] for m in last) if last else max(m["t1"] for m in own),
                                 checkpointed.get(shard), len(own), sum(m["n"] for m in own),
                                 sum(m["t1"] - m["t0"] for m in own))
    run = CatchUp(kind, started, shards, processor_stats(stack.supervisor.log_dir) if kind == "cali" else {})
    if samples:
        run.cpu = cpu_between(samples, run.first, run.first + run.processed_seconds)
    return run


# -- in-process profile ---------------------------------------------------------------------------------------------
class NullSender:
    name = "main"

    def post(self, payload: Mapping[str, Any], *, key: str = "", since: float = 0.0,
             uncertain: bool = False) -> Posted:
        return Posted()


def make_alerter() -> Alerter:
    sender = NullSender()
    return Alerter(levels=frozenset({"ERROR", "WARN"}), state=MemoryState(5), senders={Level.ERROR: sender,
                   Level.WARN: sender}, display_tz=ZoneInfo("Asia/Seoul"), clock=time.time, sleep=lambda _: None,
                   digest_interval=1.0)


def fixture_records(n: int, error_ratio: float, seed: int) -> list[RecordIn]:
    factory = LogLineFactory(seed, error_ratio)
    return [RecordIn(fluent_bit_record(r), "shardId-000000000000", str(49_000_000_000_000_000_000 + i))
            for i, r in enumerate(factory.take(n))]


def feed(alerter: Alerter, records: Sequence[RecordIn], batch: int) -> None:
    for i in range(0, len(records), batch):
        alerter.handle_batch(records[i:i + batch])
        alerter.tick()


def protocol_lines(records: Sequence[RecordIn], batch: int) -> list[str]:
    """The processRecords lines the MultiLangDaemon writes to a child's stdin for these records."""
    lines = []
    for i in range(0, len(records), batch):
        lines.append(json.dumps({"action": "processRecords", "millisBehindLatest": 0, "isAtShardEnd": False,
                                 "records": [{"action": "record", "data": base64.b64encode(r.data).decode(),
                                              "partitionKey": "k", "sequenceNumber": r.sequence_number,
                                              "subSequenceNumber": None,
                                              "approximateArrivalTimestamp": 1_790_000_000_000}
                                             for r in records[i:i + batch]]}))
    return lines


def kclpy_decode_seconds(lines: Sequence[str]) -> float:
    from amazon_kclpy import dispatch

    t0 = time.perf_counter()
    for line in lines:
        message = json.loads(line, object_hook=dispatch.message_decode)
        for record in message.records:
            record.binary_data  # noqa: B018 (the base64 decode is the point)
    return time.perf_counter() - t0


def profile(n: int, batch: int, error_ratio: float, seed: int, top: int) -> tuple[float, float]:
    """(Alerter records/s without the profiler, kclpy decode records/s); prints the profile."""
    from pyinstrument import Profiler

    records = fixture_records(n, error_ratio, seed)
    size = mean(len(r.data) for r in records)
    plain = float("inf")
    for _ in range(3):  # best of 3, each with a fresh Alerter
        alerter = make_alerter()
        t0 = time.perf_counter()
        feed(alerter, records, batch)
        plain = min(plain, time.perf_counter() - t0)
    lines = protocol_lines(records, batch)
    decode = min(kclpy_decode_seconds(lines) for _ in range(3))
    profiler = Profiler(interval=0.0005)
    profiler.start()
    feed(make_alerter(), records, batch)
    profiler.stop()
    stats = alerter.stats
    print(f"\n== CALI per-record path in-process: {n} records ({size:.0f} B mean) in batches of {batch}, "
          f"Alerter + MemoryState + a no-op sender ==")
    print(f"Alerter.handle_batch (best of 3): {plain:.2f} s = {n / plain:,.0f} records/s = "
          f"{plain / n * 1e6:.1f} us/record; "
          f"events {dict(stats.events)}, alerts {stats.alerts_sent}, digests {stats.digests_sent}")
    print(f"amazon-kclpy decoding of the same records (json.loads of the daemon's lines + base64, best of 3): "
          f"{decode:.2f} s = {n / decode:,.0f} records/s = {decode / n * 1e6:.1f} us/record")
    print_profile(profiler, top)
    return n / plain, n / decode


def flat_rows(root: Any, top: int) -> list[list[object]]:
    """Per function: self time (its own frames, including the profiler's [self] leaves) and inclusive time (not
    counted twice through recursion), as % of the whole; the ``top`` by self time."""
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()

    def walk(frame: Any, ancestors: frozenset[str]) -> None:
        key = f"{frame.function}  {frame.file_path_short}:{frame.line_no}"
        self_time[key] += frame.total_self_time
        if key not in ancestors:
            inclusive[key] += frame.time
        for child in frame.children:
            if not child.is_synthetic:
                walk(child, ancestors | {key})

    walk(root, frozenset())
    whole = root.time or 1.0
    return [[f"{s / whole:6.1%}", f"{inclusive[k] / whole:6.1%}", k] for k, s in self_time.most_common(top)]


def print_profile(profiler: Any, top: int, tree_lines: int = 45) -> None:
    root = profiler.last_session.root_frame()
    print(f"\n-- pyinstrument: top {top} functions by self time ({profiler.last_session.duration:.2f} s sampled) --")
    print(table(["self", "incl.", "function  file:line"], flat_rows(root, top)))
    print("\n-- pyinstrument: call tree (top) --")
    tree = profiler.output_text(unicode=False, color=False)
    lines = [line for line in tree.strip("\n").splitlines()[5:] if line.strip()]
    print("\n".join(lines[:tree_lines]))


def profile_dynamo(stack: Stack, n: int, batch: int, error_ratio: float, seed: int,
                   top: int) -> tuple[float, float]:
    """The same path with DynamoState against the emulator (the daemon stopped): what the live CALI run pays per
    batch in DynamoDB requests. Returns (records/s, DynamoDB requests per batch)."""
    from pyinstrument import Profiler

    from consumer.state.dynamodb import DynamoState, ensure_table

    records = fixture_records(n, error_ratio, seed)
    client = stack.client("dynamodb")
    state_table = f"{stack.settings.stream_name}-inproc"
    ensure_table(client, state_table)
    calls: Counter[str] = Counter()

    def count(**kwargs: Any) -> None:
        calls[kwargs["model"].name] += 1

    client.meta.events.register("before-call.dynamodb", count)
    sender = NullSender()
    alerter = Alerter(levels=frozenset({"ERROR", "WARN"}), state=DynamoState(client, state_table, 5),
                      senders={Level.ERROR: sender, Level.WARN: sender}, display_tz=ZoneInfo("Asia/Seoul"),
                      clock=time.time, sleep=lambda _: None, digest_interval=1.0)
    profiler = Profiler(interval=0.001)
    t0 = time.perf_counter()
    profiler.start()
    feed(alerter, records, batch)
    profiler.stop()
    seconds = time.perf_counter() - t0
    batches = -(-n // batch)
    stats = alerter.stats
    requests = sum(calls.values())
    print(f"\n== CALI per-record path in-process, DynamoState on the emulator: {n} records in batches of {batch} ==")
    print(f"{seconds:.2f} s = {n / seconds:,.0f} records/s; {requests} DynamoDB requests "
          f"({requests / batches:.0f} per batch, {dict(calls)}), "
          f"{seconds / max(1, requests) * 1000:.1f} ms per request on average; "
          f"alerts {stats.alerts_sent}, digests {stats.digests_sent}, digested+held events "
          f"{stats.digested_events + alerter.held} of {sum(stats.events[k] for k in ('ERROR', 'WARN'))}")
    print_profile(profiler, top)
    return n / seconds, requests / batches


# -- report --------------------------------------------------------------------------------------------------------
def report(load: Preloaded, runs: dict[str, CatchUp]) -> None:
    print(f"\n== throughput: catch-up on {load.records} pre-loaded records, {load.bytes / 1e6:.1f} MB "
          f"({load.bytes / load.records:.0f} B mean), levels {dict(load.levels)} ==")
    print(f"pre-load: {load.put_seconds:.1f} s in PutRecords = {load.records / load.put_seconds:,.0f} records/s "
          f"(one producer; moto serialises requests)\n")
    rows: list[list[object]] = []
    for kind, run in runs.items():
        for shard, s in sorted(run.shards.items()):
            ck = f"{s.checkpointed - run.first:.1f}" if s.checkpointed is not None else "not reached"
            rows.append([kind, shard, s.records, s.batches, f"{s.seen / s.batches:.0f}",
                         f"{s.first - run.daemon_started:.1f}", f"{s.seconds:.1f}", f"{s.busy:.1f}",
                         f"{s.rate:,.0f}", f"{s.mb_per_s:.2f}", ck])
        ckpt = run.checkpoint_seconds
        rows.append([kind, "both", run.records, "", "", f"{run.first - run.daemon_started:.1f}",
                     f"{run.processed_seconds:.1f}", "", f"{run.records / run.processed_seconds:,.0f}",
                     f"{load.bytes / 1e6 / run.processed_seconds:.2f}",
                     f"{ckpt:.1f}" if ckpt is not None else "not reached"])
    print(table(["processor", "shard", "records", "batches", "rec/batch", "start->1st s", "processed s",
                 "in processor s", "records/s", "MB/s", "checkpoint at end s"], rows))
    for kind, run in runs.items():
        for shard, stats in sorted(run.processor_stats.items()):
            print(f"{kind} {shard} at the end: records {stats.get('records')}, alerts sent {stats.get('alerts_sent')}, "
                  f"digests sent {stats.get('digests_sent')}, events held in the digest {stats.get('held')}")
    cpu_rows = [[kind, *(f"{seconds:.1f}" for seconds in run.cpu.values())] for kind, run in runs.items() if run.cpu]
    if cpu_rows:
        print("\nCPU seconds from the first record handed to a processor to the last batch processed:")
        print(table(["processor", *next(run.cpu for run in runs.values() if run.cpu)], cpu_rows))
    if {"noop", "cali"} <= runs.keys():
        print(f"\nCALI / no-op (records processed per second, both shards): {ratio(runs):.2f}")


def ratio(runs: Mapping[str, CatchUp]) -> float:
    noop, cali = runs["noop"], runs["cali"]
    return (cali.records / cali.processed_seconds) / (noop.records / noop.processed_seconds)


def run(records: int = 100_000, error_ratio: float = 0.1, seed: int = 7, live: bool = True,
        profile_records: int = 100_000, profile_batch: int = 10_000, top: int = 25, mode: str = "webhook",
        digest_interval: float = 1.0, rounds: int = 1) -> Summary:
    summary: Summary = []
    if live:
        say(f"{mode} mode, digest interval {digest_interval:g} s")
        stack = new_stack("throughput", **{**CALI_ENV, "CALI_DIGEST_INTERVAL_SECONDS": f"{digest_interval:g}"},
                          **MODES[mode])
        with running(stack):
            emulator = stack.start_emulator()
            stack.create_resources()
            receiver = stack.start_receiver()
            pids = (emulator.process.pid, receiver.process.pid) if emulator and receiver else None
            say(f"pre-loading {records} records")
            load = preload(stack, records, error_ratio, seed)
            rounds_run: list[dict[str, CatchUp]] = []
            for round_ in range(1, rounds + 1):  # paired runs on the same records: a round's two see the same
                # machine, and the median of the rounds' ratios is steadier than one ratio (+-0.1 from run to run)
                runs = {}
                for kind in PROCESSORS:
                    say(f"catch-up with the {kind} processor" + (f" (round {round_} of {rounds})" if rounds > 1
                                                                   else ""))
                    runs[kind] = catch_up(stack, load, kind, timeout=max(300.0, records / 100), round_=round_,
                                          pids=pids)
                report(load, runs)
                rounds_run.append(runs)
            ratios = [ratio(r) for r in rounds_run]
            if rounds > 1:
                print(f"\nCALI / no-op per round: {', '.join(f'{x:.2f}' for x in ratios)}; "
                      f"median {statistics.median(ratios):.2f}")
            dynamo = None
            if profile_records:
                say("profiling the per-record path with DynamoState")
                dynamo = profile_dynamo(stack, min(profile_records, 30_000), profile_batch, error_ratio, seed, top)
        each = f", median of {rounds} rounds (each round's)" if rounds > 1 else " (per shard)"
        for kind in PROCESSORS:
            rates = [r[kind].records / r[kind].processed_seconds for r in rounds_run]
            detail = [f"{s.rate:,.0f}" for _, s in sorted(rounds_run[0][kind].shards.items())] if rounds == 1 \
                else [f"{x:,.0f}" for x in rates]
            summary.append((f"catch-up {kind}: records/s both shards{each}",
                            f"{statistics.median(rates):,.0f} ({', '.join(detail)})"))
        summary.append((f"catch-up CALI / no-op{each if rounds > 1 else ''}",
                        f"{statistics.median(ratios):.2f}" + (f" ({', '.join(f'{x:.2f}' for x in ratios)})"
                                                              if rounds > 1 else "")))
        if dynamo is not None:
            summary.append(("in-process Alerter, DynamoState on the emulator",
                            f"{dynamo[0]:,.0f} records/s, {dynamo[1]:.0f} requests per {profile_batch} records"))
    if profile_records:
        alerter_rate, decode_rate = profile(profile_records, profile_batch, error_ratio, seed, top)
        summary.append(("in-process Alerter (MemoryState) records/s", f"{alerter_rate:,.0f}"))
        summary.append(("in-process kclpy decode records/s", f"{decode_rate:,.0f}"))
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__)
    parser.add_argument("--records", type=int, default=100_000, help="records to pre-load (default 100000)")
    parser.add_argument("--error-ratio", type=float, default=0.1, help="ERROR+WARN share (default 0.1)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-live", action="store_true", help="only the in-process profile")
    parser.add_argument("--profile-records", type=int, default=100_000, help="0 skips the profile")
    parser.add_argument("--profile-batch", type=int, default=10_000,
                        help="records per handle_batch (default 10000: the KCL's maxRecords, what catch-up sees)")
    parser.add_argument("--top", type=int, default=25, help="flat profile lines to print")
    parser.add_argument("--digest-interval", type=float, default=1.0,
                        help="CALI_DIGEST_INTERVAL_SECONDS of the live run (default 1: digests go out during the run)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="no-op and CALI catch-ups, one after the other, this many times on the same records "
                             "(default 1); the ratio reported is the rounds' median")
    add_mode(parser)
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be 1 or more")
    setup_logging(args.verbose)
    run(args.records, args.error_ratio, args.seed, not args.skip_live, args.profile_records, args.profile_batch,
        args.top, args.mode, args.digest_interval, args.rounds)


if __name__ == "__main__":
    main()
