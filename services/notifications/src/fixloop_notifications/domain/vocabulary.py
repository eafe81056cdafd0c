"""The words for the platform's enumerations in each language notifications are written in."""

from __future__ import annotations

from collections.abc import Mapping

from fixloop_notifications.domain.locales import language_of
from fixloop_shared.vocabulary import Category, Priority

PRIORITY_LABELS: Mapping[str, Mapping[Priority, str]] = {
    "en": {
        Priority.EMERGENCY: "Emergency",
        Priority.HIGH: "High",
        Priority.NORMAL: "Normal",
        Priority.LOW: "Low",
    },
    "de": {
        Priority.EMERGENCY: "Notfall",
        Priority.HIGH: "Hoch",
        Priority.NORMAL: "Normal",
        Priority.LOW: "Niedrig",
    },
    "fr": {
        Priority.EMERGENCY: "Urgence",
        Priority.HIGH: "Haute",
        Priority.NORMAL: "Normale",
        Priority.LOW: "Basse",
    },
}

CATEGORY_LABELS: Mapping[str, Mapping[Category, str]] = {
    "en": {
        Category.BREAKDOWN: "Breakdown",
        Category.PREVENTIVE: "Preventive maintenance",
        Category.INSPECTION: "Inspection",
        Category.INSTALLATION: "Installation",
        Category.SAFETY: "Safety",
    },
    "de": {
        Category.BREAKDOWN: "Störung",
        Category.PREVENTIVE: "Vorbeugende Wartung",
        Category.INSPECTION: "Inspektion",
        Category.INSTALLATION: "Installation",
        Category.SAFETY: "Sicherheit",
    },
    "fr": {
        Category.BREAKDOWN: "Panne",
        Category.PREVENTIVE: "Maintenance préventive",
        Category.INSPECTION: "Inspection",
        Category.INSTALLATION: "Installation",
        Category.SAFETY: "Sécurité",
    },
}


def priority_label(priority: Priority, locale: str) -> str:
    labels = PRIORITY_LABELS.get(language_of(locale), PRIORITY_LABELS["en"])
    return labels[priority]


def category_label(category: Category, locale: str) -> str:
    labels = CATEGORY_LABELS.get(language_of(locale), CATEGORY_LABELS["en"])
    return labels[category]
