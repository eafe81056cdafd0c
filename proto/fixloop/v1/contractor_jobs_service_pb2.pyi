import datetime

from fixloop.v1 import work_order_pb2 as _work_order_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OfferStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OFFER_STATUS_UNSPECIFIED: _ClassVar[OfferStatus]
    OFFER_STATUS_OPEN: _ClassVar[OfferStatus]
    OFFER_STATUS_ACCEPTED: _ClassVar[OfferStatus]
    OFFER_STATUS_DECLINED: _ClassVar[OfferStatus]
    OFFER_STATUS_WITHDRAWN: _ClassVar[OfferStatus]
    OFFER_STATUS_EXPIRED: _ClassVar[OfferStatus]

class ProgressKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROGRESS_KIND_UNSPECIFIED: _ClassVar[ProgressKind]
    PROGRESS_KIND_EN_ROUTE: _ClassVar[ProgressKind]
    PROGRESS_KIND_ON_SITE: _ClassVar[ProgressKind]
    PROGRESS_KIND_AWAITING_PARTS: _ClassVar[ProgressKind]
    PROGRESS_KIND_NOTE: _ClassVar[ProgressKind]
OFFER_STATUS_UNSPECIFIED: OfferStatus
OFFER_STATUS_OPEN: OfferStatus
OFFER_STATUS_ACCEPTED: OfferStatus
OFFER_STATUS_DECLINED: OfferStatus
OFFER_STATUS_WITHDRAWN: OfferStatus
OFFER_STATUS_EXPIRED: OfferStatus
PROGRESS_KIND_UNSPECIFIED: ProgressKind
PROGRESS_KIND_EN_ROUTE: ProgressKind
PROGRESS_KIND_ON_SITE: ProgressKind
PROGRESS_KIND_AWAITING_PARTS: ProgressKind
PROGRESS_KIND_NOTE: ProgressKind

class Offer(_message.Message):
    __slots__ = ("offer_id", "work_order_id", "tenant", "status", "offered_at", "expires_at", "site", "equipment", "category", "priority", "description")
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    WORK_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    OFFERED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    SITE_FIELD_NUMBER: _ClassVar[int]
    EQUIPMENT_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    offer_id: str
    work_order_id: str
    tenant: str
    status: OfferStatus
    offered_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    site: _work_order_pb2.Site
    equipment: _work_order_pb2.Equipment
    category: _work_order_pb2.Category
    priority: _work_order_pb2.Priority
    description: str
    def __init__(self, offer_id: _Optional[str] = ..., work_order_id: _Optional[str] = ..., tenant: _Optional[str] = ..., status: _Optional[_Union[OfferStatus, str]] = ..., offered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., site: _Optional[_Union[_work_order_pb2.Site, _Mapping]] = ..., equipment: _Optional[_Union[_work_order_pb2.Equipment, _Mapping]] = ..., category: _Optional[_Union[_work_order_pb2.Category, str]] = ..., priority: _Optional[_Union[_work_order_pb2.Priority, str]] = ..., description: _Optional[str] = ...) -> None: ...

class ListOffersRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "include_closed")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_CLOSED_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    include_closed: bool
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., include_closed: _Optional[bool] = ...) -> None: ...

class ListOffersResponse(_message.Message):
    __slots__ = ("offers", "next_page_token")
    OFFERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    offers: _containers.RepeatedCompositeFieldContainer[Offer]
    next_page_token: str
    def __init__(self, offers: _Optional[_Iterable[_Union[Offer, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class AcceptOfferRequest(_message.Message):
    __slots__ = ("request_id", "offer_id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    offer_id: str
    def __init__(self, request_id: _Optional[str] = ..., offer_id: _Optional[str] = ...) -> None: ...

class AcceptOfferResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _work_order_pb2.WorkOrder
    def __init__(self, job: _Optional[_Union[_work_order_pb2.WorkOrder, _Mapping]] = ...) -> None: ...

class DeclineOfferRequest(_message.Message):
    __slots__ = ("request_id", "offer_id", "reason")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    offer_id: str
    reason: str
    def __init__(self, request_id: _Optional[str] = ..., offer_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class DeclineOfferResponse(_message.Message):
    __slots__ = ("offer",)
    OFFER_FIELD_NUMBER: _ClassVar[int]
    offer: Offer
    def __init__(self, offer: _Optional[_Union[Offer, _Mapping]] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "states")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATES_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    states: _containers.RepeatedScalarFieldContainer[_work_order_pb2.WorkOrderState]
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., states: _Optional[_Iterable[_Union[_work_order_pb2.WorkOrderState, str]]] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs", "next_page_token")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[_work_order_pb2.WorkOrder]
    next_page_token: str
    def __init__(self, jobs: _Optional[_Iterable[_Union[_work_order_pb2.WorkOrder, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ScheduleVisitRequest(_message.Message):
    __slots__ = ("request_id", "work_order_id", "window", "note")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    WORK_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    work_order_id: str
    window: _work_order_pb2.AppointmentWindow
    note: str
    def __init__(self, request_id: _Optional[str] = ..., work_order_id: _Optional[str] = ..., window: _Optional[_Union[_work_order_pb2.AppointmentWindow, _Mapping]] = ..., note: _Optional[str] = ...) -> None: ...

class ScheduleVisitResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _work_order_pb2.WorkOrder
    def __init__(self, job: _Optional[_Union[_work_order_pb2.WorkOrder, _Mapping]] = ...) -> None: ...

class ReportProgressRequest(_message.Message):
    __slots__ = ("request_id", "work_order_id", "kind", "eta", "note", "parts")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    WORK_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ETA_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    PARTS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    work_order_id: str
    kind: ProgressKind
    eta: _timestamp_pb2.Timestamp
    note: str
    parts: _containers.RepeatedCompositeFieldContainer[_work_order_pb2.PartLine]
    def __init__(self, request_id: _Optional[str] = ..., work_order_id: _Optional[str] = ..., kind: _Optional[_Union[ProgressKind, str]] = ..., eta: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., note: _Optional[str] = ..., parts: _Optional[_Iterable[_Union[_work_order_pb2.PartLine, _Mapping]]] = ...) -> None: ...

class ReportProgressResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _work_order_pb2.WorkOrder
    def __init__(self, job: _Optional[_Union[_work_order_pb2.WorkOrder, _Mapping]] = ...) -> None: ...

class ReportDelayRequest(_message.Message):
    __slots__ = ("request_id", "work_order_id", "cause", "new_eta", "note")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    WORK_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    CAUSE_FIELD_NUMBER: _ClassVar[int]
    NEW_ETA_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    work_order_id: str
    cause: _work_order_pb2.DelayCause
    new_eta: _timestamp_pb2.Timestamp
    note: str
    def __init__(self, request_id: _Optional[str] = ..., work_order_id: _Optional[str] = ..., cause: _Optional[_Union[_work_order_pb2.DelayCause, str]] = ..., new_eta: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., note: _Optional[str] = ...) -> None: ...

class ReportDelayResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _work_order_pb2.WorkOrder
    def __init__(self, job: _Optional[_Union[_work_order_pb2.WorkOrder, _Mapping]] = ...) -> None: ...

class CompleteWorkRequest(_message.Message):
    __slots__ = ("request_id", "work_order_id", "completion")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    WORK_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    work_order_id: str
    completion: _work_order_pb2.CompletionReport
    def __init__(self, request_id: _Optional[str] = ..., work_order_id: _Optional[str] = ..., completion: _Optional[_Union[_work_order_pb2.CompletionReport, _Mapping]] = ...) -> None: ...

class CompleteWorkResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _work_order_pb2.WorkOrder
    def __init__(self, job: _Optional[_Union[_work_order_pb2.WorkOrder, _Mapping]] = ...) -> None: ...

class CommentOnJobRequest(_message.Message):
    __slots__ = ("request_id", "work_order_id", "text")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    WORK_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    work_order_id: str
    text: str
    def __init__(self, request_id: _Optional[str] = ..., work_order_id: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class CommentOnJobResponse(_message.Message):
    __slots__ = ("job", "comment_id")
    JOB_FIELD_NUMBER: _ClassVar[int]
    COMMENT_ID_FIELD_NUMBER: _ClassVar[int]
    job: _work_order_pb2.WorkOrder
    comment_id: str
    def __init__(self, job: _Optional[_Union[_work_order_pb2.WorkOrder, _Mapping]] = ..., comment_id: _Optional[str] = ...) -> None: ...
