"""Footprint: RSS and CPU of every process while the pipeline takes a steady ``--rate`` (500) records/s.

The whole local pipeline runs as ``make run`` runs it (emulator, receiver, KCL daemon with CALI's processor, real
throttle 5/min, default checkpoint interval), fed by the generator's own ``KinesisOutput`` (Fluent Bit's bytes,
PutRecords every 0.2 s, ``--error-ratio`` 0.2 as in ``.env``) from a thread of this process. Every 5 s: RSS and
CPU% (of one core) of the JVM, each Python child of the JVM (one per shard), the emulator, the receiver and this
process (the generator); every 30 s the JVM's heap (``jstat -gc``). The processor is ``bench.timed_consumer``
(``python -m consumer`` plus one mark per batch) so the processing lag is known: mark time minus the time the
batch's last record was put.

Run: ``python -m bench.footprint [--minutes 5] [--rate 500]``.
"""

from __future__ import annotations

import bisect
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psutil  # type: ignore[import-untyped]

from bench.common import (
    Receiver,
    Summary,
    base_parser,
    leases,
    mean,
    new_stack,
    percentile,
    processor_stats,
    read_marks,
    running,
    say,
    setup_logging,
    slope,
    table,
)
from bench.marks import MARK_FILE_ENV
from generator.__main__ import run as generate
from generator.lines import LogLineFactory
from generator.outputs import KinesisOutput
from localmode.supervisor import wait_for

SAMPLE_SECONDS = 5.0
HEAP_EVERY_SECONDS = 30.0
WARMUP_SECONDS = 30.0  # left out of the RSS slope: start-up allocations are not growth


class PutLog:
    """A Kinesis client wrapper that remembers, per shard, when each sequence number was put."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()
        self.seqs: dict[str, list[int]] = {}
        self.times: dict[str, list[float]] = {}
        self.records = 0

    def put_records(self, *, Records: Sequence[Any], StreamName: str) -> Mapping[str, Any]:
        response: Mapping[str, Any] = self._client.put_records(Records=Records, StreamName=StreamName)
        now = time.time()
        last: dict[str, int] = {}
        for result in response.get("Records", []):
            if "SequenceNumber" in result:
                shard, seq = str(result["ShardId"]), int(result["SequenceNumber"])
                last[shard] = max(seq, last.get(shard, 0))
                self.records += 1
        with self._lock:
            for shard, seq in last.items():
                self.seqs.setdefault(shard, []).append(seq)
                self.times.setdefault(shard, []).append(now)
        return response

    def put_time(self, shard: str, seq: int) -> float | None:
        """When the PutRecords holding ``seq`` of ``shard`` returned."""
        with self._lock:
            seqs, times = self.seqs.get(shard, []), self.times.get(shard, [])
            i = bisect.bisect_left(seqs, seq)
            return times[i] if i < len(times) else None


@dataclass
class Series:
    t: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)


def jvm_heap_mb(pid: int) -> tuple[float, float, float] | None:
    """(heap used, old generation used, heap committed) in MB from ``jstat -gc``; None without jstat."""
    jstat = shutil.which("jstat")
    if jstat is None:
        return None
    try:
        out = subprocess.run([jstat, "-gc", str(pid)], capture_output=True, text=True, timeout=20).stdout.split()
    except (OSError, subprocess.TimeoutExpired):
        return None
    half = len(out) // 2
    if half == 0:
        return None
    values = dict(zip(out[:half], out[half:], strict=True))
    try:
        used = sum(float(values[k]) for k in ("S0U", "S1U", "EU", "OU"))
        committed = sum(float(values[k]) for k in ("S0C", "S1C", "EC", "OC"))
        return used / 1024, float(values["OU"]) / 1024, committed / 1024
    except (KeyError, ValueError):
        return None


class Sampler:
    def __init__(self, fixed: Mapping[str, int], jvm_pid: int) -> None:
        self._procs: dict[str, psutil.Process] = {}
        self._jvm = psutil.Process(jvm_pid)
        self._children: dict[int, str] = {}
        self.series: dict[str, Series] = {}
        for name, pid in fixed.items():
            self._add(name, psutil.Process(pid))

    def _add(self, name: str, proc: psutil.Process) -> None:
        proc.cpu_percent(None)  # the first call only starts the interval
        self._procs[name] = proc
        self.series.setdefault(name, Series())

    def sample(self, at: float) -> None:
        try:
            for child in self._jvm.children(recursive=True):
                if child.pid not in self._children:
                    self._children[child.pid] = f"python child {len(self._children) + 1} (pid {child.pid})"
                    self._add(self._children[child.pid], child)
        except psutil.NoSuchProcess:
            pass
        for name, proc in list(self._procs.items()):
            try:
                with proc.oneshot():
                    rss, cpu = proc.memory_info().rss / 2**20, proc.cpu_percent(None)
            except psutil.NoSuchProcess:
                del self._procs[name]
                continue
            s = self.series[name]
            s.t.append(at)
            s.rss_mb.append(rss)
            s.cpu.append(cpu)


def run(minutes: float = 5.0, rate: float = 500.0, error_ratio: float = 0.2) -> Summary:
    stack = new_stack("footprint")
    mark_file = stack.run_dir / "marks.jsonl"
    stack.env[MARK_FILE_ENV] = str(mark_file)
    seconds = minutes * 60
    heap: list[tuple[float, float, float, float]] = []
    system_cpu: list[float] = []
    with running(stack):
        emulator = stack.start_emulator()
        stack.create_resources()
        receiver = stack.start_receiver()
        daemon = stack.start_daemon(overrides={"executableName": f"{sys.executable} -m bench.timed_consumer"})
        if emulator is None or receiver is None:
            raise RuntimeError("footprint needs its own emulator and receiver")
        puts = PutLog(stack.client("kinesis"))
        output = KinesisOutput(stack.settings.stream_name, puts)
        # Start-up is bench.startup's business: measure from when both processors have handled a batch.
        output.send(LogLineFactory(None, 0.0).take(50))
        wait_for(lambda: {m["shard"] for m in read_marks(mark_file)}, lambda shards: len(shards) >= 2, 180,
                 "both processors' first batch", 0.5)
        stop = threading.Event()
        written: list[int] = []
        gen = threading.Thread(target=lambda: written.append(
            generate(LogLineFactory(None, error_ratio), output, rate=rate, batch_interval=0.2, stop=stop)),
            name="generator", daemon=True)
        sampler = Sampler({"jvm (KCL daemon)": daemon.process.pid, "emulator (moto)": emulator.process.pid,
                           "slack receiver": receiver.process.pid, "bench (generator thread)": psutil.Process().pid},
                          daemon.process.pid)
        psutil.cpu_percent(None)
        t0 = time.time()
        gen.start()
        say(f"generating {rate:g} records/s for {minutes:g} min")
        next_heap = t0
        try:
            while (now := time.time()) - t0 < seconds:
                time.sleep(max(0.0, SAMPLE_SECONDS - (time.time() - now)))
                at = time.time() - t0
                sampler.sample(at)
                system_cpu.append(psutil.cpu_percent(None))
                if time.time() >= next_heap:
                    h = jvm_heap_mb(daemon.process.pid)
                    if h is not None:
                        heap.append((at, *h))
                    next_heap += HEAP_EVERY_SECONDS
                if int(at) % 60 < SAMPLE_SECONDS:
                    say(f"{at:.0f} s: {puts.records} records put")
        finally:
            stop.set()
            gen.join(30)
            output.close()
        elapsed = time.time() - t0
        time.sleep(3.0)
        table_now = leases(stack.client("dynamodb"), stack.settings.app_name)
        checkpoint_ages = {}
        for shard, lease in table_now.items():
            cp = lease.get("checkpoint", "")
            put_at = puts.put_time(shard, int(cp)) if cp.isdigit() else None
            checkpoint_ages[shard] = "never checkpointed" if put_at is None else f"{time.time() - put_at:.0f} s"
        messages = len(Receiver.of(stack).messages())

    marks = read_marks(mark_file)
    lags = []
    for m in marks:
        put_at = puts.put_time(m["shard"], int(m["last"]))
        if put_at is not None and m["t1"] >= t0:
            lags.append((m["t1"] - t0, m["t1"] - put_at))
    processed: dict[int, int] = {}
    for m in marks:
        if m["t1"] >= t0:
            processed[int((m["t1"] - t0) // 60)] = processed.get(int((m["t1"] - t0) // 60), 0) + int(m["n"])
    report(sampler.series, heap, system_cpu, puts.records / elapsed, rate, lags, checkpoint_ages, messages,
           minutes, processed, processor_stats(stack.supervisor.log_dir))
    jvm = sampler.series["jvm (KCL daemon)"]
    late = [lag for at, lag in lags if at > seconds / 2]
    return [(f"footprint at {rate:g} records/s for {minutes:g} min: max RSS JVM / emulator",
             f"{max(jvm.rss_mb):.0f} MB / {max(sampler.series['emulator (moto)'].rss_mb):.0f} MB"),
            ("footprint: mean CPU JVM / emulator / python children",
             f"{mean(jvm.cpu):.0f}% / {mean(sampler.series['emulator (moto)'].cpu):.0f}% / "
             + " + ".join(f"{mean(s.cpu):.0f}%" for n, s in sampler.series.items() if n.startswith("python child"))),
            ("footprint: processing lag p50 / max (second half)",
             f"{percentile(late, 50):.2f} s / {max(late, default=float('nan')):.2f} s")]


def report(series: Mapping[str, Series], heap: Sequence[tuple[float, float, float, float]],
           system_cpu: Sequence[float], achieved: float, rate: float, lags: Sequence[tuple[float, float]],
           checkpoint_ages: Mapping[str, str], messages: int, minutes: float, processed: Mapping[int, int],
           stats_by_shard: Mapping[str, Mapping[str, Any]]) -> None:
    print(f"\n== footprint: {rate:g} records/s asked, {achieved:.0f} records/s put, {minutes:g} min, a sample every "
          f"{SAMPLE_SECONDS:g} s ==")
    rows = []
    for name, s in series.items():
        steady = [i for i, t in enumerate(s.t) if t >= WARMUP_SECONDS]
        growth = slope([s.t[i] / 60 for i in steady], [s.rss_mb[i] for i in steady])
        rows.append([name, len(s.t), f"{mean(s.rss_mb):.0f}", f"{max(s.rss_mb):.0f}",
                     f"{s.rss_mb[steady[0]] if steady else float('nan'):.0f} -> {s.rss_mb[-1]:.0f}",
                     f"{growth:+.2f}", f"{mean(s.cpu):.1f}", f"{max(s.cpu):.1f}",
                     f"{mean(s.cpu[len(s.cpu) // 2:]) - mean(s.cpu[:len(s.cpu) // 2]):+.1f}"])
    print(table(["process", "samples", "RSS mean MB", "RSS max MB", f"RSS from {WARMUP_SECONDS:g}s -> end",
                 "RSS slope MB/min", "CPU mean %", "CPU max %", "CPU 2nd-1st half"], rows))
    print(f"machine CPU (all cores, % of the whole machine): mean {mean(system_cpu):.0f}%, max {max(system_cpu):.0f}%")
    if heap:
        print(f"JVM heap (jstat, every {HEAP_EVERY_SECONDS:g} s, -Xmx256m), MB: used "
              + ", ".join(f"{u:.0f}" for _, u, _, _ in heap) + "; old generation "
              + ", ".join(f"{o:.0f}" for _, _, o, _ in heap) + "; committed "
              + ", ".join(f"{c:.0f}" for _, _, _, c in heap))
    if lags:
        values = [lag for _, lag in lags]
        half = [lag for at, lag in lags if at > minutes * 30]
        print(f"processing lag (batch done - its last record put), {len(values)} batches: p50 "
              f"{percentile(values, 50):.2f} s, p95 {percentile(values, 95):.2f} s, max {max(values):.2f} s; "
              f"second half p50 {percentile(half, 50):.2f} s, max {max(half, default=float('nan')):.2f} s")
    if processed:
        print("records processed per minute (both shards; put: " + f"{achieved * 60:.0f}/min): "
              + ", ".join(f"min {m + 1}: {n}" for m, n in sorted(processed.items())))
    for shard, stats in sorted(stats_by_shard.items()):
        print(f"{shard} processor stats at the end: records {stats.get('records')}, alerts sent "
              f"{stats.get('alerts_sent')}, digests sent {stats.get('digests_sent')}, events held in the digest "
              f"{stats.get('held')}")
    print("lease checkpoint age at the end (now - when the checkpointed record was put): "
          + ", ".join(f"{shard} {age}" for shard, age in sorted(checkpoint_ages.items())))
    print(f"Slack messages received: {messages}")


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__)
    parser.add_argument("--minutes", type=float, default=5.0, help="how long to run (default 5)")
    parser.add_argument("--rate", type=float, default=500.0, help="records per second (default 500)")
    parser.add_argument("--error-ratio", type=float, default=0.2, help="ERROR+WARN share (default 0.2, as .env)")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    run(args.minutes, args.rate, args.error_ratio)


if __name__ == "__main__":
    main()
