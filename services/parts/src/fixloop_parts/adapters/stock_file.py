"""Reading a stock file (YAML or JSON) into a validated :class:`StockCountFile`.

Everything in the file is untrusted: its size is bounded, it must be UTF-8, keys may not repeat,
YAML aliases are refused, and the content is validated by the strict model. Every problem is
reported with its location (``stock[3].quantity``) and, where known, its line number.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from fixloop_parts.app.stock_count import Location, Problem, StockCountFile

MAX_FILE_BYTES = 32 * 1024 * 1024
YAML_SUFFIXES = frozenset({".yaml", ".yml"})
JSON_SUFFIXES = frozenset({".json"})


@dataclass(frozen=True)
class FileProblem:
    """A problem in the file, with its line number (1-based) when it can be located."""

    line: int | None
    location: Location
    message: str


class StockFileInvalid(Exception):  # noqa: N818 - the outcome, not a failure of the program
    def __init__(self, problems: Sequence[FileProblem]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the stock file")
        self.problems = list(problems)


def format_location(location: Location) -> str:
    """``("stock", 3, "quantity")`` -> ``stock[3].quantity``; the whole file is ``(file)``."""
    text = ""
    for step in location:
        if isinstance(step, int):
            text += f"[{step}]"
        else:
            text += f".{step}" if text else step
    return text or "(file)"


class _StrictYamlLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases (no shared or exponentially expanding structures)."""

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in a stock file", event.start_mark
            )
        return super().compose_node(parent, index)


def _duplicate_keys(root: Node) -> list[FileProblem]:
    problems: list[FileProblem] = []
    stack: list[tuple[Node, Location]] = [(root, ())]
    while stack:
        node, location = stack.pop()
        if isinstance(node, MappingNode):
            seen: set[str] = set()
            for key, value in node.value:
                name = key.value if isinstance(key, ScalarNode) else None
                if name is not None and name in seen:
                    problems.append(
                        FileProblem(
                            key.start_mark.line + 1,
                            (*location, name),
                            f"key {name!r} appears more than once",
                        )
                    )
                if name is not None:
                    seen.add(name)
                stack.append((value, (*location, name if name is not None else "?")))
        elif isinstance(node, SequenceNode):
            stack.extend((item, (*location, index)) for index, item in enumerate(node.value))
    return sorted(problems, key=lambda p: p.line or 0)


def _compose(text: str) -> Node | None:
    loader = _StrictYamlLoader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def _line_of(root: Node | None, location: Location) -> int | None:
    """The line of the deepest node on ``location`` that exists in the file."""
    if root is None:
        return None
    node = root
    for step in location:
        child: Node | None = None
        if isinstance(node, MappingNode) and isinstance(step, str):
            child = next(
                (v for k, v in node.value if isinstance(k, ScalarNode) and k.value == step), None
            )
        elif isinstance(node, SequenceNode) and isinstance(step, int) and step < len(node.value):
            child = node.value[step]
        if child is None:
            break
        node = child
    return int(node.start_mark.line) + 1


@dataclass(frozen=True)
class StockFile:
    path: Path
    count: StockCountFile
    root: Node | None

    def line_of(self, location: Location) -> int | None:
        return _line_of(self.root, location)

    def locate(self, problems: Sequence[Problem]) -> list[FileProblem]:
        return [FileProblem(self.line_of(p.location), p.location, p.message) for p in problems]


def _fail(message: str, line: int | None = None) -> StockFileInvalid:
    return StockFileInvalid([FileProblem(line, (), message)])


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            msg = f"key {key!r} appears more than once"
            raise ValueError(msg)
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    msg = f"{name} is not a number a stock file may contain"
    raise ValueError(msg)


def _parse_json(text: str) -> tuple[Any, Node | None]:
    try:
        data = json.loads(
            text, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant
        )
    except json.JSONDecodeError as exc:
        raise _fail(f"not valid JSON: {exc.msg} (column {exc.colno})", exc.lineno) from None
    except (ValueError, RecursionError) as exc:
        raise _fail(f"not a valid stock file: {exc}") from None
    try:
        root = _compose(text)  # JSON is YAML: the node tree gives line numbers
    except (yaml.YAMLError, RecursionError):
        root = None
    return data, root


def _parse_yaml(text: str) -> tuple[Any, Node | None]:
    loader = _StrictYamlLoader(text)
    try:
        root = loader.get_single_node()
        if root is not None:
            duplicates = _duplicate_keys(root)
            if duplicates:
                raise StockFileInvalid(duplicates)
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        raise _fail(f"not valid YAML: {problem}", mark.line + 1 if mark else None) from None
    except (yaml.YAMLError, RecursionError) as exc:
        raise _fail(f"not valid YAML: {type(exc).__name__}") from None
    finally:
        loader.dispose()
    return data, root


def read_stock_file(path: Path) -> StockFile:
    """Read and validate a stock file; raises :class:`StockFileInvalid` listing every problem."""
    suffix = path.suffix.lower()
    if suffix not in YAML_SUFFIXES | JSON_SUFFIXES:
        msg = f"unsupported file type {path.suffix or '(none)'!r}: use .yaml, .yml or .json"
        raise _fail(msg)
    try:
        if not path.is_file():
            raise _fail("no such file")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise _fail(f"the file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise _fail(f"cannot read the file: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise _fail(f"the file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _fail(f"not UTF-8 text (byte {exc.start})") from None
    data, root = _parse_json(text) if suffix in JSON_SUFFIXES else _parse_yaml(text)
    if data is None:
        raise _fail("the file is empty")
    try:
        count = StockCountFile.model_validate(data)
    except ValidationError as exc:
        problems = [
            FileProblem(
                _line_of(root, tuple(error["loc"])),
                tuple(error["loc"]),
                error["msg"],
            )
            for error in exc.errors(include_url=False, include_input=False)
        ]
        raise StockFileInvalid(problems) from None
    return StockFile(path=path, count=count, root=root)
