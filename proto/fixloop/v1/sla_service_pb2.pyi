import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RiskReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RISK_REASON_UNSPECIFIED: _ClassVar[RiskReason]
    RISK_REASON_BREACHED: _ClassVar[RiskReason]
    RISK_REASON_PREDICTED_LATE: _ClassVar[RiskReason]
    RISK_REASON_WARNED: _ClassVar[RiskReason]
    RISK_REASON_DUE_SOON: _ClassVar[RiskReason]

class ClockCycleState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CLOCK_CYCLE_STATE_UNSPECIFIED: _ClassVar[ClockCycleState]
    CLOCK_CYCLE_STATE_RUNNING: _ClassVar[ClockCycleState]
    CLOCK_CYCLE_STATE_PAUSED: _ClassVar[ClockCycleState]

class ClockCycleOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CLOCK_CYCLE_OUTCOME_UNSPECIFIED: _ClassVar[ClockCycleOutcome]
    CLOCK_CYCLE_OUTCOME_MET: _ClassVar[ClockCycleOutcome]
    CLOCK_CYCLE_OUTCOME_MISSED: _ClassVar[ClockCycleOutcome]
    CLOCK_CYCLE_OUTCOME_CANCELLED: _ClassVar[ClockCycleOutcome]

class SlaReportGrouping(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SLA_REPORT_GROUPING_UNSPECIFIED: _ClassVar[SlaReportGrouping]
    SLA_REPORT_GROUPING_CONTRACTOR: _ClassVar[SlaReportGrouping]
    SLA_REPORT_GROUPING_EQUIPMENT_CLASS: _ClassVar[SlaReportGrouping]
RISK_REASON_UNSPECIFIED: RiskReason
RISK_REASON_BREACHED: RiskReason
RISK_REASON_PREDICTED_LATE: RiskReason
RISK_REASON_WARNED: RiskReason
RISK_REASON_DUE_SOON: RiskReason
CLOCK_CYCLE_STATE_UNSPECIFIED: ClockCycleState
CLOCK_CYCLE_STATE_RUNNING: ClockCycleState
CLOCK_CYCLE_STATE_PAUSED: ClockCycleState
CLOCK_CYCLE_OUTCOME_UNSPECIFIED: ClockCycleOutcome
CLOCK_CYCLE_OUTCOME_MET: ClockCycleOutcome
CLOCK_CYCLE_OUTCOME_MISSED: ClockCycleOutcome
CLOCK_CYCLE_OUTCOME_CANCELLED: ClockCycleOutcome
SLA_REPORT_GROUPING_UNSPECIFIED: SlaReportGrouping
SLA_REPORT_GROUPING_CONTRACTOR: SlaReportGrouping
SLA_REPORT_GROUPING_EQUIPMENT_CLASS: SlaReportGrouping

class ListAtRiskClocksRequest(_message.Message):
    __slots__ = ("page_size", "within")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    WITHIN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    within: _duration_pb2.Duration
    def __init__(self, page_size: _Optional[int] = ..., within: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class ListAtRiskClocksResponse(_message.Message):
    __slots__ = ("clocks", "as_of")
    CLOCKS_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    clocks: _containers.RepeatedCompositeFieldContainer[AtRiskClock]
    as_of: _timestamp_pb2.Timestamp
    def __init__(self, clocks: _Optional[_Iterable[_Union[AtRiskClock, _Mapping]]] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AtRiskClock(_message.Message):
    __slots__ = ("work_order_id", "cycle", "reason", "time_left", "predicted_lateness", "contractor_id", "priority", "equipment_class")
    WORK_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    CYCLE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TIME_LEFT_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_LATENESS_FIELD_NUMBER: _ClassVar[int]
    CONTRACTOR_ID_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    EQUIPMENT_CLASS_FIELD_NUMBER: _ClassVar[int]
    work_order_id: str
    cycle: OpenClockCycle
    reason: RiskReason
    time_left: _duration_pb2.Duration
    predicted_lateness: _duration_pb2.Duration
    contractor_id: str
    priority: str
    equipment_class: str
    def __init__(self, work_order_id: _Optional[str] = ..., cycle: _Optional[_Union[OpenClockCycle, _Mapping]] = ..., reason: _Optional[_Union[RiskReason, str]] = ..., time_left: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., predicted_lateness: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., contractor_id: _Optional[str] = ..., priority: _Optional[str] = ..., equipment_class: _Optional[str] = ...) -> None: ...

class OpenClockCycle(_message.Message):
    __slots__ = ("clock", "cycle", "state", "started_at", "deadline", "warn_at", "breached_at", "predicted_at", "prediction_basis", "policy_version")
    CLOCK_FIELD_NUMBER: _ClassVar[int]
    CYCLE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_FIELD_NUMBER: _ClassVar[int]
    WARN_AT_FIELD_NUMBER: _ClassVar[int]
    BREACHED_AT_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_AT_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_BASIS_FIELD_NUMBER: _ClassVar[int]
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    clock: str
    cycle: int
    state: ClockCycleState
    started_at: _timestamp_pb2.Timestamp
    deadline: _timestamp_pb2.Timestamp
    warn_at: _timestamp_pb2.Timestamp
    breached_at: _timestamp_pb2.Timestamp
    predicted_at: _timestamp_pb2.Timestamp
    prediction_basis: str
    policy_version: int
    def __init__(self, clock: _Optional[str] = ..., cycle: _Optional[int] = ..., state: _Optional[_Union[ClockCycleState, str]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., deadline: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., warn_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., breached_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., predicted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., prediction_basis: _Optional[str] = ..., policy_version: _Optional[int] = ...) -> None: ...

class ClosedClockCycle(_message.Message):
    __slots__ = ("clock", "cycle", "outcome", "breached", "started_at", "closed_at", "deadline", "original_deadline", "breach_margin_seconds", "paused_seconds", "business_seconds", "wall_seconds", "policy_name", "policy_version", "calendar", "calendar_version", "timezone", "timezone_source", "contractor_id", "revision")
    CLOCK_FIELD_NUMBER: _ClassVar[int]
    CYCLE_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    BREACHED_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    CLOSED_AT_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_DEADLINE_FIELD_NUMBER: _ClassVar[int]
    BREACH_MARGIN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PAUSED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    BUSINESS_SECONDS_FIELD_NUMBER: _ClassVar[int]
    WALL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    POLICY_NAME_FIELD_NUMBER: _ClassVar[int]
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    CALENDAR_FIELD_NUMBER: _ClassVar[int]
    CALENDAR_VERSION_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_SOURCE_FIELD_NUMBER: _ClassVar[int]
    CONTRACTOR_ID_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    clock: str
    cycle: int
    outcome: ClockCycleOutcome
    breached: bool
    started_at: _timestamp_pb2.Timestamp
    closed_at: _timestamp_pb2.Timestamp
    deadline: _timestamp_pb2.Timestamp
    original_deadline: _timestamp_pb2.Timestamp
    breach_margin_seconds: float
    paused_seconds: float
    business_seconds: float
    wall_seconds: float
    policy_name: str
    policy_version: int
    calendar: str
    calendar_version: int
    timezone: str
    timezone_source: str
    contractor_id: str
    revision: int
    def __init__(self, clock: _Optional[str] = ..., cycle: _Optional[int] = ..., outcome: _Optional[_Union[ClockCycleOutcome, str]] = ..., breached: _Optional[bool] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., closed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., deadline: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., original_deadline: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., breach_margin_seconds: _Optional[float] = ..., paused_seconds: _Optional[float] = ..., business_seconds: _Optional[float] = ..., wall_seconds: _Optional[float] = ..., policy_name: _Optional[str] = ..., policy_version: _Optional[int] = ..., calendar: _Optional[str] = ..., calendar_version: _Optional[int] = ..., timezone: _Optional[str] = ..., timezone_source: _Optional[str] = ..., contractor_id: _Optional[str] = ..., revision: _Optional[int] = ...) -> None: ...

class GetSlaReportRequest(_message.Message):
    __slots__ = ("start_time", "end_time", "group_by")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    GROUP_BY_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    group_by: SlaReportGrouping
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., group_by: _Optional[_Union[SlaReportGrouping, str]] = ...) -> None: ...

class GetSlaReportResponse(_message.Message):
    __slots__ = ("start_time", "end_time", "group_by", "rows", "as_of")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    GROUP_BY_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    group_by: SlaReportGrouping
    rows: _containers.RepeatedCompositeFieldContainer[SlaReportRow]
    as_of: _timestamp_pb2.Timestamp
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., group_by: _Optional[_Union[SlaReportGrouping, str]] = ..., rows: _Optional[_Iterable[_Union[SlaReportRow, _Mapping]]] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SlaReportRow(_message.Message):
    __slots__ = ("group", "clock", "met", "missed", "cancelled", "running_breached", "ever_breached", "compliance_percent")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    CLOCK_FIELD_NUMBER: _ClassVar[int]
    MET_FIELD_NUMBER: _ClassVar[int]
    MISSED_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    RUNNING_BREACHED_FIELD_NUMBER: _ClassVar[int]
    EVER_BREACHED_FIELD_NUMBER: _ClassVar[int]
    COMPLIANCE_PERCENT_FIELD_NUMBER: _ClassVar[int]
    group: str
    clock: str
    met: int
    missed: int
    cancelled: int
    running_breached: int
    ever_breached: int
    compliance_percent: float
    def __init__(self, group: _Optional[str] = ..., clock: _Optional[str] = ..., met: _Optional[int] = ..., missed: _Optional[int] = ..., cancelled: _Optional[int] = ..., running_breached: _Optional[int] = ..., ever_breached: _Optional[int] = ..., compliance_percent: _Optional[float] = ...) -> None: ...

class GetWorkOrderClocksRequest(_message.Message):
    __slots__ = ("work_order_id",)
    WORK_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    work_order_id: str
    def __init__(self, work_order_id: _Optional[str] = ...) -> None: ...

class GetWorkOrderClocksResponse(_message.Message):
    __slots__ = ("work_order_id", "contractor_id", "priority", "equipment_class", "category", "site_timezone", "open_cycles", "closed_cycles")
    WORK_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    CONTRACTOR_ID_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    EQUIPMENT_CLASS_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    SITE_TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    OPEN_CYCLES_FIELD_NUMBER: _ClassVar[int]
    CLOSED_CYCLES_FIELD_NUMBER: _ClassVar[int]
    work_order_id: str
    contractor_id: str
    priority: str
    equipment_class: str
    category: str
    site_timezone: str
    open_cycles: _containers.RepeatedCompositeFieldContainer[OpenClockCycle]
    closed_cycles: _containers.RepeatedCompositeFieldContainer[ClosedClockCycle]
    def __init__(self, work_order_id: _Optional[str] = ..., contractor_id: _Optional[str] = ..., priority: _Optional[str] = ..., equipment_class: _Optional[str] = ..., category: _Optional[str] = ..., site_timezone: _Optional[str] = ..., open_cycles: _Optional[_Iterable[_Union[OpenClockCycle, _Mapping]]] = ..., closed_cycles: _Optional[_Iterable[_Union[ClosedClockCycle, _Mapping]]] = ...) -> None: ...
