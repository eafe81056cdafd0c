"""Which source platform may submit work orders for which tenant."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class SourceBindings:
    """Source platform -> the tenants it may submit work orders for. Nothing else is allowed.

    A platform publishing to the inbound topic names the tenant in the event itself, so without
    this binding any platform could create work orders in any tenant.
    """

    tenants_by_source: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, bindings: Mapping[str, Iterable[str]]) -> SourceBindings:
        return cls({source: frozenset(tenants) for source, tenants in bindings.items()})

    def allows(self, source: str, tenant: str) -> bool:
        return tenant in self.tenants_by_source.get(source, frozenset())

    @property
    def is_empty(self) -> bool:
        return not any(self.tenants_by_source.values())


__all__ = ["SourceBindings"]
