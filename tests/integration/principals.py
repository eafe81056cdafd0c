"""The gRPC principals an integration module's orders service is built with, and their keys."""

from __future__ import annotations

from collections.abc import Mapping

from fixloop_shared.grpc_edge.principals import PrincipalKind, PrincipalSpec, hash_api_key


def principals_of(
    prefix: str, *, tenant: str, other_tenant: str, contractors: Mapping[str, str]
) -> tuple[dict[str, str], list[PrincipalSpec]]:
    """Keys by role and the principals holding them: ``partner`` and ``operator`` of ``tenant``,
    ``other`` (a partner of ``other_tenant``), and one contractor app per ``contractors`` entry
    (role → contractor id)."""
    keys = {"partner": f"{prefix}-partner-key", "operator": f"{prefix}-operator-key"}
    keys["other"] = f"{prefix}-other-tenant-key"
    keys.update({role: f"{prefix}-contractor-{role}-key" for role in contractors})

    def spec(principal_id: str, role: str, kind: PrincipalKind, **binding: str) -> PrincipalSpec:
        hashes = [hash_api_key(keys[role])]
        return PrincipalSpec(id=f"{prefix}-{principal_id}", kind=kind, key_hashes=hashes, **binding)

    specs = [
        spec("erp", "partner", PrincipalKind.PARTNER, tenant=tenant),
        spec("desk", "operator", PrincipalKind.OPERATOR, tenant=tenant),
        spec("other", "other", PrincipalKind.PARTNER, tenant=other_tenant),
        *(
            spec(f"app-{role}", role, PrincipalKind.CONTRACTOR, contractor_id=contractor)
            for role, contractor in contractors.items()
        ),
    ]
    return keys, specs
