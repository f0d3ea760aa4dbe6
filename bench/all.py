"""``python -m bench.all`` (``make bench``): every benchmark in turn, one after the other (never in parallel: they
share 2 cores), then one table of the headline numbers. Each is also runnable alone: ``python -m bench.<name>``.

``--quick`` shrinks them (about 8 minutes in all); the defaults are what bench/RESULTS.md records.
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable

from bench import footprint, latency, startup, state_latency, throughput
from bench.common import Summary, base_parser, machine_info, say, setup_logging, table


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__)
    parser.add_argument("--quick", action="store_true", help="shorter runs of everything")
    parser.add_argument("--runs", type=int, help="start-up: cold and warm runs each (default 3; quick 1)")
    parser.add_argument("--lines", type=int, help="latency: measured lines (default 300; quick 200)")
    parser.add_argument("--records", type=int, help="throughput: pre-loaded records (default 100000; quick 20000)")
    parser.add_argument("--minutes", type=float, help="footprint: minutes at 500 records/s (default 2; quick 1)")
    parser.add_argument("--alerts", type=int, help="state latency: alerts per state (default 500; quick 200)")
    parser.add_argument("--only", action="append", choices=["startup", "latency", "throughput", "footprint", "state"],
                        help="run only these (repeatable)")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    q = args.quick
    benches: dict[str, Callable[[], Summary]] = {
        "startup": lambda: startup.run(args.runs or (1 if q else 3)),
        "latency": lambda: latency.run(args.lines or (200 if q else 300)),
        "throughput": lambda: throughput.run(args.records or (20_000 if q else 100_000),
                                             profile_records=20_000 if q else 100_000),
        "footprint": lambda: footprint.run(args.minutes or (1.0 if q else 2.0)),
        "state": lambda: state_latency.run(args.alerts or (200 if q else 500)),
    }
    print("== machine ==")
    print(table(["", ""], machine_info()))
    rows: list[list[str]] = []
    failed = []
    for name, bench in benches.items():
        if args.only and name not in args.only:
            continue
        say(f"--- {name} ---")
        started = time.monotonic()
        try:
            summary = bench()
        except Exception as exc:  # one failing benchmark must not hide the others' numbers
            traceback.print_exc()
            failed.append(name)
            summary = [("FAILED", f"{type(exc).__name__}: {exc}")]
        rows += [[name, metric, value] for metric, value in summary]
        rows.append([name, "(benchmark wall time)", f"{time.monotonic() - started:.0f} s"])
        sys.stdout.flush()
    print("\n== summary ==")
    print(table(["benchmark", "metric", "value"], rows))
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
