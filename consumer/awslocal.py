"""``scripts/awslocal <service> <operation> [--param value ...]``: one AWS API call against the configured endpoint.

The same command lines as the ``aws`` CLI for what the README shows (``dynamodb scan --table-name cali-consumer``,
``kinesis describe-stream-summary --stream-name cali-log-stream``), but region, endpoint and keys come from ``.env``
and the environment through consumer/config.py, as for every other part of CALI: nothing to export, and it talks
to local mode and to compose's LocalStack alike (both at ``AWS_ENDPOINT_URL``). Parameters are checked against
botocore's model of the operation; structures, lists and maps are given as JSON, as with ``aws``. The answer is
printed as JSON (binary data base64-encoded, times in ISO 8601).
"""

from __future__ import annotations

import base64
import json
import sys
from datetime import datetime
from typing import Any

from botocore import xform_name
from botocore.exceptions import ParamValidationError
from botocore.model import OperationModel, Shape

from consumer import aws

USAGE = ("usage: scripts/awslocal <service> <operation> [--parameter value ...]   "
         "e.g. scripts/awslocal dynamodb scan --table-name cali-consumer")


class UsageError(Exception):
    pass


def _value(shape: Shape, raw: str, flag: str) -> Any:
    kind = shape.type_name
    if kind in ("structure", "list", "map"):
        try:
            return json.loads(raw)
        except ValueError:
            raise UsageError(f"{flag} takes JSON, got {raw!r}") from None
    if kind in ("integer", "long"):
        try:
            return int(raw)
        except ValueError:
            raise UsageError(f"{flag} takes a whole number, got {raw!r}") from None
    if kind in ("double", "float"):
        return float(raw)
    if kind == "blob":
        return raw.encode()
    return raw


def parameters(operation: OperationModel, argv: list[str]) -> dict[str, Any]:
    """``--table-name X --consistent-read`` -> ``{"TableName": "X", "ConsistentRead": True}`` per the model."""
    members = operation.input_shape.members if operation.input_shape else {}
    by_flag = {"--" + xform_name(name, "-"): name for name in members}
    params: dict[str, Any] = {}
    args = list(argv)
    while args:
        flag = args.pop(0)
        negated = flag.startswith("--no-")
        name = by_flag.get("--" + flag.removeprefix("--no-") if negated else flag)
        if name is None:
            raise UsageError(f"{operation.name} has no parameter {flag} (it takes {', '.join(sorted(by_flag))})")
        shape = members[name]
        if shape.type_name == "boolean":
            params[name] = not negated
            continue
        if not args:
            raise UsageError(f"{flag} needs a value")
        params[name] = _value(shape, args.pop(0), flag)
    return params


def _json(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2 or args[0] in ("-h", "--help"):
        sys.stderr.write(USAGE + "\n")
        raise SystemExit(0 if args[:1] in (["-h"], ["--help"]) else 2)
    settings = aws.cli_settings()
    service, operation_name, rest = args[0], args[1], args[2:]
    with aws.one_line_errors(settings):
        try:
            client = aws.client(settings, service)
        except Exception:  # botocore's UnknownServiceError lists every service: say it shorter
            sys.stderr.write(f"cali: {service!r} is not an AWS service name (e.g. dynamodb, kinesis)\n")
            raise SystemExit(2) from None
        model = client.meta.service_model
        names = {xform_name(name, "-"): name for name in model.operation_names}
        if operation_name not in names:
            sys.stderr.write(f"cali: {service} has no operation {operation_name!r}\n")
            raise SystemExit(2)
        operation = model.operation_model(names[operation_name])
        try:
            params = parameters(operation, rest)
            answer = getattr(client, xform_name(operation.name))(**params)
        except (UsageError, ParamValidationError) as exc:
            sys.stderr.write(f"cali: {' '.join(str(exc).split())}\n")
            raise SystemExit(2) from None
    answer.pop("ResponseMetadata", None)
    sys.stdout.write(json.dumps(answer, indent=4, default=_json, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
