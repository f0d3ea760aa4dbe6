"""A second worker joins: does it stay a hot standby, or does the KCL hand it shards, and when?

Local mode, one stream of 2 shards: worker A starts alone and takes both leases; lines flow at ``--rate`` per second
(ERROR lines straight into the stream, as Fluent Bit would write them); then worker B (same application, its own
``CALI_WORKER_ID``) starts. The lease table is read every 0.5 s for ``--watch`` seconds: when B first holds a lease,
how many it holds at the end, and whether A's log says it handed one over ("graceful lease handoff").

Run: ``python -m bench.second_worker [--watch 150] [--rate 20] [--runs 1]``.
"""

from __future__ import annotations

import threading
import time

from bench.common import (
    Summary,
    base_parser,
    error_record,
    leases,
    new_stack,
    put_datas,
    running,
    say,
    setup_logging,
    table,
)
from localmode.supervisor import wait_for

ENV = {"THROTTLE_MAX_PER_MINUTE": "100000", "CALI_DIGEST_INTERVAL_SECONDS": "2"}
A, B = "cali-join-a", "cali-join-b"


def one_run(watch: float, rate: float) -> dict[str, object]:
    stack = new_stack("join", **ENV)
    with running(stack):
        stack.start_emulator()
        stack.create_resources()
        stack.start_receiver()
        s = stack.settings
        kinesis, dynamodb = stack.client("kinesis"), stack.client("dynamodb")
        stop = threading.Event()

        def feed() -> None:
            n = 0
            while not stop.wait(1.0):
                put_datas(kinesis, s.stream_name, [error_record("join-api", f"join line {n + i}")
                                                   for i in range(int(rate))])
                n += int(rate)

        feeder = threading.Thread(target=feed, daemon=True)
        stack.start_daemon(A)
        a_started = time.monotonic()
        wait_for(lambda: leases(dynamodb, s.app_name), lambda ls: len(ls) == 2 and all(
            lease.get("leaseOwner") == A for lease in ls.values()), 180, "worker A holding both leases")
        a_ready = time.monotonic() - a_started
        feeder.start()
        time.sleep(10)  # A under load for a while before B joins
        stack.start_daemon(B)
        joined = time.monotonic()
        first_b: float | None = None
        owners: dict[str, str] = {}
        while time.monotonic() - joined < watch:
            owners = {k: v.get("leaseOwner", "") for k, v in leases(dynamodb, s.app_name).items()}
            if first_b is None and B in owners.values():
                first_b = time.monotonic() - joined
                say(f"worker B holds a lease {first_b:.1f} s after it started")
            time.sleep(0.5)
        stop.set()
        feeder.join(5)
        log_a = (stack.supervisor.log_dir / f"kcl-{A}.log").read_text(errors="replace")
        return {"a_ready": a_ready, "first_b": first_b, "b_leases": sum(o == B for o in owners.values()),
                "handoff_logged": "graceful lease handoff" in log_a.lower() or "Initiated graceful" in log_a}


def run(runs: int = 1, watch: float = 150.0, rate: float = 20.0) -> Summary:
    results = [one_run(watch, rate) for _ in range(runs)]
    rows = [[f"{r['a_ready']:.1f}", "never" if r["first_b"] is None else f"{r['first_b']:.1f}",
             r["b_leases"], "yes" if r["handoff_logged"] else "no"] for r in results]
    print(table(["A holds both (s)", "B's first lease after B started (s)", "B's leases at the end",
                 "A logged a graceful handoff"], rows))
    firsts = [r["first_b"] for r in results if isinstance(r["first_b"], float)]
    return [("second worker's first lease", f"{min(firsts):.1f}-{max(firsts):.1f} s" if firsts
             else f"none within {watch:.0f} s")]


def main() -> None:
    parser = base_parser(__doc__)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--watch", type=float, default=150.0, help="seconds to watch the leases after B starts")
    parser.add_argument("--rate", type=float, default=20.0, help="ERROR lines per second while watching")
    args = parser.parse_args()
    setup_logging(args.verbose)
    run(args.runs, args.watch, args.rate)


if __name__ == "__main__":
    main()
