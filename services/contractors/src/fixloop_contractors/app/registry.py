"""Use case: import contractor profiles (an upsert keyed by contractor id) and report on them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from fixloop_contractors.app.ports import (
    ContractorRegistry,
    CredentialAlertSchedule,
    UpsertCounts,
)
from fixloop_contractors.domain.model import Contractor, Credential

EXPIRY_WARNING_DAYS = 30


@dataclass(frozen=True, slots=True)
class CredentialAlert:
    contractor_id: str
    contractor_name: str
    credential: Credential
    days_left: int


@dataclass(frozen=True, slots=True)
class ImportReport:
    counts: UpsertCounts
    as_of: date
    warning_days: int
    expiring: tuple[CredentialAlert, ...]
    """Credentials valid on ``as_of`` that expire within ``warning_days``, soonest first."""
    expired: tuple[CredentialAlert, ...]
    """Credentials already expired on ``as_of``: these contractors get no offers until renewed."""
    alerts_armed: int = 0
    """Credential alerts armed by this import (new credentials, renewals; none for a re-import)."""


def credential_alerts(
    contractors: Sequence[Contractor], *, as_of: date, within_days: int = EXPIRY_WARNING_DAYS
) -> tuple[tuple[CredentialAlert, ...], tuple[CredentialAlert, ...]]:
    """(expiring within ``within_days``, already expired) as of ``as_of``, soonest first."""
    horizon = as_of + timedelta(days=within_days)
    expiring: list[CredentialAlert] = []
    expired: list[CredentialAlert] = []
    for contractor in contractors:
        for credential in contractor.credentials:
            alert = CredentialAlert(
                contractor_id=contractor.contractor_id,
                contractor_name=contractor.name,
                credential=credential,
                days_left=credential.days_left(as_of),
            )
            if not credential.is_valid_on(as_of):
                expired.append(alert)
            elif credential.expires_on <= horizon:
                expiring.append(alert)

    def order(alert: CredentialAlert) -> tuple[date, str, str]:
        return (alert.credential.expires_on, alert.contractor_id, alert.credential.number)

    return tuple(sorted(expiring, key=order)), tuple(sorted(expired, key=order))


async def import_contractors(
    registry: ContractorRegistry,
    contractors: Sequence[Contractor],
    *,
    as_of: date,
    warning_days: int = EXPIRY_WARNING_DAYS,
    alerts: CredentialAlertSchedule | None = None,
    now: datetime | None = None,
) -> ImportReport:
    """Upsert every profile (all or nothing) and report credentials that need attention.

    With ``alerts``, the credentials' expiry alerts are armed too, as of ``now`` (default: the
    current moment; ``as_of`` is only the day the report is judged on). That happens after the
    profiles are saved, in writes of its own: an import that stops between the two arms the
    alerts when it is run again (arming is idempotent).
    """
    counts = await registry.upsert(contractors)
    armed = 0
    if alerts is not None:
        armed = await alerts.arm_credential_alerts(contractors, now=now or datetime.now(UTC))
    expiring, expired = credential_alerts(contractors, as_of=as_of, within_days=warning_days)
    return ImportReport(
        counts=counts,
        as_of=as_of,
        warning_days=warning_days,
        expiring=expiring,
        expired=expired,
        alerts_armed=armed,
    )


__all__ = [
    "EXPIRY_WARNING_DAYS",
    "CredentialAlert",
    "ImportReport",
    "credential_alerts",
    "import_contractors",
]
