"""The one mapping of the error taxonomy to gRPC statuses (fixloop_shared.grpc_edge.errors)."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from fixloop_shared.errors import (
    Conflict,
    DomainError,
    FieldViolation,
    Forbidden,
    IllegalTransition,
    InvalidInput,
    NotFound,
)
from fixloop_shared.grpc_edge.errors import status_code, status_for


def _rich(status: grpc.Status) -> status_pb2.Status:
    [(key, value)] = status.trailing_metadata
    assert key == "grpc-status-details-bin"
    return status_pb2.Status.FromString(value)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (IllegalTransition("closed orders stay closed"), grpc.StatusCode.FAILED_PRECONDITION),
        (NotFound("no such order"), grpc.StatusCode.NOT_FOUND),
        (Conflict("same id, other facts"), grpc.StatusCode.ABORTED),
        (Forbidden("not yours"), grpc.StatusCode.PERMISSION_DENIED),
        (InvalidInput("bad"), grpc.StatusCode.INVALID_ARGUMENT),
        (DomainError("refused"), grpc.StatusCode.FAILED_PRECONDITION),
    ],
)
def test_each_domain_error_has_its_canonical_code(
    error: DomainError, code: grpc.StatusCode
) -> None:
    assert status_code(error) == code
    assert status_for(error).code == code


def test_invalid_input_carries_one_field_violation_per_field() -> None:
    error = InvalidInput(
        "the request has invalid fields",
        [FieldViolation("site.postal_code", "too long"), FieldViolation("priority", "unknown")],
    )
    status = status_for(error)
    assert status.details == "the request has invalid fields"
    [detail] = _rich(status).details
    bad_request = error_details_pb2.BadRequest()
    assert detail.Unpack(bad_request)
    assert [(v.field, v.description) for v in bad_request.field_violations] == [
        ("site.postal_code", "too long"),
        ("priority", "unknown"),
    ]


def test_not_found_tells_the_caller_neither_the_id_nor_the_internal_message() -> None:
    class OrderNotFound(NotFound):
        caller_message = "work order not found"
        resource_type = "fixloop.v1.WorkOrder"

    status = status_for(OrderNotFound("tenant 'acme' has no work order 'wo-1'"))
    assert status.details == "work order not found"
    [detail] = _rich(status).details
    info = error_details_pb2.ResourceInfo()
    assert detail.Unpack(info)
    assert info.resource_type == "fixloop.v1.WorkOrder"
    assert "wo-1" not in _rich(status).SerializeToString().decode("latin-1")
    assert status_for(NotFound("tenant 'acme' has no order 'wo-1'")).details == "not found"


def test_an_unknown_status_name_is_a_programming_error() -> None:
    class OddError(DomainError):
        status = "NOT_A_CODE"

    with pytest.raises(ValueError, match="NOT_A_CODE"):
        status_code(OddError("x"))
