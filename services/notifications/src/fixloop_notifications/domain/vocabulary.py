"""The words notifications use for the platform's enumerations, as gettext message ids.

Each label is an English message id marked with :func:`N_` so Babel extracts it into the
catalog; the template catalog translates it when it renders (``{{ priority|label("priority")
}}``). A value without a label (a credential kind Fixloop does not know, say) is shown as given.
"""

from __future__ import annotations

from collections.abc import Mapping


def N_(message: str) -> str:  # noqa: N802 - the gettext convention
    """Mark ``message`` for extraction without translating it now."""
    return message


PRIORITY: Mapping[str, str] = {
    "emergency": N_("Emergency"),
    "high": N_("High"),
    "normal": N_("Normal"),
    "low": N_("Low"),
}

CATEGORY: Mapping[str, str] = {
    "breakdown": N_("Breakdown"),
    "preventive": N_("Preventive maintenance"),
    "inspection": N_("Inspection"),
    "installation": N_("Installation"),
    "safety": N_("Safety"),
}

DELAY_CAUSE: Mapping[str, str] = {
    "manpower": N_("No technician available"),
    "parts": N_("Parts not available"),
    "technical": N_("Technical difficulties"),
    "access": N_("No access to the site"),
    "other": N_("Other reasons"),
}

_DISPATCH = N_("Contractor assignment")
_PARTS = N_("Parts delivery")
_PROGRESS = N_("Progress update")

MILESTONE: Mapping[str, str] = {
    "dispatch_confirmation": _DISPATCH,
    "dispatch": _DISPATCH,
    "arrival": N_("Technician arrival"),
    "parts_fulfilment": _PARTS,
    "parts": _PARTS,
    "repair": N_("Repair completion"),
    "progress_update": _PROGRESS,
    "progress": _PROGRESS,
    "exception_response": N_("Response to a reported problem"),
    "exception_action": N_("Action on a reported problem"),
    "requester_question": N_("Reply to a question from the requester"),
}
"""Milestones by their :class:`~fixloop_shared.vocabulary.Milestone` value, and by short name."""

REMEDY: Mapping[str, str] = {
    "service_discount": N_("Service discount"),
    "extended_warranty": N_("Extended warranty"),
}

CREDENTIAL_KIND: Mapping[str, str] = {
    "licence": N_("Licence"),
    "license": N_("Licence"),
    "insurance": N_("Insurance"),
    "liability_insurance": N_("Liability insurance"),
    "certification": N_("Certification"),
    "certificate": N_("Certification"),
    "permit": N_("Permit"),
    "registration": N_("Trade registration"),
    "training": N_("Safety training"),
}

LABELS: Mapping[str, Mapping[str, str]] = {
    "priority": PRIORITY,
    "category": CATEGORY,
    "delay_cause": DELAY_CAUSE,
    "milestone": MILESTONE,
    "remedy": REMEDY,
    "credential_kind": CREDENTIAL_KIND,
}
"""Every labelled enumeration by name."""


def label_id(kind: str, value: str) -> str | None:
    """The message id labelling ``value`` of the enumeration ``kind``, or ``None`` if it has
    none (then the value is shown as given). Raises :class:`KeyError` for an unknown ``kind``."""
    return LABELS[kind].get(str(value).strip().lower())


def all_label_ids() -> frozenset[str]:
    """Every message id declared here."""
    return frozenset(msgid for labels in LABELS.values() for msgid in labels.values())


__all__ = [
    "CATEGORY",
    "CREDENTIAL_KIND",
    "DELAY_CAUSE",
    "LABELS",
    "MILESTONE",
    "N_",
    "PRIORITY",
    "REMEDY",
    "all_label_ids",
    "label_id",
]
