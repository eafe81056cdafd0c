"""Operators' files (contractor registries, SLA policies, stock lists) read strictly.

YAML through the safe loader, or JSON; either way a key repeated in one mapping is an error, not
a silent overwrite, and an impossible date (``2027-02-30``) stays text so that validation reports
it with its location. Without ``aliases`` a YAML alias (``*name``) is refused: a file then cannot
expand to more than it says (no "billion laughs").
"""

from __future__ import annotations

import json
from collections.abc import Hashable
from typing import Any, Literal

import yaml

DocumentFormat = Literal["yaml", "json"]


class DocumentSyntaxError(ValueError):
    """Text that is not a document of its format; the message is one line, with where."""


_FastLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictYamlLoader(_FastLoader):  # type: ignore[valid-type, misc]
    """YAML's safe loader without duplicate keys."""


class _StrictYamlLoaderWithoutAliases(yaml.SafeLoader):
    """YAML's safe loader without duplicate keys and without aliases."""

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed; write the value out", event.start_mark
            )
        return super().compose_node(parent, index)


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Hashable] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, Hashable):
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
    return loader.construct_mapping(node, deep=True)


def _construct_timestamp(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> object:
    try:
        return loader.construct_yaml_timestamp(node)
    except ValueError:
        return loader.construct_scalar(node)


for _loader in (_StrictYamlLoader, _StrictYamlLoaderWithoutAliases):
    _loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
    _loader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            msg = f"duplicate key {key!r}"
            raise ValueError(msg)
        result[key] = value
    return result


def _one_line(text: str, limit: int = 400) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def load_document(text: str, fmt: DocumentFormat, *, aliases: bool = True) -> object:
    """The document in ``text``; :class:`DocumentSyntaxError` if it is not one (see module)."""
    if fmt == "json":
        try:
            return json.loads(text, object_pairs_hook=_reject_duplicate_keys)
        except json.JSONDecodeError as exc:
            msg = f"not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
            raise DocumentSyntaxError(msg) from None
        except (ValueError, RecursionError) as exc:  # a duplicate key, or too deep
            msg = _one_line(f"not valid JSON: {str(exc) or 'nested too deeply'}")
            raise DocumentSyntaxError(msg) from None
    loader = _StrictYamlLoader if aliases else _StrictYamlLoaderWithoutAliases
    try:
        return yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise DocumentSyntaxError(
            _one_line(f"not valid YAML{where}: {exc.problem or exc}")
        ) from None
    except (yaml.YAMLError, ValueError, TypeError, RecursionError) as exc:
        msg = _one_line(f"not valid YAML: {str(exc) or 'nested too deeply'}")
        raise DocumentSyntaxError(msg) from None


__all__ = ["DocumentFormat", "DocumentSyntaxError", "load_document"]
