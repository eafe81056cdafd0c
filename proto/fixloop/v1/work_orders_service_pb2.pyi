import datetime

from fixloop.v1 import work_order_pb2 as _work_order_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetWorkOrderRequest(_message.Message):
    __slots__ = ("work_order_id", "as_of")
    WORK_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    work_order_id: str
    as_of: _timestamp_pb2.Timestamp
    def __init__(self, work_order_id: _Optional[str] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetWorkOrderResponse(_message.Message):
    __slots__ = ("work_order",)
    WORK_ORDER_FIELD_NUMBER: _ClassVar[int]
    work_order: _work_order_pb2.WorkOrder
    def __init__(self, work_order: _Optional[_Union[_work_order_pb2.WorkOrder, _Mapping]] = ...) -> None: ...

class ListWorkOrdersRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "states", "site_id", "equipment_class", "updated_since")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATES_FIELD_NUMBER: _ClassVar[int]
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    EQUIPMENT_CLASS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_SINCE_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    states: _containers.RepeatedScalarFieldContainer[_work_order_pb2.WorkOrderState]
    site_id: str
    equipment_class: str
    updated_since: _timestamp_pb2.Timestamp
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., states: _Optional[_Iterable[_Union[_work_order_pb2.WorkOrderState, str]]] = ..., site_id: _Optional[str] = ..., equipment_class: _Optional[str] = ..., updated_since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListWorkOrdersResponse(_message.Message):
    __slots__ = ("work_orders", "next_page_token")
    WORK_ORDERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    work_orders: _containers.RepeatedCompositeFieldContainer[_work_order_pb2.WorkOrder]
    next_page_token: str
    def __init__(self, work_orders: _Optional[_Iterable[_Union[_work_order_pb2.WorkOrder, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WorkOrderSubmission(_message.Message):
    __slots__ = ("external_id", "site", "equipment", "category", "priority", "description", "requester", "required_parts", "reported_at")
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    SITE_FIELD_NUMBER: _ClassVar[int]
    EQUIPMENT_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    REQUESTER_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_PARTS_FIELD_NUMBER: _ClassVar[int]
    REPORTED_AT_FIELD_NUMBER: _ClassVar[int]
    external_id: str
    site: _work_order_pb2.Site
    equipment: _work_order_pb2.Equipment
    category: _work_order_pb2.Category
    priority: _work_order_pb2.Priority
    description: str
    requester: _work_order_pb2.Requester
    required_parts: _containers.RepeatedCompositeFieldContainer[_work_order_pb2.PartLine]
    reported_at: _timestamp_pb2.Timestamp
    def __init__(self, external_id: _Optional[str] = ..., site: _Optional[_Union[_work_order_pb2.Site, _Mapping]] = ..., equipment: _Optional[_Union[_work_order_pb2.Equipment, _Mapping]] = ..., category: _Optional[_Union[_work_order_pb2.Category, str]] = ..., priority: _Optional[_Union[_work_order_pb2.Priority, str]] = ..., description: _Optional[str] = ..., requester: _Optional[_Union[_work_order_pb2.Requester, _Mapping]] = ..., required_parts: _Optional[_Iterable[_Union[_work_order_pb2.PartLine, _Mapping]]] = ..., reported_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateWorkOrderRequest(_message.Message):
    __slots__ = ("request_id", "work_order")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    WORK_ORDER_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    work_order: WorkOrderSubmission
    def __init__(self, request_id: _Optional[str] = ..., work_order: _Optional[_Union[WorkOrderSubmission, _Mapping]] = ...) -> None: ...

class CreateWorkOrderResponse(_message.Message):
    __slots__ = ("work_order", "created")
    WORK_ORDER_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    work_order: _work_order_pb2.WorkOrder
    created: bool
    def __init__(self, work_order: _Optional[_Union[_work_order_pb2.WorkOrder, _Mapping]] = ..., created: _Optional[bool] = ...) -> None: ...

class WatchWorkOrdersRequest(_message.Message):
    __slots__ = ("cursor", "work_order_id", "from_oldest")
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    WORK_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_OLDEST_FIELD_NUMBER: _ClassVar[int]
    cursor: str
    work_order_id: str
    from_oldest: bool
    def __init__(self, cursor: _Optional[str] = ..., work_order_id: _Optional[str] = ..., from_oldest: _Optional[bool] = ...) -> None: ...

class WatchWorkOrdersResponse(_message.Message):
    __slots__ = ("step", "cursor")
    STEP_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    step: WorkOrderStep
    cursor: str
    def __init__(self, step: _Optional[_Union[WorkOrderStep, _Mapping]] = ..., cursor: _Optional[str] = ...) -> None: ...

class WorkOrderStep(_message.Message):
    __slots__ = ("event_id", "event_type", "work_order_id", "external_id", "state", "previous_state", "version", "occurred_at", "actor_kind", "actor_id", "reason", "note", "contractor_id", "details")
    class DetailsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    WORK_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_STATE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_KIND_FIELD_NUMBER: _ClassVar[int]
    ACTOR_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    CONTRACTOR_ID_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    event_type: str
    work_order_id: str
    external_id: str
    state: _work_order_pb2.WorkOrderState
    previous_state: _work_order_pb2.WorkOrderState
    version: int
    occurred_at: _timestamp_pb2.Timestamp
    actor_kind: str
    actor_id: str
    reason: str
    note: str
    contractor_id: str
    details: _containers.ScalarMap[str, str]
    def __init__(self, event_id: _Optional[str] = ..., event_type: _Optional[str] = ..., work_order_id: _Optional[str] = ..., external_id: _Optional[str] = ..., state: _Optional[_Union[_work_order_pb2.WorkOrderState, str]] = ..., previous_state: _Optional[_Union[_work_order_pb2.WorkOrderState, str]] = ..., version: _Optional[int] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., actor_kind: _Optional[str] = ..., actor_id: _Optional[str] = ..., reason: _Optional[str] = ..., note: _Optional[str] = ..., contractor_id: _Optional[str] = ..., details: _Optional[_Mapping[str, str]] = ...) -> None: ...

class CancelWorkOrderRequest(_message.Message):
    __slots__ = ("request_id", "work_order_id", "reason")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    WORK_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    work_order_id: str
    reason: str
    def __init__(self, request_id: _Optional[str] = ..., work_order_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class CancelWorkOrderResponse(_message.Message):
    __slots__ = ("work_order",)
    WORK_ORDER_FIELD_NUMBER: _ClassVar[int]
    work_order: _work_order_pb2.WorkOrder
    def __init__(self, work_order: _Optional[_Union[_work_order_pb2.WorkOrder, _Mapping]] = ...) -> None: ...

class VerifyCompletionRequest(_message.Message):
    __slots__ = ("request_id", "work_order_id", "note")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    WORK_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    work_order_id: str
    note: str
    def __init__(self, request_id: _Optional[str] = ..., work_order_id: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class VerifyCompletionResponse(_message.Message):
    __slots__ = ("work_order",)
    WORK_ORDER_FIELD_NUMBER: _ClassVar[int]
    work_order: _work_order_pb2.WorkOrder
    def __init__(self, work_order: _Optional[_Union[_work_order_pb2.WorkOrder, _Mapping]] = ...) -> None: ...

class RejectCompletionRequest(_message.Message):
    __slots__ = ("request_id", "work_order_id", "reason")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    WORK_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    work_order_id: str
    reason: str
    def __init__(self, request_id: _Optional[str] = ..., work_order_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RejectCompletionResponse(_message.Message):
    __slots__ = ("work_order", "follow_up")
    WORK_ORDER_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_UP_FIELD_NUMBER: _ClassVar[int]
    work_order: _work_order_pb2.WorkOrder
    follow_up: _work_order_pb2.WorkOrder
    def __init__(self, work_order: _Optional[_Union[_work_order_pb2.WorkOrder, _Mapping]] = ..., follow_up: _Optional[_Union[_work_order_pb2.WorkOrder, _Mapping]] = ...) -> None: ...

class AddCommentRequest(_message.Message):
    __slots__ = ("request_id", "work_order_id", "text")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    WORK_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    work_order_id: str
    text: str
    def __init__(self, request_id: _Optional[str] = ..., work_order_id: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class AddCommentResponse(_message.Message):
    __slots__ = ("work_order", "comment_id")
    WORK_ORDER_FIELD_NUMBER: _ClassVar[int]
    COMMENT_ID_FIELD_NUMBER: _ClassVar[int]
    work_order: _work_order_pb2.WorkOrder
    comment_id: str
    def __init__(self, work_order: _Optional[_Union[_work_order_pb2.WorkOrder, _Mapping]] = ..., comment_id: _Optional[str] = ...) -> None: ...
