"""Leader kill: seconds from ``kill -9`` of the KCL 3.1.3 leader until the surviving worker holds every shard, without
any help (the leader lock is 2 minutes, hard-coded; amazon-kinesis-client #1803 reports it may never be taken
again), and when the dead leader was reported by ``python -m consumer.health`` on the survivor.

Two workers, 4 shards split 2/2 up front (as the fault tests do: KCL 3.1.3 cannot balance by CPU off AWS).
Run: ``python -m bench.leader_recovery [--runs 1] [--give-up 300]``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter

from bench.common import Summary, base_parser, leases, mean, new_stack, running, say, setup_logging
from localmode.stack import Stack
from localmode.supervisor import wait_for

WORKERS = ("worker-one", "worker-two")


def owners(stack: Stack) -> Counter[str]:
    table = leases(stack.client("dynamodb"), stack.settings.app_name)
    return Counter(lease.get("leaseOwner", "-") for lease in table.values() if lease.get("checkpoint") != "SHARD_END")


def leader(stack: Stack) -> str | None:
    dynamodb = stack.client("dynamodb")
    try:
        item = dynamodb.get_item(TableName=f"{stack.settings.app_name}-CoordinatorState",
                                 Key={"key": {"S": "Leader"}}).get("Item", {})
    except dynamodb.exceptions.ResourceNotFoundException:
        return None
    owner = item.get("ownerName", {}).get("S")
    return str(owner) if owner else None


def unhealthy(stack: Stack, worker: str) -> bool:
    result = subprocess.run([sys.executable, "-m", "consumer.health", "--json"], capture_output=True, text=True,
                            env={**stack.env, "CALI_WORKER_ID": worker}, timeout=60)
    return result.returncode == 1 and bool(json.loads(result.stdout or "{}").get("without_live_owner"))


def one_run(give_up: float) -> tuple[float | None, float | None]:
    stack = new_stack("leader", CALI_STREAM_SHARDS="4", THROTTLE_MAX_PER_MINUTE="100000")
    with running(stack):
        stack.start_emulator()
        stack.create_resources(WORKERS)
        stack.start_receiver()
        daemons = {w: stack.start_daemon(w) for w in WORKERS}
        wait_for(lambda: owners(stack), lambda o: o == Counter(dict.fromkeys(WORKERS, 2)), 180, "a 2/2 split")
        boss = str(wait_for(lambda: leader(stack), lambda x: x in WORKERS, 180, "a leader"))
        survivor = next(w for w in WORKERS if w != boss)
        wait_for(lambda: unhealthy(stack, survivor), lambda bad: not bad, 120, "a healthy survivor")
        time.sleep(5)
        stack.supervisor.kill(daemons[boss])
        killed = time.monotonic()
        say(f"killed the leader {boss}")
        reported = recovered = None
        while time.monotonic() - killed < give_up:
            now = time.monotonic() - killed
            if reported is None and unhealthy(stack, survivor):
                reported = now
                say(f"health on {survivor} reported the dead leader after {reported:.1f} s")
            if owners(stack) == Counter({survivor: 4}):
                recovered = now
                say(f"{survivor} holds all 4 shards {recovered:.1f} s after the kill")
                break
            time.sleep(1)
        else:
            say(f"no recovery within {give_up:.0f} s")
    return reported, recovered


def main(argv: list[str] | None = None) -> Summary:
    parser = base_parser(__doc__)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--give-up", type=float, default=300.0, help="seconds to wait for a recovery (default 300)")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    runs = [one_run(args.give_up) for _ in range(args.runs)]
    recovered = [r for _, r in runs if r is not None]
    reported = [r for r, _ in runs if r is not None]
    recovery = (f"{mean(recovered):.1f} s (each {', '.join(f'{r:.1f}' for r in recovered)})" if recovered
                else "never")
    if len(recovered) < len(runs):
        recovery += f"; {len(runs) - len(recovered)} of {len(runs)} runs not within {args.give_up:.0f} s"
    summary: Summary = [
        ("leader kill -> survivor holds every shard", recovery),
        ("leader kill -> `consumer.health` unhealthy on the survivor",
         f"{mean(reported):.1f} s" if reported else "not reported"),
    ]
    for name, value in summary:
        sys.stdout.write(f"{name}: {value}\n")
    return summary


if __name__ == "__main__":
    main()
