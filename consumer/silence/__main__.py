"""``python -m consumer.silence``: add, list and expire silences (shared by every processor within seconds).

    python -m consumer.silence add --match service=payment-api --match 'message~db timeout' --for 2h --reason "..."
    python -m consumer.silence list
    python -m consumer.silence expire ID

Matchers are the routes' (``service=GLOB``, ``level=LEVEL``, ``message~REGEX``); every one given must hold. The
author is ``CALI_OPERATOR``, else ``USER``. Errors are one line on stderr (exit 2: usage or configuration, 1: the
silence or the table was not found).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import IO, NoReturn

from botocore.exceptions import BotoCoreError, ClientError

from consumer import aws
from consumer.config import Settings, load_settings
from consumer.errors import ConfigError
from consumer.pipeline.match import MatchError, parse_matchers
from consumer.silence import Silence, parse_duration
from consumer.silence.store import SilenceNotFound, SilenceStore

PROG = "python -m consumer.silence"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def state_of(silence: Silence, now: float) -> str:
    return "active" if silence.active(now) else "expired"


def _table(rows: Sequence[Sequence[str]], out: IO[str]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() + "\n")


def show(silences: list[Silence], now: float, out: IO[str]) -> None:
    states = [state_of(s, now) for s in silences]
    header = ("id", "state", "silenced", "matchers", "ends", "author", "reason")
    rows = [header] + [(s.id, state, str(s.silenced), " ".join(s.matchers), _when(s.ends_at),
                        s.author + (f" (expired by {s.expired_by})" if s.expired_by else ""), s.reason)
                       for s, state in sorted(zip(silences, states, strict=True),
                                              key=lambda x: (x[1] != "active", -x[0].ends_at))]
    _table(rows, out)
    how_many, events = Counter(states), Counter[str]()
    for silence, state in zip(silences, states, strict=True):
        events[state] += silence.silenced
    out.write(f"{how_many['active']} active ({events['active']} events silenced), {how_many['expired']} expired "
              f"({events['expired']} events silenced)\n")


def _store(settings: Settings) -> SilenceStore:
    return SilenceStore(aws.client(settings, "dynamodb"), settings.silences_table)


def run(args: argparse.Namespace, settings: Settings, out: IO[str]) -> None:
    store = _store(settings)
    now = time.time()
    if args.command == "add":
        parse_matchers(args.match)  # check before writing
        seconds = parse_duration(args.duration)
        silence = store.add(args.match, now, now + seconds, args.author or settings.operator, args.reason)
        out.write(f"silence {silence.id} added: {' '.join(silence.matchers)} until {_when(silence.ends_at)} "
                  f"(by {silence.author}: {silence.reason})\n")
    elif args.command == "list":
        silences = store.all()
        if args.json:
            for s in silences:
                out.write(json.dumps({**asdict(s), "state": state_of(s, now)}) + "\n")
        else:
            show(silences, now, out)
    else:
        silence = store.expire(args.id, args.author or settings.operator, now)
        out.write(f"silence {silence.id} expired ({silence.silenced} events silenced); the next occurrence "
                  "alerts as new\n")


def main(argv: list[str] | None = None) -> None:
    parser = _Parser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    add = sub.add_parser("add", help="silence matching events for a while")
    add.add_argument("--match", action="append", required=True, metavar="MATCHER",
                     help="service=GLOB, level=LEVEL or message~REGEX (repeat: all must hold)")
    add.add_argument("--for", dest="duration", required=True, metavar="DURATION", help="e.g. 30m, 2h, 1d, 1h30m")
    add.add_argument("--reason", required=True, help="why (shown in list and on the local Slack page)")
    add.add_argument("--author", help="default: CALI_OPERATOR, else USER")
    listing = sub.add_parser("list", help="active and expired silences with their counts")
    listing.add_argument("--json", action="store_true", help="one JSON object per silence")
    expire = sub.add_parser("expire", help="end a silence now")
    expire.add_argument("id")
    expire.add_argument("--author", help="who ends it (default: CALI_OPERATOR, else USER)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        parser.exit(2, f"{PROG}: {exc}\n")
    try:
        run(args, settings, sys.stdout)
    except MatchError as exc:
        parser.exit(2, f"{PROG}: {exc}\n")
    except SilenceNotFound as exc:
        parser.exit(1, f"{PROG}: no active silence {exc.args[0]!r} (see list)\n")
    except (BotoCoreError, ClientError) as exc:
        parser.exit(1, f"{PROG}: {_aws_problem(exc, settings)}\n")


def _aws_problem(exc: BotoCoreError | ClientError, settings: Settings) -> str:
    code = exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else None
    if code == "ResourceNotFoundException":
        return (f"table {settings.silences_table} not found at {settings.endpoint_url or 'AWS'} (local mode creates "
                "it; compose and AWS: terraform apply)")
    return aws.explain(exc, settings)


if __name__ == "__main__":
    main()
