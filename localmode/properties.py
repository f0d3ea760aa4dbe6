"""Fill the ``${NAME}`` placeholders of properties/cali.properties. Pure."""

from __future__ import annotations

import re
from collections.abc import Mapping

_PLACEHOLDER = re.compile(r"\$\{([A-Z0-9_]+)\}")


class MissingValue(KeyError):
    pass


def _is_comment(line: str) -> bool:
    return line.lstrip().startswith(("#", "!"))


def placeholders(template: str) -> set[str]:
    return {name for line in template.splitlines() if not _is_comment(line) for name in _PLACEHOLDER.findall(line)}


def render(template: str, values: Mapping[str, str]) -> str:
    """Substitute every placeholder; a property whose value ends up empty is left out (e.g. no endpoint on AWS)."""
    missing = placeholders(template) - set(values)
    if missing:
        raise MissingValue(f"no value for {', '.join(sorted(missing))}")
    lines = []
    for line in template.splitlines():
        if _is_comment(line):
            lines.append(line)
            continue
        filled = _PLACEHOLDER.sub(lambda m: values[m.group(1)], line)
        _, sep, value = filled.partition("=")
        if sep and not value.strip():
            continue
        lines.append(filled)
    return "\n".join(lines) + "\n"
