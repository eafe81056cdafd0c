"""The SLA policy file: canonical round trips, the example file, iCalendar holidays, and one-line
errors for every kind of mistake (hostile input included)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import date, time, timedelta
from pathlib import Path
from typing import Any

import pytest

from fixloop_shared.vocabulary import Milestone
from fixloop_sla.domain.calendar import Holiday, SpecialWorkingDay, WorkingHours
from fixloop_sla.domain.policy import PauseReason, ReopenRule, ThresholdKind
from fixloop_sla.domain.standard import standard_policy
from fixloop_sla.policy_file import (
    MAX_FILE_BYTES,
    InvalidPolicyFile,
    format_duration,
    load_policy_file,
    parse_duration,
    parse_policy,
    policy_document,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "sla-policy.yaml"

Doc = dict[str, Any]

ICS = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Fixloop tests//EN
BEGIN:VEVENT
UID:christmas@test
DTSTART;VALUE=DATE:20261225
SUMMARY:Christmas Day
END:VEVENT
BEGIN:VEVENT
UID:eve@test
DTSTART:20261224T120000
DTEND:20261224T180000
SUMMARY:Christmas Eve afternoon
END:VEVENT
END:VCALENDAR
"""


def minimal() -> Doc:
    return {"name": "acme", "clocks": [{"clock": "repair", "goals": [{"target": "4h"}]}]}


def standard_doc() -> Doc:
    return copy.deepcopy(policy_document(standard_policy()))


def rich_doc() -> Doc:
    """A policy using every field of the format."""
    return {
        "name": "acme-emea",
        "timezone": "Europe/Berlin",
        "allowed_lateness": "2h",
        "calendars": [
            {
                "name": "office",
                "hours": [
                    {"days": ["mon", "wed"], "from": "07:30", "to": "12:00"},
                    {"days": "weekdays", "from": "13:00", "to": "17:30:15"},
                    {"days": "sat", "from": "22:00", "to": "06:00"},
                    {"days": "sun", "from": "20:00", "to": "24:00"},
                ],
                "holidays": [
                    {"date": "2026-12-25", "name": "Christmas Day"},
                    {"date": "2026-12-24", "from": "12:00", "name": "Christmas Eve"},
                    {"date": "2026-12-31", "to": "10:00"},
                ],
                "special_days": [{"date": "2026-12-19", "from": "09:00", "to": "13:00"}],
                "version": "2026.1",
            },
            {"name": "always", "always_open": True},
        ],
        "clocks": [
            {
                "clock": "arrival",
                "warning_before": "45m",
                "escalations": [
                    {"after": "0s", "audience": "operator"},
                    {"after": "1h30m", "audience": "account_manager"},
                    {"after": "3d", "audience": "tenant-director"},
                ],
                "pause_when": ["customer_wait", "awaiting_parts"],
                "on_reopen": "resume",
                "goals": [
                    {
                        "tenant": ["acme", "acme-uk"],
                        "priority": ["high", "emergency"],
                        "category": "safety",
                        "target": "1h30m",
                        "warning_before": "15m",
                    },
                    {"equipment_class": ["hvac", "cold_room"], "target": None},
                    {"priority": "low", "target": "20h", "calendar": "office"},
                    {"target": "6h", "calendar": "always"},
                ],
            },
            {"clock": "requester_question", "on_reopen": "ignore", "goals": [{"target": "45s"}]},
        ],
    }


def invalid(document: object, *, version: int = 1, base_dir: Path | None = None) -> str:
    with pytest.raises(InvalidPolicyFile) as caught:
        parse_policy(document, version=version, base_dir=base_dir)  # type: ignore[arg-type]
    message = str(caught.value)
    assert "\n" not in message
    return message


def invalid_file(path: Path) -> str:
    with pytest.raises(InvalidPolicyFile) as caught:
        load_policy_file(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    return message[len(f"{path}: ") :]


# -- round trips and the example ----------------------------------------------------------------


@pytest.mark.parametrize("version", [1, 7])
def test_the_standard_policy_survives_its_canonical_document(version: int) -> None:
    policy = standard_policy(version)
    document = policy_document(policy)
    assert parse_policy(document, version=policy.version) == policy
    assert json.loads(json.dumps(document)) == document  # JSON-able as it is
    assert "version" not in document


def test_the_example_file_is_exactly_the_standard_policy() -> None:
    document, policy = load_policy_file(EXAMPLE)
    assert policy == standard_policy()
    assert document == policy_document(standard_policy())
    assert "fixloop sla policy import examples/sla-policy.yaml" in EXAMPLE.read_text()


def test_every_field_reaches_the_domain_and_survives_the_round_trip() -> None:
    policy = parse_policy(rich_doc(), version=4)
    assert policy.version == 4
    assert policy.timezone == "Europe/Berlin"
    assert policy.allowed_lateness == timedelta(hours=2)
    office = policy.calendar("office")
    assert office.hours[:2] == (
        WorkingHours(0, time(7, 30), time(12)),
        WorkingHours(2, time(7, 30), time(12)),
    )
    assert WorkingHours(5, time(22), time(6)) in office.hours
    assert WorkingHours(6, time(20), time(0)) in office.hours
    assert WorkingHours(4, time(13), time(17, 30, 15)) in office.hours
    assert office.holidays == (
        Holiday(date(2026, 12, 25), name="Christmas Day"),
        Holiday(date(2026, 12, 24), start=time(12), name="Christmas Eve"),
        Holiday(date(2026, 12, 31), end=time(10)),
    )
    assert office.special_days == (SpecialWorkingDay(date(2026, 12, 19), time(9), time(13)),)
    assert office.version == "2026.1"
    assert policy.calendar("always").always_open
    arrival = policy.definition(Milestone.ARRIVAL)
    assert arrival is not None
    assert arrival.pause_when == {PauseReason.CUSTOMER_WAIT, PauseReason.AWAITING_PARTS}
    assert arrival.on_reopen is ReopenRule.RESUME
    assert arrival.warning is not None
    assert arrival.warning.offset == -timedelta(minutes=45)
    assert [(t.level, t.offset, t.audience) for t in arrival.escalations] == [
        (1, timedelta(0), "operator"),
        (2, timedelta(minutes=90), "account_manager"),
        (3, timedelta(days=3), "tenant-director"),
    ]
    assert all(t.kind is ThresholdKind.ESCALATION for t in arrival.escalations)
    first = arrival.goals[0]
    assert first.match.tenants == {"acme", "acme-uk"}
    assert first.match.priorities == {"high", "emergency"}
    assert first.match.categories == {"safety"}
    assert first.warning_before == timedelta(minutes=15)
    assert arrival.goals[1].target is None
    assert arrival.goals[2].calendar == "office"
    assert policy.definition(Milestone.REPAIR) is None

    document = policy_document(policy)
    assert parse_policy(document, version=4) == policy
    assert policy_document(parse_policy(document, version=4)) == document
    assert document["allowed_lateness"] == "2h"
    assert document["clocks"][0]["escalations"][2]["after"] == "72h"  # type: ignore[index]


def test_the_same_meaning_written_differently_has_one_canonical_document() -> None:
    terse = minimal()
    verbose = {
        "name": "acme",
        "timezone": "UTC",
        "allowed_lateness": "7d",
        "calendars": [],
        "clocks": [
            {"clock": "repair", "on_reopen": "new_cycle", "goals": [{"target": "240m"}]},
        ],
    }
    assert policy_document(parse_policy(terse)) == policy_document(parse_policy(verbose))


@pytest.mark.parametrize(
    ("text", "delta", "canonical"),
    [
        ("2h", timedelta(hours=2), "2h"),
        ("90m", timedelta(minutes=90), "1h30m"),
        ("1h30m", timedelta(minutes=90), "1h30m"),
        ("45s", timedelta(seconds=45), "45s"),
        ("3d", timedelta(days=3), "72h"),
        ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4), "26h3m4s"),
        ("0s", timedelta(0), "0s"),
    ],
)
def test_durations(text: str, delta: timedelta, canonical: str) -> None:
    assert parse_duration(text) == delta
    assert format_duration(delta) == canonical


@pytest.mark.parametrize("text", ["", "2", "2 hours", "h", "2H", "1m2h", "-1h", "1.5h", "2h "])
def test_what_is_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


# -- iCalendar holidays -------------------------------------------------------------------------


def write_policy(directory: Path, ical: str, *, name: str = "policy.yaml") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    document = minimal()
    document["calendars"] = [
        {
            "name": "office",
            "hours": [{"days": "weekdays", "from": "08:00", "to": "18:00"}],
            "holidays": [{"date": "2026-12-25", "name": "Christmas Day"}],
            "holidays_ical": ical,
        }
    ]
    document["clocks"][0]["goals"][0]["calendar"] = "office"
    path = directory / name
    path.write_text(json.dumps(document) if name.endswith(".json") else _yaml(document))
    return path


def _yaml(document: Doc) -> str:
    import yaml

    return yaml.safe_dump(document, sort_keys=False)


def test_holidays_of_an_ical_file_are_inlined_into_the_stored_document(tmp_path: Path) -> None:
    (tmp_path / "holidays").mkdir()
    (tmp_path / "holidays" / "de.ics").write_text(ICS)
    path = write_policy(tmp_path, "holidays/de.ics")
    document, policy = load_policy_file(path)
    office = policy.calendar("office")
    assert office.holidays == (
        Holiday(date(2026, 12, 25), name="Christmas Day"),  # listed once, though in both
        Holiday(date(2026, 12, 24), start=time(12), end=time(18), name="Christmas Eve afternoon"),
    )
    calendar = document["calendars"][0]  # type: ignore[index]
    assert "holidays_ical" not in calendar
    assert calendar["holidays"][1] == {
        "date": "2026-12-24",
        "from": "12:00",
        "to": "18:00",
        "name": "Christmas Eve afternoon",
    }
    # The stored document stands alone: it parses without the file or its directory.
    (tmp_path / "holidays" / "de.ics").unlink()
    assert parse_policy(document) == policy


@pytest.mark.parametrize(
    ("reference", "problem"),
    [
        ("../outside.ics", "lies outside the policy file's directory"),
        ("holidays/../../outside.ics", "lies outside the policy file's directory"),
        ("/etc/passwd", "must be a path relative to the policy file"),
        ("~/outside.ics", "must be a path relative to the policy file"),
        ("missing.ics", "missing.ics: no such file"),
        ("holidays", "holidays: is a directory, not a file"),
        ("broken.ics", "broken.ics: not an iCalendar file"),
    ],
)
def test_ical_references_that_are_refused(tmp_path: Path, reference: str, problem: str) -> None:
    (tmp_path / "outside.ics").write_text(ICS)
    (tmp_path / "policy" / "holidays").mkdir(parents=True)
    (tmp_path / "policy" / "broken.ics").write_text("BEGIN:VEVENT\nthis is not ical\n")
    path = write_policy(tmp_path / "policy", reference)
    message = invalid_file(path)
    assert message.startswith("calendars[0].holidays_ical: ")
    assert problem in message


def test_a_symlink_out_of_the_policy_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "outside.ics").write_text(ICS)
    (tmp_path / "policy").mkdir()
    (tmp_path / "policy" / "link.ics").symlink_to(tmp_path / "outside.ics")
    message = invalid_file(write_policy(tmp_path / "policy", "link.ics"))
    assert "lies outside the policy file's directory" in message


def test_an_ical_reference_needs_a_file_to_be_relative_to() -> None:
    document = minimal()
    document["calendars"] = [
        {"name": "office", "hours": [{"days": "mon", "from": "08:00", "to": "12:00"}]}
    ]
    document["calendars"][0]["holidays_ical"] = "de.ics"
    assert invalid(document) == (
        "calendars[0].holidays_ical: an iCalendar file can only be read when the policy is read "
        "from a file"
    )


# -- one-line errors in the document ------------------------------------------------------------


def _set(path: str, value: object) -> Callable[[Doc], None]:
    """A change of the standard document at a dotted path (``clocks.1.goals.0.target``)."""

    def change(document: Doc) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        node: Any = document
        for part in parents:
            node = node[part]
        node[last] = value

    return change


def _drop(path: str) -> Callable[[Doc], None]:
    def change(document: Doc) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        node: Any = document
        for part in parents:
            node = node[part]
        del node[last]

    return change


def _many(path: str, item: object, count: int) -> Callable[[Doc], None]:
    return _set(path, [copy.deepcopy(item) for _ in range(count)])


GOAL = "clocks.1.goals.0"  # arrival: emergency 2h (warning 30m), low 16h business-hours, 4h

DOCUMENT_ERRORS: list[tuple[str, Callable[[Doc], None], str]] = [
    (
        "a target in words",
        _set("clocks.2.goals.0.target", "2 hours"),
        'clocks[2].goals[0].target: "2 hours" is not a duration (use e.g. 2h, 90m, 1h30m, 45s)',
    ),
    (
        "a target without a unit",
        _set(f"{GOAL}.target", 2),
        "clocks[1].goals[0].target: 2 is not a duration; write it with a unit (use e.g. 2h, 90m, "
        "1h30m, 45s)",
    ),
    (
        "a zero target",
        _set(f"{GOAL}.target", "0s"),
        "clocks[1].goals[0].target: must be longer than 0s",
    ),
    (
        "a target beyond the limit",
        _set(f"{GOAL}.target", "400d"),
        'clocks[1].goals[0].target: "400d" is longer than the limit of 366d',
    ),
    (
        "a query operator as a tenant",
        _set(f"{GOAL}.tenant", {"$ne": None}),
        "clocks[1].goals[0].tenant: expected a tenant id or a list of them, not a mapping",
    ),
    (
        "a query operator in a tenant list",
        _set(f"{GOAL}.tenant", [{"$ne": None}]),
        "clocks[1].goals[0].tenant: expected a tenant id, not a mapping",
    ),
    (
        "a tenant id with capitals",
        _set(f"{GOAL}.tenant", "ACME"),
        'clocks[1].goals[0].tenant: "ACME" is not a tenant id (lower-case letters, digits and -, '
        "at most 63)",
    ),
    (
        "an unknown priority",
        _set(f"{GOAL}.priority", "urgent"),
        'clocks[1].goals[0].priority: "urgent" is not a priority (one of: emergency, high, '
        "normal, low)",
    ),
    (
        "a category listed twice",
        _set(f"{GOAL}.category", ["safety", "safety"]),
        'clocks[1].goals[0].category: "safety" is listed twice',
    ),
    (
        "an empty match list",
        _set(f"{GOAL}.equipment_class", []),
        "clocks[1].goals[0].equipment_class: an empty list; leave the field out to match any "
        "equipment class",
    ),
    (
        "an equipment class that is not a slug",
        _set(f"{GOAL}.equipment_class", "HVAC unit"),
        'clocks[1].goals[0].equipment_class: "HVAC unit" is not an equipment class',
    ),
    (
        "an unknown clock",
        _set("clocks.0.clock", "arival"),
        'clocks[0].clock: "arival" is not a clock (one of: dispatch_confirmation, arrival, '
        "parts_fulfilment, repair, progress_update, exception_response, exception_action, "
        "requester_question)",
    ),
    (
        "a clock defined twice",
        _set("clocks.3.clock", "arrival"),
        "clocks[3].clock: arrival is already defined by clocks[1]",
    ),
    (
        "an unknown calendar",
        _set("clocks.1.goals.1.calendar", "office-hours"),
        "clocks[1].goals[1].calendar: unknown calendar 'office-hours' (known: 24x7, "
        "business-hours)",
    ),
    (
        "a time zone that does not exist",
        _set("timezone", "Mars/Olympus_Mons"),
        'timezone: "Mars/Olympus_Mons" is not an IANA time zone (e.g. Europe/Berlin, '
        "America/New_York, UTC)",
    ),
    (
        "a time zone that is a path",
        _set("timezone", "../../../etc/passwd"),
        'timezone: "../../../etc/passwd" is not an IANA time zone',
    ),
    (
        "a clock's warning longer than a target",
        _set("clocks.6.warning_before", "2h"),
        "clocks[6].goals[0]: a warning 2h before the deadline would come before this 1h target "
        "starts counting (give this goal a shorter warning_before)",
    ),
    (
        "a goal's warning longer than its target",
        _set(f"{GOAL}.warning_before", "3h"),
        "clocks[1].goals[0].warning_before: a warning 3h before the deadline would come before "
        "this 2h target starts counting",
    ),
    (
        "a last goal that does not match every order",
        _set("clocks.1.goals.2.priority", "normal"),
        "clocks[1].goals[2]: the last goal must match every order",
    ),
    (
        "a goal for every order before others",
        _drop("clocks.1.goals.0.priority"),
        "clocks[1].goals[0]: matches every order, so the goals after it would never apply",
    ),
    (
        "escalations out of order",
        _set(
            "clocks.0.escalations",
            [{"after": "4h", "audience": "a"}, {"after": "1h", "audience": "b"}],
        ),
        "clocks[0].escalations[1].after: 1h comes before the previous level's 4h; list "
        "escalations in the order they fire",
    ),
    (
        "a misspelt field",
        _set("clocks.0.warning", "1h"),
        "clocks[0].warning: unknown field; did you mean 'warning_before'? (allowed here: clock, "
        "goals, warning_before, escalations, pause_when, on_reopen)",
    ),
    (
        "an unknown top-level field",
        _set("owner", "ops"),
        "owner: unknown field (allowed here: name, timezone, allowed_lateness, calendars, clocks)",
    ),
    ("no name", _drop("name"), "name: missing (required)"),
    ("no goals", _drop("clocks.0.goals"), "clocks[0].goals: missing (required)"),
    (
        "a target left out (null must be written)",
        _drop(f"{GOAL}.target"),
        "clocks[1].goals[0].target: missing (required)",
    ),
    (
        "a policy name with capitals",
        _set("name", "Standard"),
        'name: "Standard" is not a policy name',
    ),
    (
        "a name read as a number",
        _set("name", 2026),
        "name: expected a policy name; write it in quotes",
    ),
    (
        "clocks as a mapping",
        _set("clocks", {"repair": {}}),
        "clocks: expected a list, not a mapping",
    ),
    ("no clocks", _set("clocks", []), "clocks: needs at least 1 entry"),
    (
        "a goal as text",
        _set("clocks.0.goals.1", "2h"),
        'clocks[0].goals[1]: expected a mapping (key: value), not "2h"',
    ),
    (
        "an unquoted time of day",
        _set("calendars.0.hours.0.from", 480),
        'calendars[0].hours[0].from: expected a time written "HH:MM" in quotes (YAML read 08:00 '
        "as the number 480)",
    ),
    (
        "a time of day out of range",
        _set("calendars.0.hours.0.to", "25:00"),
        'calendars[0].hours[0].to: expected a time of day written "HH:MM" (00:00 to 24:00), not '
        '"25:00"',
    ),
    (
        "hours that are empty",
        _set("calendars.0.hours.0.to", "08:00"),
        "calendars[0].hours[0]: from and to are both 08:00: no working time",
    ),
    (
        "an unknown day",
        _set("calendars.0.hours.0.days", ["mon", "funday"]),
        'calendars[0].hours[0].days: "funday" is not a day',
    ),
    (
        "a holiday that ends before it starts",
        _set("calendars.0.holidays", [{"date": "2026-12-24", "from": "14:00", "to": "12:00"}]),
        "calendars[0].holidays[0]: holiday 2026-12-24 ends at or before it starts",
    ),
    (
        "an impossible date",
        _set("calendars.0.holidays", [{"date": "2027-02-30"}]),
        'calendars[0].holidays[0].date: "2027-02-30" is not a date',
    ),
    (
        "a calendar named like the built-in one",
        _set("calendars.0.name", "24x7"),
        "calendars[0].name: '24x7' is the built-in round-the-clock calendar",
    ),
    (
        "two calendars of one name",
        lambda d: d["calendars"].append(copy.deepcopy(d["calendars"][0])),
        "calendars[1].name: 'business-hours' is already the name of calendars[0]",
    ),
    (
        "a calendar open always and by the hours",
        _set("calendars.0.always_open", True),
        "calendars[0]: an always_open calendar has no hours, holidays or special days",
    ),
    (
        "a calendar that is never open",
        _drop("calendars.0.hours"),
        "calendars[0].hours: a calendar needs working hours (or always_open: true)",
    ),
    (
        "a calendar version read as a number",
        _set("calendars.0.version", 2),
        "calendars[0].version: expected a calendar version; write it in quotes (it was read as 2)",
    ),
    (
        "an unknown pause reason",
        _set("clocks.1.pause_when", ["lunch"]),
        'clocks[1].pause_when: "lunch" is not a pause reason (one of: customer_wait, '
        "awaiting_parts)",
    ),
    (
        "an unknown reopen rule",
        _set("clocks.1.on_reopen", "restart"),
        'clocks[1].on_reopen: "restart" is not a reopen rule (one of: new_cycle, resume, ignore)',
    ),
    (
        "a boolean where a duration goes",
        _set("allowed_lateness", True),
        "allowed_lateness: expected a duration (use e.g. 2h, 90m, 1h30m, 45s), not true",
    ),
    (
        "an unpaired surrogate",
        _set("calendars.0.holidays", [{"date": "2026-12-25", "name": "\ud800"}]),
        "(policy): contains an unpaired UTF-16 surrogate escape",
    ),
    (
        "a holiday name with control characters",
        _set("calendars.0.holidays", [{"date": "2026-12-25", "name": "a\x00b"}]),
        "calendars[0].holidays[0].name: contains control characters",
    ),
    (
        "more than 50 clocks",
        _many("clocks", {"clock": "repair", "goals": [{"target": "1h"}]}, 51),
        "clocks: 51 entries, more than the limit of 50",
    ),
    (
        "more than 200 goals",
        _many("clocks.0.goals", {"target": "1h"}, 201),
        "clocks[0].goals: 201 entries, more than the limit of 200",
    ),
    (
        "more than 20 escalation levels",
        _many("clocks.0.escalations", {"after": "1h", "audience": "operator"}, 21),
        "clocks[0].escalations: 21 entries, more than the limit of 20",
    ),
    (
        "more than 20 calendars",
        _many("calendars", {"name": "x", "always_open": True}, 21),
        "calendars: 21 entries, more than the limit of 20",
    ),
    (
        "more than 2000 holidays",
        _many("calendars.0.holidays", {"date": "2026-12-25"}, 2001),
        "calendars[0].holidays: 2001 entries, more than the limit of 2000",
    ),
]


@pytest.mark.parametrize(
    ("change", "expected"),
    [pytest.param(change, expected, id=name) for name, change, expected in DOCUMENT_ERRORS],
)
def test_each_mistake_is_one_line_naming_where_and_what(
    change: Callable[[Doc], None], expected: str
) -> None:
    document = standard_doc()
    change(document)
    message = invalid(document)
    assert message.startswith(expected), message


def test_several_mistakes_are_counted_on_the_one_line() -> None:
    document = standard_doc()
    document["clocks"][0]["goals"][0]["target"] = "soon"
    document["clocks"][1]["goals"][0]["target"] = "later"
    assert invalid(document).endswith("(and 1 more problem)")


@pytest.mark.parametrize("top", [[], "standard", 42, None])
def test_a_document_that_is_not_a_mapping(top: object) -> None:
    assert invalid(top).startswith(
        "(policy): expected a mapping with name, calendars and clocks, not "
    )


def test_a_version_below_one() -> None:
    assert invalid(minimal(), version=0) == "(policy): version 0 must be a whole number from 1"


# -- one-line errors in the file ----------------------------------------------------------------


def test_a_json_file_is_read_as_json(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(policy_document(standard_policy())))
    assert load_policy_file(path)[1] == standard_policy()


FILE_ERRORS: list[tuple[str, str, bytes, str]] = [
    ("not YAML", "p.yaml", b"name: [unclosed\n", "not valid YAML at line 2, column 1:"),
    ("not JSON", "p.json", b'{"name": }', "not valid JSON at line 1, column 10: Expecting value"),
    ("not UTF-8", "p.yaml", b"name: \xff\xfe\n", "not UTF-8 text (invalid byte at offset 6)"),
    (
        "a duplicate key in YAML",
        "p.yaml",
        b"name: a\nname: b\nclocks: []\n",
        "not valid YAML at line 2, column 1: duplicate key 'name'",
    ),
    (
        "a duplicate key in JSON",
        "p.json",
        b'{"name": "a", "name": "b"}',
        "not valid JSON: duplicate key 'name'",
    ),
    (
        "a YAML alias",
        "p.yaml",
        b"name: a\nclocks:\n  - &c {clock: repair, goals: [{target: 1h}]}\n  - *c\n",
        "not valid YAML at line 4, column 5: aliases (*name) are not allowed; write the value out",
    ),
    (
        "a billion laughs",
        "p.yaml",
        b'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
        b"b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
        b"d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n",
        "not valid YAML at line 2, column 8: aliases (*name) are not allowed",
    ),
    (
        "a Python object tag",
        "p.yaml",
        b"name: !!python/object/apply:os.system ['true']\n",
        "not valid YAML at line 1, column 7: could not determine a constructor for the tag",
    ),
    (
        "a list at the top",
        "p.yaml",
        b"- name: standard\n",
        "(policy): expected a mapping with name, calendars and clocks, not a list",
    ),
    (
        "an empty file",
        "p.yaml",
        b"",
        "(policy): expected a mapping with name, calendars and clocks, not null",
    ),
    (
        "a date and time where a date goes",
        "p.yaml",
        b"name: a\ncalendars:\n  - {name: c, hours: [{days: mon, from: '08:00', to: '12:00'}],"
        b" holidays: [{date: 2026-12-25 10:00:00}]}\n"
        b"clocks: [{clock: repair, goals: [{target: 1h}]}]\n",
        "calendars[0].holidays[0].date: expected a date (YYYY-MM-DD), not a date and time",
    ),
]


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        pytest.param(name, content, expected, id=label)
        for label, name, content, expected in FILE_ERRORS
    ],
)
def test_each_unreadable_file_is_one_line(
    tmp_path: Path, name: str, content: bytes, expected: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    message = invalid_file(path)
    assert message.startswith(expected), message


def test_a_missing_file_and_a_directory(tmp_path: Path) -> None:
    assert invalid_file(tmp_path / "absent.yaml") == "no such file"
    assert invalid_file(tmp_path) == "is a directory, not a file"


def test_a_file_over_one_mebibyte_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"# " + b"x" * MAX_FILE_BYTES + b"\n")
    assert invalid_file(path) == f"larger than the limit of {MAX_FILE_BYTES} bytes (1 MiB)"
