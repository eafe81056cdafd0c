"""SMS and webhook channels: segmenting, E.164, Standard Webhooks signatures, the disable
policy, endpoint URLs, and how the HTTP senders sort a provider's or endpoint's answers (against
in-process transports)."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import parse_qs

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from fixloop_notifications.adapters.secret_box import SecretBox, UnreadableSecret
from fixloop_notifications.adapters.sms_http import HttpSmsSender
from fixloop_notifications.adapters.webhooks_http import (
    USER_AGENT,
    WebhookEndpointDisabled,
    WebhookSender,
)
from fixloop_notifications.domain.delivery import DeliveryError
from fixloop_notifications.domain.sms import (
    ELLIPSIS_GSM7,
    ELLIPSIS_UCS2,
    InvalidPhone,
    OutgoingSms,
    compose_sms,
    count_segments,
    fit_sms,
    is_gsm7,
    normalize_phone,
)
from fixloop_notifications.domain.webhooks import (
    DisabledReason,
    DisablePolicy,
    InvalidEndpointUrl,
    OutgoingWebhook,
    WebhookEndpoint,
    WebhookSecret,
    new_secret,
    sign,
    validate_endpoint_url,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

# -- segments ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),  # extension characters take two septets
        ("€" * 81, 2),
        ("a" * 152 + "€", 1),  # 154 septets: one segment holds 160
        ("ä" * 160, 1),  # in the GSM basic table
        ("ж" * 70, 1),  # not GSM: UCS-2
        ("ж" * 71, 2),
        ("ж" * 134, 2),
        ("ж" * 135, 3),
        ("😀" * 35, 1),  # two UTF-16 code units each
        ("😀" * 36, 2),
        ("a" * 69 + "😀", 2),  # 71 units
    ],
)
def test_segments_follow_the_gsm7_and_ucs2_rules(text: str, segments: int) -> None:
    assert count_segments(text) == segments


def test_an_extension_character_never_straddles_two_segments() -> None:
    # 152 septets, then "€" (2) would end at 154 > 153: it starts the second part.
    text = "a" * 152 + "€" + "b" * 10
    assert count_segments(text) == 2
    assert count_segments("a" * 152 + "€" + "b" * 152) == 3


def test_gsm7_alphabet() -> None:
    assert is_gsm7("Hallo Jörg, Ihr Termin: 10:00-12:00 [€ 5]")
    assert not is_gsm7("Grüße — Zoë")  # em dash, ë
    assert not is_gsm7("…")


def test_a_long_gsm7_text_is_shortened_at_a_word_boundary_and_stays_gsm7() -> None:
    words = " ".join(f"word{i}" for i in range(200))
    text, segments = fit_sms(words, max_segments=2)
    assert segments == 2
    assert text.endswith(ELLIPSIS_GSM7)
    assert is_gsm7(text)
    kept = text.removesuffix(ELLIPSIS_GSM7)
    assert words.startswith(kept)
    assert words[len(kept)] == " "  # cut before a space, not inside a word
    assert len(text) > 280  # nearly the whole room of two GSM-7 segments (306) is used


def test_a_long_unicode_text_is_shortened_with_an_ellipsis() -> None:
    words = " ".join(["สวัสดีครับ"] * 100)
    text, segments = fit_sms(words, max_segments=1)
    assert segments == 1
    assert text.endswith(ELLIPSIS_UCS2)
    assert len(text) <= 70


def test_one_endless_word_is_cut_hard() -> None:
    text, segments = fit_sms("x" * 1000, max_segments=1)
    assert (text, segments) == ("x" * 157 + ELLIPSIS_GSM7, 1)


def test_a_text_that_fits_is_left_alone() -> None:
    assert fit_sms("Ihr Techniker ist unterwegs.") == ("Ihr Techniker ist unterwegs.", 1)
    with pytest.raises(ValueError, match="at least one segment"):
        fit_sms("x", max_segments=0)


SMS_TEXT = st.text(
    alphabet=st.sampled_from([*"abc xyz€[]{}äö\n", "ж", "😀", "…", "ก"]), max_size=800
)


@settings(max_examples=300, deadline=None)
@given(text=SMS_TEXT, max_segments=st.integers(min_value=1, max_value=4))
def test_fitted_texts_never_exceed_their_segments(text: str, max_segments: int) -> None:
    fitted, segments = fit_sms(text, max_segments)
    assert 1 <= segments <= max_segments
    assert segments == count_segments(fitted)
    if fitted != text:
        ellipsis = ELLIPSIS_GSM7 if is_gsm7(text) else ELLIPSIS_UCS2
        assert fitted.endswith(ellipsis)
        assert text.startswith(fitted.removesuffix(ellipsis))
        assert count_segments(text) > max_segments


# -- phone numbers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("030 901820", "DE", "+4930901820"),
        ("0151 23456789", "de", "+4915123456789"),
        ("+1 650-253-0000", None, "+16502530000"),
        ("(650) 253-0000", "US", "+16502530000"),
        ("+49 30 901820", "US", "+4930901820"),  # a country prefix wins over the region
        ("081 234 5678", "TH", "+66812345678"),
    ],
)
def test_phone_numbers_are_normalized_to_e164(raw: str, region: str | None, e164: str) -> None:
    assert normalize_phone(raw, region) == e164


@pytest.mark.parametrize(
    ("raw", "region", "reason"),
    [
        ("+49 12", "DE", "not a valid phone number for DE: '+49 12'"),
        ("hello", "DE", "not a valid phone number for DE: 'hello'"),
        ("030 901820", None, "no country prefix"),
        ("1" * 100, "DE", "longer than 64"),
        ("030\n901820\r\nBcc: x", "DE", "not a valid phone number"),
    ],
)
def test_unusable_phone_numbers_say_why_in_one_line(
    raw: str, region: str | None, reason: str
) -> None:
    with pytest.raises(InvalidPhone, match=r"^.*$") as caught:
        normalize_phone(raw, region)
    message = str(caught.value)
    assert reason in message
    assert "\n" not in message
    assert isinstance(caught.value, ValueError)


def test_compose_sms_normalizes_and_fits() -> None:
    sms = compose_sms(
        message_id="n-1", to="030 901820", region="DE", sender="Fixloop", text="ж" * 300
    )
    assert sms.to == "+4930901820"
    assert sms.segments == 3
    assert sms.text.endswith(ELLIPSIS_UCS2)


# -- webhook signatures --------------------------------------------------------------------------


def webhook(
    body: str = '{"type":"workorder.received","id":"wo-1","note":"Grüße"}',
) -> OutgoingWebhook:
    return OutgoingWebhook(
        webhook_id="msg_2a9f",
        endpoint_id="0b7a3c1e-1111-4222-8333-944455556666",
        url="https://hooks.example.com/fixloop",
        event_type="workorder.received",
        body=body,
    )


def test_a_signed_webhook_verifies_with_the_library() -> None:
    secret = new_secret()
    message = webhook()
    now = datetime.now(UTC)
    headers = sign(message, [secret], now)
    assert headers["webhook-id"] == "msg_2a9f"
    assert headers["webhook-timestamp"] == str(int(now.timestamp()))
    assert Webhook(secret).verify(message.body, headers) == json.loads(message.body)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(message.body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(message.body.replace("wo-1", "wo-2"), headers)


def test_during_a_rotation_both_secrets_verify() -> None:
    old, new = new_secret(), new_secret()
    message = webhook()
    headers = sign(message, [new, old], datetime.now(UTC))
    signatures = headers["webhook-signature"].split(" ")
    assert len(signatures) == 2
    assert all(signature.startswith("v1,") for signature in signatures)
    assert signatures[0] == sign(message, [new], datetime.now(UTC))["webhook-signature"]
    Webhook(new).verify(message.body, headers)
    Webhook(old).verify(message.body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(message.body, headers)


def test_the_signing_time_is_read_in_utc_whatever_its_zone() -> None:
    message, secret = webhook(), new_secret()
    in_bangkok = NOW.astimezone(timezone(timedelta(hours=7)))
    assert sign(message, [secret], in_bangkok) == sign(message, [secret], NOW)
    with pytest.raises(ValueError, match="timezone-aware"):
        sign(message, [secret], NOW.replace(tzinfo=None))
    with pytest.raises(ValueError, match="at least one secret"):
        sign(message, [], NOW)


def test_new_secrets_are_32_random_bytes_in_whsec_form() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert new_secret() != secret
    assert new_secret(bytes(range(32))) == "whsec_" + base64.b64encode(bytes(range(32))).decode()
    with pytest.raises(ValueError, match="at least 32 bytes"):
        new_secret(b"short")


def test_an_endpoint_signs_with_its_unexpired_secrets_and_filters_event_types() -> None:
    endpoint = WebhookEndpoint(
        endpoint_id="e",
        tenant="acme",
        url="https://hooks.example.com",
        secrets=(
            WebhookSecret("whsec_new", NOW),
            WebhookSecret(
                "whsec_old", NOW - timedelta(days=9), expires_at=NOW + timedelta(hours=1)
            ),
        ),
        event_types=("workorder.received",),
        enabled=True,
        created_at=NOW,
    )
    assert endpoint.active_secrets(NOW) == ("whsec_new", "whsec_old")
    assert endpoint.active_secrets(NOW + timedelta(hours=1)) == ("whsec_new",)
    assert endpoint.accepts("workorder.received")
    assert not endpoint.accepts("workorder.closed")
    assert replace(endpoint, event_types=()).accepts("workorder.closed")
    assert "whsec_" not in repr(endpoint)  # secrets stay out of logs


# -- disable policy ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failures", "failing_for", "disable"),
    [
        (5, timedelta(hours=2), True),
        (9, timedelta(days=3), True),
        (4, timedelta(days=3), False),  # failing long, but rarely tried
        (50, timedelta(minutes=59), False),  # many failures in a short outage
        (5, timedelta(hours=1), True),  # both thresholds are inclusive
    ],
)
def test_an_endpoint_is_disabled_only_after_many_failures_over_a_long_time(
    failures: int, failing_for: timedelta, disable: bool
) -> None:
    policy = DisablePolicy(after_failures=5, after=timedelta(hours=1))
    assert policy.should_disable(failures, NOW - failing_for, NOW) is disable


def test_an_endpoint_not_failing_is_never_disabled() -> None:
    assert not DisablePolicy(after_failures=1, after=timedelta(0)).should_disable(3, None, NOW)
    with pytest.raises(ValueError, match="at least one failure"):
        DisablePolicy(after_failures=0)


# -- endpoint URLs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/fixloop",
        "https://hooks.example.com:8443/a?b=c",
        "http://127.0.0.1:8765/hook",
        "http://localhost/hook",
        "http://[::1]:9000/",
        "https://93.184.216.34/hook",
    ],
)
def test_acceptable_endpoint_urls(url: str) -> None:
    assert validate_endpoint_url(url) == url


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://hooks.example.com/fixloop", "must use https"),
        ("ftp://hooks.example.com/", "must be https://host"),
        ("https:///path", "must be https://host"),
        ("hooks.example.com/x", "must be https://host"),
        ("https://user:pw@hooks.example.com/", "credentials"),
        ("https://token@hooks.example.com/", "credentials"),
        ("https://hooks.example.com/#frag", "fragment"),
        ("https://hooks.example.com/" + "a" * 2048, "longer than 2048"),
        ("https://hooks.example.com/a b", "spaces or control"),
        ("https://hooks.example.com/\r\nX-Evil: 1", "spaces or control"),
        ("https://hooks.example.com:99999/", "not a URL"),
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("https://10.0.0.8/hook", "private network"),
        ("https://0.0.0.0/hook", "not a unicast"),
    ],
)
def test_unusable_endpoint_urls_say_why_in_one_line(url: str, reason: str) -> None:
    with pytest.raises(InvalidEndpointUrl) as caught:
        validate_endpoint_url(url)
    assert reason in str(caught.value)
    assert "\n" not in str(caught.value)


def test_loopback_endpoints_can_be_refused() -> None:
    with pytest.raises(InvalidEndpointUrl, match="this machine"):
        validate_endpoint_url("https://localhost/hook", allow_loopback=False)


# -- SMS sender against an in-process provider ---------------------------------------------------

SMS = OutgoingSms(message_id="n-42", to="+4930901820", sender="Fixloop", text="Hallo €", segments=1)


def sms_sender(handler: httpx.MockTransport) -> HttpSmsSender:
    return HttpSmsSender(
        base_url="https://sms.example.com/",
        account="AC123",
        token="tok-secret",
        sender="Fixloop",
        client=httpx.AsyncClient(transport=handler),
    )


async def test_an_sms_is_posted_as_the_provider_expects() -> None:
    seen: list[httpx.Request] = []

    def provider(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"sid": "SM1", "status": "queued"})

    assert await sms_sender(httpx.MockTransport(provider)).send(SMS) == "SM1"
    (request,) = seen
    assert request.method == "POST"
    assert str(request.url) == "https://sms.example.com/2010-04-01/Accounts/AC123/Messages.json"
    assert request.headers["idempotency-key"] == "n-42"
    assert (
        request.headers["authorization"]
        == "Basic " + base64.b64encode(b"AC123:tok-secret").decode()
    )
    form = parse_qs(request.content.decode())
    assert form == {"To": ["+4930901820"], "From": ["Fixloop"], "Body": ["Hallo €"]}


@pytest.mark.parametrize(
    ("status", "permanent"),
    [(400, True), (401, True), (404, True), (301, True), (408, False), (409, False),
     (429, False), (500, False), (503, False)],
)  # fmt: skip
async def test_provider_answers_are_sorted_permanent_or_transient(
    status: int, permanent: bool
) -> None:
    def provider(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"code": 21211, "message": "The 'To' number is bad"})

    with pytest.raises(DeliveryError) as caught:
        await sms_sender(httpx.MockTransport(provider)).send(SMS)
    assert caught.value.permanent is permanent
    assert f"answered {status}" in caught.value.detail
    assert "tok-secret" not in caught.value.detail


async def test_timeouts_and_refused_connections_are_transient() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    for handler in (slow, refused):
        with pytest.raises(DeliveryError) as caught:
            await sms_sender(httpx.MockTransport(handler)).send(SMS)
        assert caught.value.permanent is False


# -- webhook sender against an in-process endpoint -----------------------------------------------

ENDPOINT_ID = "0b7a3c1e-1111-4222-8333-944455556666"


class MemoryEndpoints:
    """The registry's sending side, in memory."""

    def __init__(self, endpoint: WebhookEndpoint | None) -> None:
        self.endpoint = endpoint

    async def get(self, endpoint_id: str, *, tenant: str | None = None) -> WebhookEndpoint | None:
        return self.endpoint if self.endpoint and endpoint_id == ENDPOINT_ID else None

    async def record_success(self, endpoint_id: str, now: datetime) -> None:
        assert self.endpoint is not None
        self.endpoint = replace(self.endpoint, consecutive_failures=0, failing_since=None)

    async def record_failure(
        self, endpoint_id: str, now: datetime, policy: DisablePolicy
    ) -> WebhookEndpoint | None:
        assert self.endpoint is not None
        self.endpoint = replace(
            self.endpoint,
            consecutive_failures=self.endpoint.consecutive_failures + 1,
            failing_since=self.endpoint.failing_since or now,
        )
        endpoint = self.endpoint
        if policy.should_disable(endpoint.consecutive_failures, endpoint.failing_since, now):
            await self.disable(endpoint_id, now, DisabledReason.FAILING)
            return self.endpoint
        return None

    async def disable(
        self, endpoint_id: str, now: datetime, reason: DisabledReason, *, tenant: str | None = None
    ) -> bool:
        assert self.endpoint is not None
        if not self.endpoint.enabled:
            return False
        self.endpoint = replace(
            self.endpoint, enabled=False, disabled_at=now, disabled_reason=reason
        )
        return True


def registered(secret: str, url: str = "https://hooks.example.com/fixloop") -> MemoryEndpoints:
    return MemoryEndpoints(
        WebhookEndpoint(
            endpoint_id=ENDPOINT_ID,
            tenant="acme",
            url=url,
            secrets=(WebhookSecret(secret, NOW),),
            event_types=(),
            enabled=True,
            created_at=NOW,
        )
    )


async def test_a_webhook_carries_verifiable_standard_headers() -> None:
    secret = new_secret()
    seen: list[httpx.Request] = []

    def endpoint(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    sender = WebhookSender(
        registered(secret), httpx.AsyncClient(transport=httpx.MockTransport(endpoint))
    )
    await sender.send(webhook())
    (request,) = seen
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == USER_AGENT
    assert request.headers["webhook-id"] == "msg_2a9f"
    assert request.content == webhook().body.encode()
    Webhook(secret).verify(request.content, dict(request.headers))


async def test_redirects_are_not_followed_and_count_as_failures() -> None:
    seen: list[str] = []

    def endpoint(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(302, headers={"location": "https://169.254.169.254/"})

    registry = registered(new_secret())
    sender = WebhookSender(registry, httpx.AsyncClient(transport=httpx.MockTransport(endpoint)))
    with pytest.raises(DeliveryError) as caught:
        await sender.send(webhook())
    assert caught.value.permanent is False
    assert seen == ["https://hooks.example.com/fixloop"]
    assert registry.endpoint is not None
    assert registry.endpoint.consecutive_failures == 1


async def test_persistent_failure_disables_the_endpoint_and_says_so_once() -> None:
    clock = [NOW]

    def endpoint(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, text="boom")

    registry = registered(new_secret())
    sender = WebhookSender(
        registry,
        httpx.AsyncClient(transport=httpx.MockTransport(endpoint)),
        disable_policy=DisablePolicy(after_failures=3, after=timedelta(hours=1)),
        clock=lambda: clock[0],
    )
    errors: list[DeliveryError] = []
    for minutes in (0, 10, 20, 90):
        clock[0] = NOW + timedelta(minutes=minutes)
        try:
            await sender.send(webhook())
        except DeliveryError as exc:
            errors.append(exc)
    assert [error.permanent for error in errors] == [False, False, False, True]
    disabled = errors[-1]
    assert isinstance(disabled, WebhookEndpointDisabled)
    assert disabled.endpoint.disabled_reason is DisabledReason.FAILING
    assert disabled.endpoint.consecutive_failures == 4
    with pytest.raises(DeliveryError) as caught:
        await sender.send(webhook())
    assert caught.value.permanent
    assert not isinstance(caught.value, WebhookEndpointDisabled)


async def test_gone_disables_at_once_and_unknown_endpoints_fail_permanently() -> None:
    def endpoint(request: httpx.Request) -> httpx.Response:
        return httpx.Response(410)

    registry = registered(new_secret())
    sender = WebhookSender(registry, httpx.AsyncClient(transport=httpx.MockTransport(endpoint)))
    with pytest.raises(WebhookEndpointDisabled) as caught:
        await sender.send(webhook())
    assert caught.value.endpoint.disabled_reason is DisabledReason.GONE
    registry.endpoint = None
    with pytest.raises(DeliveryError, match="removed") as removed:
        await sender.send(webhook())
    assert removed.value.permanent


# -- signing secrets at rest ---------------------------------------------------------------------

KEY_A = "key-a-" + "a" * 40
KEY_B = "key-b-" + "b" * 40


@given(st.text(max_size=200))
@settings(max_examples=50)
def test_a_sealed_secret_opens_to_itself(secret: str) -> None:
    box = SecretBox([KEY_A])
    assert box.open(box.seal(secret)) == secret


def test_a_sealed_secret_shows_nothing_of_it() -> None:
    box = SecretBox([KEY_A])
    secret = new_secret()
    sealed = box.seal(secret)
    assert secret.removeprefix("whsec_")[:12] not in sealed
    assert box.seal(secret) != sealed  # a fresh IV each time: equal secrets look different


def test_a_secret_sealed_under_another_key_does_not_open() -> None:
    sealed = SecretBox([KEY_A]).seal("whsec_abc")
    with pytest.raises(UnreadableSecret):
        SecretBox([KEY_B]).open(sealed)
    with pytest.raises(UnreadableSecret):
        SecretBox([KEY_A]).open(sealed[:-4] + "AAAA")  # tampered


def test_after_a_key_rotation_old_seals_open_and_new_ones_use_the_new_key() -> None:
    old = SecretBox([KEY_A]).seal("whsec_old")
    rotated = SecretBox([KEY_B, KEY_A])
    assert rotated.open(old) == "whsec_old"
    assert SecretBox([KEY_B]).open(rotated.seal("whsec_new")) == "whsec_new"


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 32 characters"):
        SecretBox(["short"])
    with pytest.raises(ValueError, match="at least one"):
        SecretBox([])
