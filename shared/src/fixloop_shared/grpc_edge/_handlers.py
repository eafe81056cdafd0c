"""Wrapping a ``grpc.aio`` method handler's behaviour; what the edge's interceptors build on."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

Behavior = Callable[..., Any]
ErrorHook = Callable[[Exception, grpc.aio.ServicerContext], Awaitable[None]]
SetUp = Callable[[grpc.aio.ServicerContext], None]


def wrap_behavior(handler: grpc.RpcMethodHandler, wrap: Callable[[Behavior], Behavior]) -> Any:
    """The same handler (serializers included) with its behaviour passed through ``wrap``."""
    if handler.request_streaming and handler.response_streaming:
        return handler._replace(stream_stream=wrap(handler.stream_stream))
    if handler.request_streaming:
        return handler._replace(stream_unary=wrap(handler.stream_unary))
    if handler.response_streaming:
        return handler._replace(unary_stream=wrap(handler.unary_stream))
    return handler._replace(unary_unary=wrap(handler.unary_unary))


def around(behavior: Behavior, before: SetUp, on_error: ErrorHook | None) -> Behavior:
    """Wrap an async behaviour (coroutine or async generator) with a set-up step (given the
    call's context) and an error hook.

    Synchronous behaviours are returned unchanged: they run in an executor thread, outside the
    call's context, and so never see the authenticated principal (``authenticated_principal``
    and ``authenticated_tenant`` fail closed for them).
    """
    if inspect.isasyncgenfunction(behavior):

        async def streaming(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            # Each call runs in its own asyncio task, so what ``before`` sets in the context
            # stays with this call.
            before(context)
            try:
                async for response in behavior(request, context):
                    yield response
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                if on_error is None:
                    raise
                await on_error(exc, context)

        return streaming

    if inspect.iscoroutinefunction(behavior):

        async def single(request: Any, context: grpc.aio.ServicerContext) -> Any:
            before(context)
            try:
                return await behavior(request, context)
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                if on_error is None:
                    raise
                await on_error(exc, context)
                raise

        return single

    return behavior


def _set_status(context: grpc.aio.ServicerContext, status: grpc.Status) -> None:
    context.set_code(status.code)
    context.set_details(status.details)
    context.set_trailing_metadata(status.trailing_metadata)


def ending_handler(handler: grpc.RpcMethodHandler | None, status: grpc.Status) -> Any:
    """A handler of the same streaming kind that ends the call with ``status`` without reading
    the request, and without raising (a refusal costs less than a served call)."""

    async def end(_request: Any, context: grpc.aio.ServicerContext) -> None:
        _set_status(context, status)

    async def end_stream(_request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        _set_status(context, status)
        return
        yield  # type: ignore[unreachable]  # an async generator that yields nothing

    if handler is None or not (handler.request_streaming or handler.response_streaming):
        return grpc.unary_unary_rpc_method_handler(end)
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(end_stream)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(end)
    return grpc.unary_stream_rpc_method_handler(end_stream)
