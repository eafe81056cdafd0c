"""SMS and webhook channels against real servers: the devkit's SMS and webhook sinks run as
processes, a scripted webhook receiver fails in the ways endpoints do, and the endpoint registry
runs on the real MongoDB-wire store."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from fixloop_devkit.devstack import free_port
from fixloop_devkit.testing import unique
from fixloop_notifications.adapters.secret_box import SecretBox
from fixloop_notifications.adapters.sms_http import HttpSmsSender
from fixloop_notifications.adapters.webhook_registry import (
    WEBHOOK_ENDPOINTS,
    MongoWebhookRegistry,
    create_webhook_indexes,
)
from fixloop_notifications.adapters.webhooks_http import (
    WebhookEndpointDisabled,
    WebhookSender,
    address_refusal,
    webhook_client,
)
from fixloop_notifications.domain.delivery import DeliveryError
from fixloop_notifications.domain.sms import compose_sms
from fixloop_notifications.domain.webhooks import (
    DisabledReason,
    DisablePolicy,
    OutgoingWebhook,
    WebhookEndpoint,
)
from fixloop_shared.store import MongoClient, Store
from fixloop_shared.topics import Service
from tests.integration.receivers import ScriptedEndpoint, Sink, start_sink

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


# -- sinks as processes --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sms_sink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sink]:
    sink = start_sink("fixloop_devkit.smssink", tmp_path_factory.mktemp("sms") / "out")
    yield sink
    if sink.proc.poll() is None:
        sink.stop()


@pytest.fixture(scope="module")
def webhook_sink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sink]:
    sink = start_sink("fixloop_devkit.webhooksink", tmp_path_factory.mktemp("hooks") / "out")
    yield sink
    if sink.proc.poll() is None:
        sink.stop()


@pytest.fixture
async def store(mongo_client: MongoClient, database_name: str) -> Store:
    store = Store(mongo_client, database_name, service=Service.NOTIFICATIONS)
    await create_webhook_indexes(store)
    return store


def sms_sender(sink: Sink, account: str = "AC0001") -> HttpSmsSender:
    return HttpSmsSender(
        base_url=sink.base_url, account=account, token="dev-token", sender="Fixloop"
    )


# -- SMS -----------------------------------------------------------------------------------------


async def test_an_sms_reaches_the_sink_once_however_often_it_is_sent(sms_sink: Sink) -> None:
    message_id = unique("sms")
    sms = compose_sms(
        message_id=message_id,
        to="0151 23456789",
        region="DE",
        sender="Fixloop",
        text="Ihr Techniker ist unterwegs. Voraussichtliche Ankunft 14:30 €",
    )
    sender = sms_sender(sms_sink)
    try:
        first = await sender.send(sms)
        again = await sender.send(sms)  # a re-send after a crash: same idempotency key
    finally:
        await sender.close()
    assert first is not None
    assert first.startswith("SM")
    assert again == first
    stored = [m for m in sms_sink.stored() if m["idempotency_key"] == message_id]
    assert len(stored) == 1
    assert stored[0] | {"received_at": None} == {
        "sid": first,
        "received_at": None,
        "account": "AC0001",
        "to": "+4915123456789",
        "from": "Fixloop",
        "body": sms.text,
        "idempotency_key": message_id,
    }


async def test_the_sms_sink_refuses_what_the_provider_refuses(sms_sink: Sink) -> None:
    sender = sms_sender(sms_sink)
    bad = compose_sms(message_id=unique("sms"), to="+4930901820", region=None, sender="", text="")
    try:
        with pytest.raises(DeliveryError) as caught:
            await sender.send(bad)  # no text
    finally:
        await sender.close()
    assert caught.value.permanent
    assert "answered 400" in caught.value.detail
    url = f"{sms_sink.base_url}/2010-04-01/Accounts/AC0001/Messages.json"
    form = {"To": "+4930901820", "From": "Fixloop", "Body": "x"}
    async with httpx.AsyncClient() as client:
        no_auth = await client.post(url, data=form)
        other_account = await client.post(url, data=form, auth=("AC0002", "t"))
        not_e164 = await client.post(url, data={**form, "To": "030 901820"}, auth=("AC0001", "t"))
        too_big = await client.post(url, data={**form, "Body": "x" * 300_000}, auth=("AC0001", "t"))
        elsewhere = await client.post(f"{sms_sink.base_url}/other", data=form)
    assert (no_auth.status_code, no_auth.json()["code"]) == (401, 20003)
    assert other_account.status_code == 401
    assert (not_e164.status_code, not_e164.json()["code"]) == (400, 21211)
    assert too_big.status_code == 413
    assert elsewhere.status_code == 404


async def test_an_unreachable_provider_is_a_transient_failure(tmp_path: Path) -> None:
    sender = HttpSmsSender(
        base_url=f"http://127.0.0.1:{free_port()}", account="AC1", token="t", sender="Fixloop"
    )
    sms = compose_sms(message_id="m", to="+4930901820", region=None, sender="", text="hi")
    try:
        with pytest.raises(DeliveryError) as caught:
            await sender.send(sms)
    finally:
        await sender.close()
    assert not caught.value.permanent


def test_sinks_exit_cleanly_on_sigterm_and_sigint(tmp_path: Path) -> None:
    for module in ("fixloop_devkit.smssink", "fixloop_devkit.webhooksink"):
        for sig in (signal.SIGTERM, signal.SIGINT):
            sink = start_sink(module, tmp_path / f"{module}-{sig.name}")
            assert sink.stop(sig) == 0


# -- the endpoint registry -----------------------------------------------------------------------


async def test_endpoints_are_registered_listed_and_filtered_by_tenant_and_event(
    store: Store,
) -> None:
    registry = MongoWebhookRegistry(store)
    everything = await registry.add("acme", "https://hooks.acme.example/all", [], T0)
    closed_only = await registry.add(
        "acme", "https://hooks.acme.example/closed", ["workorder.closed"], T0 + timedelta(1)
    )
    other = await registry.add("globex", "https://hooks.globex.example/", [], T0)
    assert everything.secrets[0].value.startswith("whsec_")
    assert [e.endpoint_id for e in await registry.list("acme")] == [
        everything.endpoint_id,
        closed_only.endpoint_id,
    ]
    assert len(await registry.list()) == 3
    assert await registry.get(everything.endpoint_id) == everything
    assert await registry.get(everything.endpoint_id, tenant="globex") is None
    received = await registry.endpoints_for("acme", "workorder.received")
    assert [e.endpoint_id for e in received] == [everything.endpoint_id]
    closed = await registry.endpoints_for("acme", "workorder.closed")
    assert {e.endpoint_id for e in closed} == {everything.endpoint_id, closed_only.endpoint_id}
    assert [e.endpoint_id for e in await registry.endpoints_for("globex", "x")] == [
        other.endpoint_id
    ]
    # Operator-looking values are data, never operators.
    assert await registry.get('{"$ne": null}') is None
    assert await registry.endpoints_for('{"$ne": null}', "workorder.closed") == []
    assert await registry.list('{"$gt": ""}') == []
    with pytest.raises(ValueError, match="https"):
        await registry.add("acme", "http://hooks.acme.example/", [], T0)


async def test_a_rotated_secret_signs_beside_the_new_one_until_it_expires(store: Store) -> None:
    registry = MongoWebhookRegistry(store)
    endpoint = await registry.add("acme", "https://hooks.acme.example/", [], T0)
    old = endpoint.secrets[0].value
    rotated = await registry.rotate_secret(endpoint.endpoint_id, T0, timedelta(hours=24))
    assert rotated is not None
    new = rotated.secrets[0].value
    assert rotated.active_secrets(T0 + timedelta(hours=23)) == (new, old)
    assert rotated.active_secrets(T0 + timedelta(hours=24)) == (new,)
    assert await registry.get(endpoint.endpoint_id) == rotated
    again = await registry.rotate_secret(
        endpoint.endpoint_id, T0 + timedelta(hours=30), timedelta(0)
    )
    assert again is not None
    assert len(again.secrets) == 1
    assert again.secrets[0].value not in {old, new}
    assert await registry.rotate_secret("not-an-id", T0, timedelta(hours=1)) is None


async def test_persistent_failure_disables_an_endpoint_exactly_once(store: Store) -> None:
    registry = MongoWebhookRegistry(store)
    endpoint = await registry.add("acme", "https://hooks.acme.example/", [], T0)
    key = endpoint.endpoint_id
    policy = DisablePolicy(after_failures=3, after=timedelta(hours=1))
    assert await registry.record_failure(key, T0, policy) is None
    assert await registry.record_failure(key, T0 + timedelta(minutes=5), policy) is None
    await registry.record_success(key, T0 + timedelta(minutes=6))  # the run ends
    fresh = await registry.get(key)
    assert fresh is not None
    assert (fresh.consecutive_failures, fresh.failing_since) == (0, None)
    for minutes in (10, 20, 30):
        assert await registry.record_failure(key, T0 + timedelta(minutes=minutes), policy) is None
    failing = await registry.get(key)
    assert failing is not None
    assert (failing.consecutive_failures, failing.failing_since) == (3, T0 + timedelta(minutes=10))
    later = T0 + timedelta(hours=2)
    outcomes = await asyncio.gather(
        *(registry.record_failure(key, later, policy) for _ in range(5))
    )
    disabled = [outcome for outcome in outcomes if outcome is not None]
    assert len(disabled) == 1
    assert disabled[0].disabled_reason is DisabledReason.FAILING
    assert disabled[0].disabled_at == later
    assert await registry.endpoints_for("acme", "workorder.closed") == []
    assert await registry.set_enabled(key, True, later + timedelta(hours=1))
    back = await registry.get(key)
    assert back is not None
    assert (back.enabled, back.consecutive_failures, back.disabled_reason) == (True, 0, None)


# -- webhooks over HTTP --------------------------------------------------------------------------


def outgoing(endpoint: WebhookEndpoint, event_type: str = "workorder.received") -> OutgoingWebhook:
    body = json.dumps({"type": event_type, "data": {"id": unique("wo"), "site": "Zürich"}})
    return OutgoingWebhook(
        webhook_id=unique("msg"),
        endpoint_id=endpoint.endpoint_id,
        url=endpoint.url,
        event_type=event_type,
        body=body,
    )


async def test_a_webhook_reaches_the_sink_signed(store: Store, webhook_sink: Sink) -> None:
    registry = MongoWebhookRegistry(store)
    endpoint = await registry.add("acme", f"{webhook_sink.base_url}/fixloop", [], T0)
    message = outgoing(endpoint)
    sender = WebhookSender(registry, timeout_seconds=5)
    try:
        await sender.send(message)
    finally:
        await sender.close()
    (stored,) = [
        r for r in webhook_sink.stored() if r["headers"]["webhook-id"] == message.webhook_id
    ]
    assert stored["path"] == "/fixloop"
    assert stored["headers"]["user-agent"] == "Fixloop-Webhooks/1"
    assert stored["body"] == message.body
    secret = endpoint.secrets[0].value
    assert Webhook(secret).verify(stored["body"], stored["headers"])["data"]["site"] == "Zürich"


async def test_an_endpoint_failing_then_hanging_then_answering_gets_the_webhook(
    store: Store, scripted: ScriptedEndpoint
) -> None:
    registry = MongoWebhookRegistry(store)
    endpoint = await registry.add("acme", f"http://127.0.0.1:{scripted.port}/hook", [], T0)
    scripted.script = [500, "hang"]
    message = outgoing(endpoint)
    sender = WebhookSender(registry, timeout_seconds=0.5)
    errors: list[DeliveryError] = []
    try:
        for _ in range(2):
            with pytest.raises(DeliveryError) as caught:
                await sender.send(message)
            errors.append(caught.value)
        during = await registry.get(endpoint.endpoint_id)
        await sender.send(message)
    finally:
        await sender.close()
    assert [error.permanent for error in errors] == [False, False]
    assert "answered 500" in errors[0].detail
    assert "did not answer within" in errors[1].detail
    assert during is not None
    assert during.consecutive_failures == 2
    after = await registry.get(endpoint.endpoint_id)
    assert after is not None
    assert (after.consecutive_failures, after.failing_since, after.enabled) == (0, None, True)
    assert len(scripted.requests) == 3
    secret = endpoint.secrets[0].value
    for headers, body in scripted.requests:
        assert headers["webhook-id"] == message.webhook_id  # the same on every attempt
        Webhook(secret).verify(body, headers)


async def test_gone_is_permanent_and_disables_the_endpoint(
    store: Store, scripted: ScriptedEndpoint
) -> None:
    registry = MongoWebhookRegistry(store)
    endpoint = await registry.add("acme", f"http://127.0.0.1:{scripted.port}/hook", [], T0)
    scripted.script = [410]
    sender = WebhookSender(registry, timeout_seconds=2)
    try:
        with pytest.raises(WebhookEndpointDisabled) as caught:
            await sender.send(outgoing(endpoint))
        with pytest.raises(DeliveryError, match="disabled") as again:
            await sender.send(outgoing(endpoint))
    finally:
        await sender.close()
    assert caught.value.permanent
    assert caught.value.endpoint.disabled_reason is DisabledReason.GONE
    assert again.value.permanent
    assert len(scripted.requests) == 1  # a disabled endpoint is not called
    assert await registry.endpoints_for("acme", "workorder.received") == []


def resolving(table: dict[str, list[str]]) -> Any:
    """A resolver answering from ``table`` (host -> addresses), recording what it was asked."""
    asked: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        return list(table.get(host, []))

    resolve.asked = asked  # type: ignore[attr-defined]
    return resolve


async def test_a_webhook_connects_to_the_address_its_host_was_checked_at(
    scripted: ScriptedEndpoint,
) -> None:
    """The connection goes to the address the name resolved to and was checked at, not to a
    second lookup of the name (which could answer differently: DNS rebinding)."""
    resolver = resolving({"hooks.acme.test": ["127.0.0.1"]})
    client = webhook_client(2, allow_loopback=True, resolver=resolver)
    try:
        answer = await client.post(f"http://hooks.acme.test:{scripted.port}/hook", content=b"{}")
    finally:
        await client.aclose()
    assert answer.status_code == 200
    assert resolver.asked == ["hooks.acme.test"]
    ((headers, body),) = scripted.requests
    assert headers["host"] == f"hooks.acme.test:{scripted.port}"
    assert body == b"{}"


@pytest.mark.parametrize(
    ("addresses", "reason"),
    [
        (["10.1.2.3"], "10.1.2.3, a private network address: refused"),
        (["169.254.169.254"], "a link-local address: refused"),
        (["93.184.216.34", "192.168.0.7"], "192.168.0.7, a private network address: refused"),
        (["::ffff:10.0.0.1"], "a private network address: refused"),
        (["fd00::1"], "fd00::1, a private network address: refused"),
        (["100.64.0.9"], "not a public internet address: refused"),
        (["127.0.0.1"], "127.0.0.1, this machine: refused"),
        ([], "resolves to no address"),
    ],
)
async def test_a_host_resolving_inside_is_refused_before_anything_is_sent(
    store: Store, scripted: ScriptedEndpoint, addresses: list[str], reason: str
) -> None:
    registry = MongoWebhookRegistry(store)
    endpoint = await registry.add("acme", "https://hooks.acme.example/fixloop", [], T0)
    resolver = resolving({"hooks.acme.example": addresses})
    client = webhook_client(2, allow_loopback=False, resolver=resolver)
    sender = WebhookSender(registry, client, timeout_seconds=2, allow_loopback=False)
    try:
        with pytest.raises(DeliveryError) as caught:
            await sender.send(outgoing(endpoint))
    finally:
        await client.aclose()
    assert reason in caught.value.detail
    assert not caught.value.permanent  # counted on the endpoint: a lasting refusal disables it
    after = await registry.get(endpoint.endpoint_id)
    assert after is not None
    assert after.consecutive_failures == 1
    assert scripted.requests == []


async def test_registering_an_endpoint_looks_where_its_host_points() -> None:
    inside = resolving({"hooks.acme.example": ["10.9.8.7"]})
    refusal, resolved = await address_refusal(
        "https://hooks.acme.example/x", allow_loopback=False, resolver=inside
    )
    assert resolved
    assert refusal is not None
    assert "10.9.8.7, a private network address: refused" in refusal
    outside = resolving({"hooks.acme.example": ["93.184.216.34"]})
    assert await address_refusal(
        "https://hooks.acme.example:8443/x", allow_loopback=False, resolver=outside
    ) == (None, True)

    async def unknown(host: str, port: int) -> list[str]:
        raise OSError(host)

    assert await address_refusal(
        "https://hooks.acme.example/x", allow_loopback=False, resolver=unknown
    ) == (None, False)


async def test_after_a_rotation_receivers_with_either_secret_verify(
    store: Store, scripted: ScriptedEndpoint
) -> None:
    registry = MongoWebhookRegistry(store)
    endpoint = await registry.add("acme", f"http://127.0.0.1:{scripted.port}/hook", [], T0)
    now = datetime.now(UTC)
    rotated = await registry.rotate_secret(endpoint.endpoint_id, now, timedelta(hours=1))
    assert rotated is not None
    sender = WebhookSender(registry, timeout_seconds=2)
    try:
        await sender.send(outgoing(endpoint))
    finally:
        await sender.close()
    ((headers, body),) = scripted.requests
    Webhook(endpoint.secrets[0].value).verify(body, headers)
    Webhook(rotated.secrets[0].value).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 43 + "=").verify(body, headers)


# -- signing secrets at rest ---------------------------------------------------------------------

OLD_KEY = "the-old-webhook-secret-key-" + "o" * 20
NEW_KEY = "the-new-webhook-secret-key-" + "n" * 20


async def test_signing_secrets_are_stored_sealed_and_read_back_with_the_key(store: Store) -> None:
    registry = MongoWebhookRegistry(store, box=SecretBox([OLD_KEY]))
    endpoint = await registry.add(unique("sealed"), "https://hooks.acme.example/a", [], T0)
    secret = endpoint.secrets[0].value
    raw = await store.db[WEBHOOK_ENDPOINTS].find_one({"_id": endpoint.endpoint_id})
    assert raw is not None
    assert secret.removeprefix("whsec_") not in json.dumps(raw, default=str)
    read = await registry.get(endpoint.endpoint_id)
    assert read is not None
    assert [s.value for s in read.secrets] == [secret]

    # Read with a key that is not the one it was sealed under: no secret, so nothing is signed
    # (and sent) with a wrong one.
    stranger = MongoWebhookRegistry(store, box=SecretBox([NEW_KEY]))
    unread = await stranger.get(endpoint.endpoint_id)
    assert unread is not None
    assert unread.secrets == ()
    sender = WebhookSender(stranger, timeout_seconds=1)
    try:
        with pytest.raises(DeliveryError, match="no active signing secret") as caught:
            await sender.send(outgoing(endpoint))
    finally:
        await sender.close()
    assert caught.value.permanent


async def test_a_key_rotation_reseals_every_endpoint_under_the_new_key(store: Store) -> None:
    tenant = unique("reseal")
    before = MongoWebhookRegistry(store, box=SecretBox([OLD_KEY]))
    first = await before.add(tenant, "https://hooks.acme.example/1", [], T0)
    second = await before.add(tenant, "https://hooks.acme.example/2", [], T0)
    # An endpoint written before secrets were sealed is read, and sealed by the reseal.
    legacy = await before.add(tenant, "https://hooks.acme.example/3", [], T0)
    await store.db[WEBHOOK_ENDPOINTS].update_one(
        {"_id": legacy.endpoint_id},
        {"$set": {"secrets": [{"value": "whsec_legacy", "created_at_ms": 1, "expires_at_ms": 0}]}},
    )

    during = MongoWebhookRegistry(store, box=SecretBox([NEW_KEY, OLD_KEY]))
    resealed, unreadable = await during.reseal(datetime.now(UTC))
    assert resealed >= 3
    assert unreadable == 0

    after = MongoWebhookRegistry(store, box=SecretBox([NEW_KEY]))
    secrets = {e.endpoint_id: [s.value for s in e.secrets] for e in await after.list(tenant)}
    assert secrets == {
        first.endpoint_id: [first.secrets[0].value],
        second.endpoint_id: [second.secrets[0].value],
        legacy.endpoint_id: ["whsec_legacy"],
    }
    raw = await store.db[WEBHOOK_ENDPOINTS].find_one({"_id": legacy.endpoint_id})
    assert raw is not None
    assert "whsec_legacy" not in json.dumps(raw, default=str)
