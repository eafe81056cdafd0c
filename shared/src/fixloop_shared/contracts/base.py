"""What every wire model is built on: strict, immutable, tolerant readers; closed at the edge.

A change that would break a consumer is a new model with a new ``.vN`` type, never an edit.

Internal events are read tolerantly: a field a reader does not know is ignored, so a producer can
add a field without a new version. Inbound events from external platforms are closed
(:class:`ClosedContract`): an unknown field anywhere in them is refused with its path, so a
misspelt optional field is a dead letter with a reason, never data silently dropped. Types are
strict everywhere (no coercion).
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict
from pydantic.config import ExtraValues
from pydantic.json_schema import DEFAULT_REF_TEMPLATE, GenerateJsonSchema, JsonSchemaMode


class Contract(BaseModel):
    """Base of every wire model: strict types, immutable, unknown fields ignored (tolerant reader).

    Inbound models close themselves with :class:`ClosedContract`.
    """

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


def _closed(schema: Any) -> Any:
    if isinstance(schema, dict):
        if schema.get("type") == "object" and "properties" in schema:
            schema["additionalProperties"] = False
        for value in schema.values():
            _closed(value)
    elif isinstance(schema, list):
        for value in schema:
            _closed(value)
    return schema


class ClosedContract(Contract):
    """A model validated at the edge: an unknown field at any depth is refused, with its path.

    Nested models are shared with internal events, which stay tolerant, so the model is closed
    when it is validated (pydantic's per-call ``extra="forbid"`` reaches every nested model)
    rather than by each nested model's configuration. Its JSON Schema says the same
    (``additionalProperties: false`` throughout).
    """

    @classmethod
    def model_validate_json(
        cls,
        json_data: str | bytes | bytearray,
        *,
        strict: bool | None = None,
        extra: ExtraValues | None = "forbid",
        context: Any | None = None,
        by_alias: bool | None = None,
        by_name: bool | None = None,
    ) -> Self:
        return super().model_validate_json(
            json_data,
            strict=strict,
            extra=extra,
            context=context,
            by_alias=by_alias,
            by_name=by_name,
        )

    @classmethod
    def model_validate(
        cls,
        obj: Any,
        *,
        strict: bool | None = None,
        extra: ExtraValues | None = "forbid",
        from_attributes: bool | None = None,
        context: Any | None = None,
        by_alias: bool | None = None,
        by_name: bool | None = None,
    ) -> Self:
        return super().model_validate(
            obj,
            strict=strict,
            extra=extra,
            from_attributes=from_attributes,
            context=context,
            by_alias=by_alias,
            by_name=by_name,
        )

    @classmethod
    def model_json_schema(
        cls,
        by_alias: bool | None = None,
        ref_template: str = DEFAULT_REF_TEMPLATE,
        schema_generator: type[GenerateJsonSchema] = GenerateJsonSchema,
        mode: JsonSchemaMode = "validation",
        **kwargs: Any,
    ) -> dict[str, Any]:
        schema = super().model_json_schema(
            by_alias=by_alias,
            ref_template=ref_template,
            schema_generator=schema_generator,
            mode=mode,
            **kwargs,
        )
        return dict(_closed(schema))


class EventPayload(Contract):
    """Base of every event payload; ``event_type`` is the CloudEvents ``type`` attribute."""

    event_type: ClassVar[str]
    summary: ClassVar[str]
    subject_field: ClassVar[str | None] = None
    """The payload field that is the CloudEvents ``subject`` when an event comes without one."""


__all__ = [
    "ClosedContract",
    "Contract",
    "EventPayload",
]
