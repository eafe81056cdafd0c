import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ChecklistOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHECKLIST_OUTCOME_UNSPECIFIED: _ClassVar[ChecklistOutcome]
    CHECKLIST_OUTCOME_PASSED: _ClassVar[ChecklistOutcome]
    CHECKLIST_OUTCOME_FAILED: _ClassVar[ChecklistOutcome]
    CHECKLIST_OUTCOME_NOT_APPLICABLE: _ClassVar[ChecklistOutcome]

class DelayCause(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DELAY_CAUSE_UNSPECIFIED: _ClassVar[DelayCause]
    DELAY_CAUSE_MANPOWER: _ClassVar[DelayCause]
    DELAY_CAUSE_PARTS: _ClassVar[DelayCause]
    DELAY_CAUSE_TECHNICAL: _ClassVar[DelayCause]
    DELAY_CAUSE_ACCESS: _ClassVar[DelayCause]
    DELAY_CAUSE_OTHER: _ClassVar[DelayCause]

class WorkOrderState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WORK_ORDER_STATE_UNSPECIFIED: _ClassVar[WorkOrderState]
    WORK_ORDER_STATE_RECEIVED: _ClassVar[WorkOrderState]
    WORK_ORDER_STATE_DISPATCH_REQUESTED: _ClassVar[WorkOrderState]
    WORK_ORDER_STATE_ASSIGNED: _ClassVar[WorkOrderState]
    WORK_ORDER_STATE_STARTED: _ClassVar[WorkOrderState]
    WORK_ORDER_STATE_AWAITING_PARTS: _ClassVar[WorkOrderState]
    WORK_ORDER_STATE_COMPLETED: _ClassVar[WorkOrderState]
    WORK_ORDER_STATE_VERIFIED: _ClassVar[WorkOrderState]
    WORK_ORDER_STATE_CLOSED: _ClassVar[WorkOrderState]
    WORK_ORDER_STATE_CANCELLED: _ClassVar[WorkOrderState]
    WORK_ORDER_STATE_DISPATCHING: _ClassVar[WorkOrderState]
    WORK_ORDER_STATE_SCHEDULED: _ClassVar[WorkOrderState]
    WORK_ORDER_STATE_EN_ROUTE: _ClassVar[WorkOrderState]
    WORK_ORDER_STATE_ON_SITE: _ClassVar[WorkOrderState]
    WORK_ORDER_STATE_WORK_COMPLETED: _ClassVar[WorkOrderState]
    WORK_ORDER_STATE_ARCHIVED: _ClassVar[WorkOrderState]

class Category(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CATEGORY_UNSPECIFIED: _ClassVar[Category]
    CATEGORY_BREAKDOWN: _ClassVar[Category]
    CATEGORY_PREVENTIVE: _ClassVar[Category]
    CATEGORY_INSPECTION: _ClassVar[Category]
    CATEGORY_INSTALLATION: _ClassVar[Category]
    CATEGORY_SAFETY: _ClassVar[Category]

class Priority(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRIORITY_UNSPECIFIED: _ClassVar[Priority]
    PRIORITY_EMERGENCY: _ClassVar[Priority]
    PRIORITY_HIGH: _ClassVar[Priority]
    PRIORITY_NORMAL: _ClassVar[Priority]
    PRIORITY_LOW: _ClassVar[Priority]
CHECKLIST_OUTCOME_UNSPECIFIED: ChecklistOutcome
CHECKLIST_OUTCOME_PASSED: ChecklistOutcome
CHECKLIST_OUTCOME_FAILED: ChecklistOutcome
CHECKLIST_OUTCOME_NOT_APPLICABLE: ChecklistOutcome
DELAY_CAUSE_UNSPECIFIED: DelayCause
DELAY_CAUSE_MANPOWER: DelayCause
DELAY_CAUSE_PARTS: DelayCause
DELAY_CAUSE_TECHNICAL: DelayCause
DELAY_CAUSE_ACCESS: DelayCause
DELAY_CAUSE_OTHER: DelayCause
WORK_ORDER_STATE_UNSPECIFIED: WorkOrderState
WORK_ORDER_STATE_RECEIVED: WorkOrderState
WORK_ORDER_STATE_DISPATCH_REQUESTED: WorkOrderState
WORK_ORDER_STATE_ASSIGNED: WorkOrderState
WORK_ORDER_STATE_STARTED: WorkOrderState
WORK_ORDER_STATE_AWAITING_PARTS: WorkOrderState
WORK_ORDER_STATE_COMPLETED: WorkOrderState
WORK_ORDER_STATE_VERIFIED: WorkOrderState
WORK_ORDER_STATE_CLOSED: WorkOrderState
WORK_ORDER_STATE_CANCELLED: WorkOrderState
WORK_ORDER_STATE_DISPATCHING: WorkOrderState
WORK_ORDER_STATE_SCHEDULED: WorkOrderState
WORK_ORDER_STATE_EN_ROUTE: WorkOrderState
WORK_ORDER_STATE_ON_SITE: WorkOrderState
WORK_ORDER_STATE_WORK_COMPLETED: WorkOrderState
WORK_ORDER_STATE_ARCHIVED: WorkOrderState
CATEGORY_UNSPECIFIED: Category
CATEGORY_BREAKDOWN: Category
CATEGORY_PREVENTIVE: Category
CATEGORY_INSPECTION: Category
CATEGORY_INSTALLATION: Category
CATEGORY_SAFETY: Category
PRIORITY_UNSPECIFIED: Priority
PRIORITY_EMERGENCY: Priority
PRIORITY_HIGH: Priority
PRIORITY_NORMAL: Priority
PRIORITY_LOW: Priority

class WorkOrder(_message.Message):
    __slots__ = ("id", "tenant", "state", "source_platform", "external_id", "site", "equipment", "category", "priority", "description", "requester", "required_parts", "received_at", "updated_at", "timeline", "contractor_id", "appointment", "eta", "completion", "version", "verify_by", "closed_at", "reopen_count", "state_as_of", "follow_up_of")
    ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_PLATFORM_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    SITE_FIELD_NUMBER: _ClassVar[int]
    EQUIPMENT_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    REQUESTER_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_PARTS_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    TIMELINE_FIELD_NUMBER: _ClassVar[int]
    CONTRACTOR_ID_FIELD_NUMBER: _ClassVar[int]
    APPOINTMENT_FIELD_NUMBER: _ClassVar[int]
    ETA_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    VERIFY_BY_FIELD_NUMBER: _ClassVar[int]
    CLOSED_AT_FIELD_NUMBER: _ClassVar[int]
    REOPEN_COUNT_FIELD_NUMBER: _ClassVar[int]
    STATE_AS_OF_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_UP_OF_FIELD_NUMBER: _ClassVar[int]
    id: str
    tenant: str
    state: WorkOrderState
    source_platform: str
    external_id: str
    site: Site
    equipment: Equipment
    category: Category
    priority: Priority
    description: str
    requester: Requester
    required_parts: _containers.RepeatedCompositeFieldContainer[PartLine]
    received_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    timeline: _containers.RepeatedCompositeFieldContainer[TimelineEntry]
    contractor_id: str
    appointment: AppointmentWindow
    eta: _timestamp_pb2.Timestamp
    completion: CompletionReport
    version: int
    verify_by: _timestamp_pb2.Timestamp
    closed_at: _timestamp_pb2.Timestamp
    reopen_count: int
    state_as_of: WorkOrderState
    follow_up_of: str
    def __init__(self, id: _Optional[str] = ..., tenant: _Optional[str] = ..., state: _Optional[_Union[WorkOrderState, str]] = ..., source_platform: _Optional[str] = ..., external_id: _Optional[str] = ..., site: _Optional[_Union[Site, _Mapping]] = ..., equipment: _Optional[_Union[Equipment, _Mapping]] = ..., category: _Optional[_Union[Category, str]] = ..., priority: _Optional[_Union[Priority, str]] = ..., description: _Optional[str] = ..., requester: _Optional[_Union[Requester, _Mapping]] = ..., required_parts: _Optional[_Iterable[_Union[PartLine, _Mapping]]] = ..., received_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., timeline: _Optional[_Iterable[_Union[TimelineEntry, _Mapping]]] = ..., contractor_id: _Optional[str] = ..., appointment: _Optional[_Union[AppointmentWindow, _Mapping]] = ..., eta: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., completion: _Optional[_Union[CompletionReport, _Mapping]] = ..., version: _Optional[int] = ..., verify_by: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., closed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reopen_count: _Optional[int] = ..., state_as_of: _Optional[_Union[WorkOrderState, str]] = ..., follow_up_of: _Optional[str] = ...) -> None: ...

class AppointmentWindow(_message.Message):
    __slots__ = ("start", "end")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    start: _timestamp_pb2.Timestamp
    end: _timestamp_pb2.Timestamp
    def __init__(self, start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ChecklistResult(_message.Message):
    __slots__ = ("item", "outcome", "note")
    ITEM_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    item: str
    outcome: ChecklistOutcome
    note: str
    def __init__(self, item: _Optional[str] = ..., outcome: _Optional[_Union[ChecklistOutcome, str]] = ..., note: _Optional[str] = ...) -> None: ...

class PhotoEvidence(_message.Message):
    __slots__ = ("uri", "content_type", "size_bytes", "sha256")
    URI_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    uri: str
    content_type: str
    size_bytes: int
    sha256: str
    def __init__(self, uri: _Optional[str] = ..., content_type: _Optional[str] = ..., size_bytes: _Optional[int] = ..., sha256: _Optional[str] = ...) -> None: ...

class CompletionReport(_message.Message):
    __slots__ = ("resolution_code", "work_summary", "labour_minutes", "parts_used", "checklist", "photos")
    RESOLUTION_CODE_FIELD_NUMBER: _ClassVar[int]
    WORK_SUMMARY_FIELD_NUMBER: _ClassVar[int]
    LABOUR_MINUTES_FIELD_NUMBER: _ClassVar[int]
    PARTS_USED_FIELD_NUMBER: _ClassVar[int]
    CHECKLIST_FIELD_NUMBER: _ClassVar[int]
    PHOTOS_FIELD_NUMBER: _ClassVar[int]
    resolution_code: str
    work_summary: str
    labour_minutes: int
    parts_used: _containers.RepeatedCompositeFieldContainer[PartLine]
    checklist: _containers.RepeatedCompositeFieldContainer[ChecklistResult]
    photos: _containers.RepeatedCompositeFieldContainer[PhotoEvidence]
    def __init__(self, resolution_code: _Optional[str] = ..., work_summary: _Optional[str] = ..., labour_minutes: _Optional[int] = ..., parts_used: _Optional[_Iterable[_Union[PartLine, _Mapping]]] = ..., checklist: _Optional[_Iterable[_Union[ChecklistResult, _Mapping]]] = ..., photos: _Optional[_Iterable[_Union[PhotoEvidence, _Mapping]]] = ...) -> None: ...

class Site(_message.Message):
    __slots__ = ("site_id", "name", "address", "timezone")
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    site_id: str
    name: str
    address: Address
    timezone: str
    def __init__(self, site_id: _Optional[str] = ..., name: _Optional[str] = ..., address: _Optional[_Union[Address, _Mapping]] = ..., timezone: _Optional[str] = ...) -> None: ...

class Address(_message.Message):
    __slots__ = ("line1", "line2", "city", "postal_code", "country")
    LINE1_FIELD_NUMBER: _ClassVar[int]
    LINE2_FIELD_NUMBER: _ClassVar[int]
    CITY_FIELD_NUMBER: _ClassVar[int]
    POSTAL_CODE_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    line1: str
    line2: str
    city: str
    postal_code: str
    country: str
    def __init__(self, line1: _Optional[str] = ..., line2: _Optional[str] = ..., city: _Optional[str] = ..., postal_code: _Optional[str] = ..., country: _Optional[str] = ...) -> None: ...

class Equipment(_message.Message):
    __slots__ = ("equipment_id", "equipment_class", "manufacturer", "model")
    EQUIPMENT_ID_FIELD_NUMBER: _ClassVar[int]
    EQUIPMENT_CLASS_FIELD_NUMBER: _ClassVar[int]
    MANUFACTURER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    equipment_id: str
    equipment_class: str
    manufacturer: str
    model: str
    def __init__(self, equipment_id: _Optional[str] = ..., equipment_class: _Optional[str] = ..., manufacturer: _Optional[str] = ..., model: _Optional[str] = ...) -> None: ...

class Requester(_message.Message):
    __slots__ = ("name", "email", "phone", "locale", "sms_consent")
    NAME_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    PHONE_FIELD_NUMBER: _ClassVar[int]
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    SMS_CONSENT_FIELD_NUMBER: _ClassVar[int]
    name: str
    email: str
    phone: str
    locale: str
    sms_consent: bool
    def __init__(self, name: _Optional[str] = ..., email: _Optional[str] = ..., phone: _Optional[str] = ..., locale: _Optional[str] = ..., sms_consent: _Optional[bool] = ...) -> None: ...

class PartLine(_message.Message):
    __slots__ = ("part_number", "quantity")
    PART_NUMBER_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    part_number: str
    quantity: int
    def __init__(self, part_number: _Optional[str] = ..., quantity: _Optional[int] = ...) -> None: ...

class TimelineEntry(_message.Message):
    __slots__ = ("id", "at", "kind", "summary", "event_type", "details")
    class DetailsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    id: str
    at: _timestamp_pb2.Timestamp
    kind: str
    summary: str
    event_type: str
    details: _containers.ScalarMap[str, str]
    def __init__(self, id: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., kind: _Optional[str] = ..., summary: _Optional[str] = ..., event_type: _Optional[str] = ..., details: _Optional[_Mapping[str, str]] = ...) -> None: ...
