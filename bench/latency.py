"""Latency: one log line put into Kinesis -> its alert at the Slack receiver (``received_at``).

Each line is written the way the generator's Kinesis output writes it (``KinesisOutput``: Fluent Bit's record
bytes, a Fluent Bit-style partition key), one PutRecords per line at ``--rate`` lines/s, and carries its own
service name (so no two fold into one alert) and a sequence number in its message. The send time is taken just
before the PutRecords call. ``THROTTLE_MAX_PER_MINUTE`` is set very high: no alert waits in a digest.
``idleTimeBetweenReadsInMillis`` is the properties' 200.

Run: ``python -m bench.latency [--lines 300] [--rate 20] [--mode webhook|webapi]``.
"""

from __future__ import annotations

import re
import time

from bench.common import (
    MODES,
    Receiver,
    Summary,
    add_mode,
    base_parser,
    mean,
    ms,
    new_run_id,
    new_stack,
    percentile,
    running,
    say,
    setup_logging,
    table,
)
from generator.lines import make_line
from generator.outputs import KinesisOutput
from localmode.stack import Stack
from localmode.supervisor import wait_for

WARMUP_LINES = 10


def send_paced(output: KinesisOutput, marker: str, first: int, n: int, rate: float) -> dict[int, float]:
    """Put lines ``first .. first+n-1`` one per PutRecords at ``rate``/s; returns seq -> send time (wall clock)."""
    sent: dict[int, float] = {}
    start = time.monotonic()
    for i in range(n):
        seq = first + i
        due = start + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        record = make_line("ERROR", f"{marker}-s{seq}", f"latency probe {marker} seq={seq}", seq=seq)
        sent[seq] = time.time()
        if output.send([record]):
            raise RuntimeError(f"line {seq} was not accepted by Kinesis")
    return sent


def received(receiver: Receiver, marker: str) -> dict[int, float]:
    pattern = re.compile(rf"latency probe {re.escape(marker)} seq=(\d+)")
    out: dict[int, float] = {}
    for at, text in receiver.texts_with(marker):
        match = pattern.search(text)
        if match:
            out.setdefault(int(match.group(1)), at)
    return out


def measure(stack: Stack, lines: int, rate: float) -> list[float]:
    receiver = Receiver.of(stack)
    s = stack.settings
    output = KinesisOutput(s.stream_name, stack.client("kinesis"))
    marker = f"lat{new_run_id()}"
    # Warm-up: the daemon takes its leases and the processors start; not measured.
    send_paced(output, marker, 0, WARMUP_LINES, rate)
    wait_for(lambda: received(receiver, marker), lambda r: len(r) >= WARMUP_LINES, 180, "the warm-up alerts", 0.2)
    say(f"warm; sending {lines} lines at {rate:g}/s")
    sent = send_paced(output, marker, WARMUP_LINES, lines, rate)
    got = wait_for(lambda: received(receiver, marker), lambda r: len(r) >= WARMUP_LINES + lines, 120,
                   "every alert", 0.2)
    return [got[seq] - at for seq, at in sorted(sent.items())]


def run(lines: int = 300, rate: float = 20.0, mode: str = "webhook") -> Summary:
    stack = new_stack("latency", THROTTLE_MAX_PER_MINUTE="1000000", CALI_DIGEST_INTERVAL_SECONDS="1", **MODES[mode])
    with running(stack):
        stack.start_emulator()
        stack.create_resources()
        stack.start_receiver()
        stack.start_daemon()
        latencies = measure(stack, lines, rate)

    p50, p95, p99 = (percentile(latencies, p) for p in (50, 95, 99))
    print(f"\n== latency: put -> alert at the receiver, {len(latencies)} alerts at {rate:g} lines/s, {mode} mode ==")
    print(table(["alerts", "min", "p50", "p95", "p99", "max", "mean"],
                [[len(latencies), ms(min(latencies)), ms(p50), ms(p95), ms(p99), ms(max(latencies)),
                  ms(mean(latencies))]]))
    windows = 6
    size = -(-len(latencies) // windows)
    print(f"\nover time (p50 / max per {size} consecutive lines; growth means the consumer is not keeping up):")
    rows = []
    for i in range(0, len(latencies), size):
        end = min(i + size, len(latencies))
        rows.append([f"{i + 1}-{end}", f"{i / rate:.0f}-{end / rate:.0f}", ms(percentile(latencies[i:end], 50)),
                     ms(max(latencies[i:end]))])
    print(table(["lines", "sent during s", "p50", "max"], rows))
    return [(f"put -> alert p50 / p95 / p99 ({len(latencies)} alerts, {rate:g}/s, {mode})",
             f"{ms(p50)} / {ms(p95)} / {ms(p99)}")]


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__)
    parser.add_argument("--lines", type=int, default=300, help="measured lines (default 300; >= 200 asked)")
    parser.add_argument("--rate", type=float, default=20.0, help="lines per second (default 20)")
    add_mode(parser)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    run(args.lines, args.rate, args.mode)


if __name__ == "__main__":
    main()
