import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

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
    __slots__ = ("id", "tenant", "state", "source_platform", "external_id", "site", "equipment", "category", "priority", "description", "requester", "required_parts", "received_at", "updated_at", "timeline")
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
    def __init__(self, id: _Optional[str] = ..., tenant: _Optional[str] = ..., state: _Optional[_Union[WorkOrderState, str]] = ..., source_platform: _Optional[str] = ..., external_id: _Optional[str] = ..., site: _Optional[_Union[Site, _Mapping]] = ..., equipment: _Optional[_Union[Equipment, _Mapping]] = ..., category: _Optional[_Union[Category, str]] = ..., priority: _Optional[_Union[Priority, str]] = ..., description: _Optional[str] = ..., requester: _Optional[_Union[Requester, _Mapping]] = ..., required_parts: _Optional[_Iterable[_Union[PartLine, _Mapping]]] = ..., received_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., timeline: _Optional[_Iterable[_Union[TimelineEntry, _Mapping]]] = ...) -> None: ...

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
    __slots__ = ("name", "email", "phone", "locale")
    NAME_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    PHONE_FIELD_NUMBER: _ClassVar[int]
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    name: str
    email: str
    phone: str
    locale: str
    def __init__(self, name: _Optional[str] = ..., email: _Optional[str] = ..., phone: _Optional[str] = ..., locale: _Optional[str] = ...) -> None: ...

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
