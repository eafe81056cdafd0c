"""``fixloop webhooks ...``: tenants' webhook endpoints.

``list``, ``add`` (prints the signing secret once), ``test`` (one signed call, now), ``replay``
(send an endpoint's calls again, with their original ``webhook-id``), ``rotate-secret`` (a new
secret; calls are signed with both until the old one expires), ``enable``, ``disable``. The
commands use the notifications service's store (``FIXLOOP_NOTIFICATIONS_MONGODB_URI`` and
``FIXLOOP_NOTIFICATIONS_DATABASE``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.table import Table

from fixloop_notifications.cli import (
    EXIT_FAILURE,
    EXIT_USAGE,
    fail,
    moment_option,
    order_argument,
    out,
    uuid_argument,
    with_store,
)

if TYPE_CHECKING:
    from fixloop_notifications.settings import NotificationsSettings
    from fixloop_shared.store import Store

T = TypeVar("T")

app = typer.Typer(
    name="webhooks",
    help="Webhook endpoints of tenants: list, add, test, replay, rotate-secret, reseal, enable, "
    "disable.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def webhooks() -> None:
    """Webhook endpoints of tenants: list, add, test, replay, rotate-secret, reseal, enable,
    disable."""


def _registry(store: Store, settings: NotificationsSettings) -> Any:
    from fixloop_notifications.adapters.webhook_registry import (
        MongoWebhookRegistry,
        create_webhook_indexes,
    )

    async def make() -> MongoWebhookRegistry:
        await create_webhook_indexes(store)
        return MongoWebhookRegistry(
            store, allow_loopback=settings.webhook_allow_loopback, box=settings.secret_box()
        )

    return make()


TenantOption = Annotated[str | None, typer.Option("--tenant", help="Only this tenant's endpoints.")]


@app.command("list")
def list_endpoints(
    tenant: TenantOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """The endpoints, their state and how their deliveries are going (never their secrets)."""

    async def work(store: Store, settings: NotificationsSettings) -> list[Any]:
        registry = await _registry(store, settings)
        endpoints: list[Any] = await registry.list(tenant)
        return endpoints

    endpoints = with_store(work)
    if as_json:
        for endpoint in endpoints:
            row = {
                "endpoint_id": endpoint.endpoint_id,
                "tenant": endpoint.tenant,
                "url": endpoint.url,
                "event_types": list(endpoint.event_types),
                "enabled": endpoint.enabled,
                "disabled_reason": endpoint.disabled_reason,
                "consecutive_failures": endpoint.consecutive_failures,
                "failing_since": endpoint.failing_since.isoformat()
                if endpoint.failing_since
                else None,
            }
            sys.stdout.write(json.dumps(row) + "\n")
        return
    if not endpoints:
        out.print("no webhook endpoints" + (f" for {tenant}" if tenant else ""))
        return
    table = Table(title="Webhook endpoints", title_justify="left")
    for column in ("id", "tenant", "url", "events", "state", "failures"):
        table.add_column(column, no_wrap=column == "id")
    for endpoint in endpoints:
        state = "enabled" if endpoint.enabled else f"disabled ({endpoint.disabled_reason})"
        failing = (
            f"{endpoint.consecutive_failures} since {endpoint.failing_since:%Y-%m-%d %H:%M}"
            if endpoint.failing_since
            else str(endpoint.consecutive_failures)
        )
        table.add_row(
            endpoint.endpoint_id,
            endpoint.tenant,
            endpoint.url,
            ", ".join(endpoint.event_types) or "all",
            state,
            failing,
        )
    out.print(table)


@app.command("add")
def add_endpoint(
    tenant: Annotated[str, typer.Option("--tenant", help="The tenant whose events it gets.")],
    url: Annotated[str, typer.Option("--url", help="https:// URL of the receiver.")],
    event: Annotated[
        list[str] | None,
        typer.Option("--event", help="Only this event type (repeat; default: all lifecycle)."),
    ] = None,
) -> None:
    """Register an endpoint; prints its id and signing secret (shown once). A host that resolves
    to an internal address is refused; one that does not resolve yet is taken with a note."""
    from fixloop_notifications.adapters.webhooks_http import address_refusal
    from fixloop_notifications.domain.webhooks import validate_endpoint_url

    async def work(store: Store, settings: NotificationsSettings) -> tuple[Any, bool]:
        registry = await _registry(store, settings)
        try:
            validate_endpoint_url(url, allow_loopback=registry.allow_loopback)
            refusal, resolved = await address_refusal(url, allow_loopback=registry.allow_loopback)
            if refusal is not None:
                fail(f"endpoint URL refused: {refusal}", EXIT_USAGE)
            return await registry.add(tenant, url, event or [], datetime.now(UTC)), resolved
        except ValueError as exc:
            fail(" ".join(str(exc).split())[:300], EXIT_USAGE)

    endpoint, resolved = with_store(work)
    out.print(f"endpoint {endpoint.endpoint_id} for {endpoint.tenant}: {endpoint.url}")
    out.print(f"signing secret (give it to the receiver; shown once): {endpoint.secrets[0].value}")
    if not resolved:
        out.print(
            "note: the host does not resolve from here; each call resolves it and refuses "
            "internal addresses"
        )


def _endpoint_command(
    endpoint_id: str, change: Callable[[Any, str, datetime], Awaitable[T]]
) -> tuple[Any, T]:
    uuid_argument(endpoint_id, "ENDPOINT")

    async def work(store: Store, settings: NotificationsSettings) -> tuple[Any, T]:
        registry = await _registry(store, settings)
        endpoint = await registry.get(endpoint_id)
        if endpoint is None:
            fail(f"no webhook endpoint {endpoint_id}")
        result = await change(registry, endpoint_id, datetime.now(UTC))
        return endpoint, result

    return with_store(work)


EndpointArgument = Annotated[str, typer.Argument(metavar="ENDPOINT", help="Endpoint id.")]


@app.command("enable")
def enable_endpoint(endpoint_id: EndpointArgument) -> None:
    """Deliver to the endpoint again (its failure count starts over)."""

    async def change(registry: Any, eid: str, now: datetime) -> Any:
        return await registry.set_enabled(eid, True, now)

    _endpoint_command(endpoint_id, change)
    out.print(f"endpoint {endpoint_id} enabled")


@app.command("disable")
def disable_endpoint(endpoint_id: EndpointArgument) -> None:
    """Stop delivering to the endpoint (its pending calls fail as disabled)."""

    async def change(registry: Any, eid: str, now: datetime) -> Any:
        return await registry.set_enabled(eid, False, now)

    _endpoint_command(endpoint_id, change)
    out.print(f"endpoint {endpoint_id} disabled")


@app.command("rotate-secret")
def rotate_secret(
    endpoint_id: EndpointArgument,
    keep_hours: Annotated[
        float, typer.Option("--keep-hours", min=0, max=720, help="Keep signing with the old one.")
    ] = 24.0,
) -> None:
    """A new signing secret; calls are signed with both until the old one expires."""

    async def change(registry: Any, eid: str, now: datetime) -> Any:
        return await registry.rotate_secret(eid, now, timedelta(hours=keep_hours))

    _, endpoint = _endpoint_command(endpoint_id, change)
    newest = endpoint.secrets[0].value if endpoint is not None else "?"
    out.print(f"new signing secret (shown once): {newest}")


@app.command("reseal")
def reseal() -> None:
    """Seal every endpoint's signing secrets under the current key
    (``FIXLOOP_NOTIFICATIONS_WEBHOOK_SECRET_KEY``), after moving the old key to
    ``FIXLOOP_NOTIFICATIONS_WEBHOOK_PREVIOUS_SECRET_KEYS``; then the old key can go."""

    async def work(store: Store, settings: NotificationsSettings) -> tuple[int, int]:
        registry = await _registry(store, settings)
        done: tuple[int, int] = await registry.reseal(datetime.now(UTC))
        return done

    resealed, unreadable = with_store(work)
    out.print(f"resealed the secrets of {resealed} endpoint(s) under the current key")
    if unreadable:
        fail(
            f"{unreadable} endpoint(s) have a secret no configured key opens: keep their key in "
            "FIXLOOP_NOTIFICATIONS_WEBHOOK_PREVIOUS_SECRET_KEYS, or rotate their secrets"
        )


@app.command("test")
def test_endpoint(endpoint_id: EndpointArgument) -> None:
    """Send one signed ``fixloop.webhook.test.v1`` call now and say how it went."""
    import uuid

    from fixloop_notifications.adapters.webhooks_http import WebhookSender
    from fixloop_notifications.domain.delivery import DeliveryError
    from fixloop_notifications.domain.webhooks import OutgoingWebhook

    async def change(registry: Any, eid: str, now: datetime) -> str:
        endpoint = await registry.get(eid)
        body = json.dumps(
            {
                "specversion": "1.0",
                "id": str(uuid.uuid4()),
                "type": "fixloop.webhook.test.v1",
                "source": "fixloop/notifications",
                "time": now.isoformat().replace("+00:00", "Z"),
                "subject": eid,
                "tenant": endpoint.tenant,
                "data": {"endpoint_id": eid, "message": "test call from fixloop webhooks test"},
            }
        )
        sender = WebhookSender(
            registry, timeout_seconds=10.0, allow_loopback=registry.allow_loopback
        )
        call = OutgoingWebhook(
            webhook_id=f"msg_test_{uuid.uuid4().hex}",
            endpoint_id=eid,
            url=endpoint.url,
            event_type="fixloop.webhook.test.v1",
            body=body,
        )
        try:
            await sender.send(call)
        except DeliveryError as exc:
            return f"failed: {exc.detail}"
        finally:
            await sender.close()
        return "delivered (2xx)"

    _, outcome = _endpoint_command(endpoint_id, change)
    out.print(f"test call to {endpoint_id}: {outcome}")
    if outcome.startswith("failed"):
        raise typer.Exit(EXIT_FAILURE)


@app.command("replay")
def replay(
    endpoint_id: EndpointArgument,
    since: Annotated[
        str, typer.Option("--since", help="Calls recorded since (ISO 8601, or 30m, 2h, 3d).")
    ] = "24h",
    order: Annotated[str | None, typer.Option("--order", help="Only this work order's.")] = None,
) -> None:
    """Send the endpoint's calls again (sent or failed), with their original ``webhook-id``."""
    from fixloop_notifications.adapters.mongo import MongoDeliveryLog

    moment = moment_option(since, "--since")
    if order is not None:
        order_argument(order, "--order")

    uuid_argument(endpoint_id, "ENDPOINT")

    async def work(store: Store, settings: NotificationsSettings) -> int:
        registry = await _registry(store, settings)
        endpoint = await registry.get(endpoint_id)
        if endpoint is None:
            fail(f"no webhook endpoint {endpoint_id}")
        if not endpoint.enabled:
            fail(f"endpoint {endpoint_id} is disabled; enable it first (fixloop webhooks enable)")
        return await MongoDeliveryLog(store).replay(
            f"webhook:{endpoint_id}", since=moment, now=datetime.now(UTC), work_order_id=order
        )

    count = with_store(work)
    out.print(f"{count} call{'s' if count != 1 else ''} to {endpoint_id} to be sent again")


__all__ = ["app"]
