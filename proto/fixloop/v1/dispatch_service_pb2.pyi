import datetime

from fixloop.v1 import contractor_jobs_service_pb2 as _contractor_jobs_service_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DispatchOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DISPATCH_OUTCOME_UNSPECIFIED: _ClassVar[DispatchOutcome]
    DISPATCH_OUTCOME_OFFERED: _ClassVar[DispatchOutcome]
    DISPATCH_OUTCOME_UNFILLED: _ClassVar[DispatchOutcome]
    DISPATCH_OUTCOME_ASSIGNED_BY_OPERATOR: _ClassVar[DispatchOutcome]
DISPATCH_OUTCOME_UNSPECIFIED: DispatchOutcome
DISPATCH_OUTCOME_OFFERED: DispatchOutcome
DISPATCH_OUTCOME_UNFILLED: DispatchOutcome
DISPATCH_OUTCOME_ASSIGNED_BY_OPERATOR: DispatchOutcome

class ExplainDispatchRequest(_message.Message):
    __slots__ = ("work_order_id",)
    WORK_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    work_order_id: str
    def __init__(self, work_order_id: _Optional[str] = ...) -> None: ...

class ExplainDispatchResponse(_message.Message):
    __slots__ = ("work_order_id", "rounds")
    WORK_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    ROUNDS_FIELD_NUMBER: _ClassVar[int]
    work_order_id: str
    rounds: _containers.RepeatedCompositeFieldContainer[DispatchRound]
    def __init__(self, work_order_id: _Optional[str] = ..., rounds: _Optional[_Iterable[_Union[DispatchRound, _Mapping]]] = ...) -> None: ...

class DispatchRound(_message.Message):
    __slots__ = ("dispatch_round", "decided_at", "outcome", "offered_contractor_ids", "reason", "candidates_total", "candidates", "candidates_omitted")
    DISPATCH_ROUND_FIELD_NUMBER: _ClassVar[int]
    DECIDED_AT_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    OFFERED_CONTRACTOR_IDS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_OMITTED_FIELD_NUMBER: _ClassVar[int]
    dispatch_round: int
    decided_at: _timestamp_pb2.Timestamp
    outcome: DispatchOutcome
    offered_contractor_ids: _containers.RepeatedScalarFieldContainer[str]
    reason: str
    candidates_total: int
    candidates: _containers.RepeatedCompositeFieldContainer[DispatchCandidate]
    candidates_omitted: int
    def __init__(self, dispatch_round: _Optional[int] = ..., decided_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., outcome: _Optional[_Union[DispatchOutcome, str]] = ..., offered_contractor_ids: _Optional[_Iterable[str]] = ..., reason: _Optional[str] = ..., candidates_total: _Optional[int] = ..., candidates: _Optional[_Iterable[_Union[DispatchCandidate, _Mapping]]] = ..., candidates_omitted: _Optional[int] = ...) -> None: ...

class DispatchCandidate(_message.Message):
    __slots__ = ("contractor_id", "eligible", "rank", "total_score", "score_components", "exclusion_reasons", "travel_km", "travel_basis", "on_call_layer", "skill_level", "preferred", "offered", "offer")
    CONTRACTOR_ID_FIELD_NUMBER: _ClassVar[int]
    ELIGIBLE_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SCORE_FIELD_NUMBER: _ClassVar[int]
    SCORE_COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    EXCLUSION_REASONS_FIELD_NUMBER: _ClassVar[int]
    TRAVEL_KM_FIELD_NUMBER: _ClassVar[int]
    TRAVEL_BASIS_FIELD_NUMBER: _ClassVar[int]
    ON_CALL_LAYER_FIELD_NUMBER: _ClassVar[int]
    SKILL_LEVEL_FIELD_NUMBER: _ClassVar[int]
    PREFERRED_FIELD_NUMBER: _ClassVar[int]
    OFFERED_FIELD_NUMBER: _ClassVar[int]
    OFFER_FIELD_NUMBER: _ClassVar[int]
    contractor_id: str
    eligible: bool
    rank: int
    total_score: float
    score_components: _containers.RepeatedCompositeFieldContainer[ScoreComponent]
    exclusion_reasons: _containers.RepeatedScalarFieldContainer[str]
    travel_km: float
    travel_basis: str
    on_call_layer: str
    skill_level: int
    preferred: bool
    offered: bool
    offer: CandidateOffer
    def __init__(self, contractor_id: _Optional[str] = ..., eligible: _Optional[bool] = ..., rank: _Optional[int] = ..., total_score: _Optional[float] = ..., score_components: _Optional[_Iterable[_Union[ScoreComponent, _Mapping]]] = ..., exclusion_reasons: _Optional[_Iterable[str]] = ..., travel_km: _Optional[float] = ..., travel_basis: _Optional[str] = ..., on_call_layer: _Optional[str] = ..., skill_level: _Optional[int] = ..., preferred: _Optional[bool] = ..., offered: _Optional[bool] = ..., offer: _Optional[_Union[CandidateOffer, _Mapping]] = ...) -> None: ...

class ScoreComponent(_message.Message):
    __slots__ = ("name", "value", "weight")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: float
    weight: float
    def __init__(self, name: _Optional[str] = ..., value: _Optional[float] = ..., weight: _Optional[float] = ...) -> None: ...

class CandidateOffer(_message.Message):
    __slots__ = ("offer_id", "status", "offered_at", "expires_at", "closed_at", "reason")
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    OFFERED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    CLOSED_AT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    offer_id: str
    status: _contractor_jobs_service_pb2.OfferStatus
    offered_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    closed_at: _timestamp_pb2.Timestamp
    reason: str
    def __init__(self, offer_id: _Optional[str] = ..., status: _Optional[_Union[_contractor_jobs_service_pb2.OfferStatus, str]] = ..., offered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., closed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...
