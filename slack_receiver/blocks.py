"""Block Kit checks the Web API stand-in applies before storing a message (pure).

Not all of Block Kit: the structure and limits Slack enforces on the blocks CALI and its tests send
(https://api.slack.com/reference/block-kit/blocks), reported as Slack does, one string per problem ending
in ``[json-pointer:/blocks/...]``. Unknown block types are refused, as Slack refuses them.
"""

from __future__ import annotations

from collections.abc import Callable

MAX_BLOCKS = 50
MAX_BLOCK_ID = 255
MAX_SECTION_TEXT = 3000
MAX_FIELD_TEXT = 2000
MAX_FIELDS = 10
MAX_HEADER_TEXT = 150
MAX_CONTEXT_ELEMENTS = 10
MAX_MARKDOWN_TEXT = 12000
RICH_TEXT_ELEMENTS = frozenset({"rich_text_section", "rich_text_list", "rich_text_preformatted", "rich_text_quote"})

Problems = list[str]


def _problem(problems: Problems, message: str, pointer: str) -> None:
    problems.append(f"{message} [json-pointer:{pointer}]")


def _text_object(value: object, pointer: str, problems: Problems, limit: int, plain_only: bool = False) -> None:
    if not isinstance(value, dict):
        _problem(problems, "must be a text object", pointer)
        return
    kinds = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if value.get("type") not in kinds:
        _problem(problems, f"must be one of {', '.join(kinds)}", pointer + "/type")
    text = value.get("text")
    if not isinstance(text, str) or not text:
        _problem(problems, "must be more than 0 characters", pointer + "/text")
    elif len(text) > limit:
        _problem(problems, f"must be less than {limit + 1} characters", pointer + "/text")


def _section(block: dict[str, object], pointer: str, problems: Problems) -> None:
    text, fields = block.get("text"), block.get("fields")
    if text is None and fields is None:
        _problem(problems, "must provide text or fields", pointer)
    if text is not None:
        _text_object(text, pointer + "/text", problems, MAX_SECTION_TEXT)
    if fields is not None:
        if not isinstance(fields, list) or not fields or len(fields) > MAX_FIELDS:
            _problem(problems, f"must be a list of 1 to {MAX_FIELDS} text objects", pointer + "/fields")
        else:
            for i, item in enumerate(fields):
                _text_object(item, f"{pointer}/fields/{i}", problems, MAX_FIELD_TEXT)


def _header(block: dict[str, object], pointer: str, problems: Problems) -> None:
    _text_object(block.get("text"), pointer + "/text", problems, MAX_HEADER_TEXT, plain_only=True)


def _context(block: dict[str, object], pointer: str, problems: Problems) -> None:
    elements = block.get("elements")
    if not isinstance(elements, list) or not elements or len(elements) > MAX_CONTEXT_ELEMENTS:
        _problem(problems, f"must be a list of 1 to {MAX_CONTEXT_ELEMENTS} elements", pointer + "/elements")
        return
    for i, element in enumerate(elements):
        if isinstance(element, dict) and element.get("type") == "image":
            _image(element, f"{pointer}/elements/{i}", problems)
        else:
            _text_object(element, f"{pointer}/elements/{i}", problems, MAX_SECTION_TEXT)


def _image(block: dict[str, object], pointer: str, problems: Problems) -> None:
    url = block.get("image_url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        _problem(problems, "must be an http(s) URL", pointer + "/image_url")
    if not isinstance(block.get("alt_text"), str):
        _problem(problems, "must be a string", pointer + "/alt_text")


def _rich_text(block: dict[str, object], pointer: str, problems: Problems) -> None:
    elements = block.get("elements")
    if not isinstance(elements, list):
        _problem(problems, "must be a list", pointer + "/elements")
        return
    for i, element in enumerate(elements):
        if not isinstance(element, dict) or element.get("type") not in RICH_TEXT_ELEMENTS:
            _problem(problems, "must be a rich text element", f"{pointer}/elements/{i}")
        elif not isinstance(element.get("elements"), list):
            _problem(problems, "must be a list", f"{pointer}/elements/{i}/elements")


def _markdown(block: dict[str, object], pointer: str, problems: Problems) -> None:
    text = block.get("text")
    if not isinstance(text, str) or not text or len(text) > MAX_MARKDOWN_TEXT:
        _problem(problems, f"must be 1 to {MAX_MARKDOWN_TEXT} characters", pointer + "/text")


def _any(block: dict[str, object], pointer: str, problems: Problems) -> None:
    """Types the stand-in stores without checking their insides (CALI sends none of them)."""


CHECKS: dict[str, Callable[[dict[str, object], str, Problems], None]] = {
    "section": _section, "header": _header, "context": _context, "divider": _any, "image": _image,
    "rich_text": _rich_text, "markdown": _markdown, "actions": _any, "input": _any, "file": _any, "video": _any,
}


def block_problems(blocks: object) -> Problems:
    """Every problem with ``blocks`` (a list already); [] when Slack would take them."""
    problems: Problems = []
    if not isinstance(blocks, list):
        _problem(problems, "must be a list", "/blocks")
        return problems
    if len(blocks) > MAX_BLOCKS:
        _problem(problems, f"no more than {MAX_BLOCKS} items allowed", "/blocks")
    for i, block in enumerate(blocks):
        pointer = f"/blocks/{i}"
        if not isinstance(block, dict):
            _problem(problems, "must be an object", pointer)
            continue
        block_id = block.get("block_id")
        if block_id is not None and (not isinstance(block_id, str) or len(block_id) > MAX_BLOCK_ID):
            _problem(problems, f"must be a string of at most {MAX_BLOCK_ID} characters", pointer + "/block_id")
        check = CHECKS.get(str(block.get("type")))
        if check is None:
            _problem(problems, "unsupported type", pointer + "/type")
        else:
            check(block, pointer, problems)
    return problems
