"""Generate the published event contract into ``docs/contracts/``.

- one JSON Schema per event type (``<type>.schema.json``), generated from the pydantic models;
- the CloudEvents envelope attributes (``cloudevents-attributes.schema.json``);
- an AsyncAPI 3 document of every topic and its messages, generated from the FastStream
  subscribers and publishers of the services (:mod:`fixloop_shared.asyncapi`).

``python -m fixloop_shared.schemas`` writes them; ``--check`` fails if committed files are stale.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import yaml
from faststream.kafka import KafkaBroker

from fixloop_shared.asyncapi import asyncapi_document as build_asyncapi
from fixloop_shared.contracts import EVENT_TYPES
from fixloop_shared.envelope import CloudEventAttributes

SERVICE_APPS_GROUP = "fixloop.services"
"""Entry points naming each service's ``create_app``; each service's package registers one."""


def event_schemas() -> dict[str, dict[str, Any]]:
    files: dict[str, dict[str, Any]] = {}
    for event_type, model in sorted(EVENT_TYPES.items()):
        schema = model.model_json_schema(mode="validation")
        schema["$id"] = f"https://fixloop.dev/contracts/{event_type}.schema.json"
        schema["title"] = event_type
        schema["description"] = model.summary + ". " + (model.__doc__ or "").strip()
        files[f"{event_type}.schema.json"] = schema
    envelope = CloudEventAttributes.model_json_schema()
    envelope["title"] = "Fixloop CloudEvents attributes"
    files["cloudevents-attributes.schema.json"] = envelope
    return files


def service_brokers() -> dict[str, KafkaBroker]:
    """The broker of each installed service, as its ``create_app()`` builds it (nothing connects
    at build time), with its subscribers and its declared publishers."""
    brokers: dict[str, KafkaBroker] = {}
    with _logging_left_alone():
        for entry in sorted(entry_points(group=SERVICE_APPS_GROUP), key=lambda e: e.name):
            app = entry.load()()
            brokers[entry.name] = app.broker
    if not brokers:
        msg = f"no service registers a {SERVICE_APPS_GROUP!r} entry point: run `make sync`"
        raise RuntimeError(msg)
    return brokers


@contextlib.contextmanager
def _logging_left_alone() -> Iterator[None]:
    """Building a service sets up its logging; the generator's caller keeps its own."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def asyncapi_document() -> str:
    document = build_asyncapi(
        service_brokers(),
        title="Fixloop events",
        version="1.0.0",
        description=(
            "Every event is a CloudEvents 1.0 event in binary mode (ce_* headers, JSON payload). "
            "Generated from the subscribers and publishers the services run. JSON Schemas of "
            "each payload are beside this file."
        ),
    )
    return str(yaml.safe_dump(document, sort_keys=True, allow_unicode=True, width=100))


def render() -> dict[str, str]:
    files = {
        name: json.dumps(schema, indent=2, sort_keys=True) + "\n"
        for name, schema in event_schemas().items()
    }
    files["asyncapi.yaml"] = asyncapi_document()
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs/contracts"))
    parser.add_argument("--check", action="store_true", help="fail if committed files are stale")
    args = parser.parse_args()
    files = render()
    out: Path = args.out
    if args.check:
        stale = [n for n, text in files.items() if _read(out / n) != text]
        extra = sorted(p.name for p in out.glob("*") if p.name not in files) if out.exists() else []
        if stale or extra:
            for name in stale:
                sys.stderr.write(f"stale: {out / name}\n")
            for name in extra:
                sys.stderr.write(f"not generated: {out / name}\n")
            sys.stderr.write("run `make schemas` and commit the result\n")
            sys.exit(1)
        return
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / name).write_text(text)
    sys.stdout.write(f"wrote {len(files)} files to {out}\n")


def _read(path: Path) -> str | None:
    return path.read_text() if path.exists() else None


if __name__ == "__main__":
    main()
