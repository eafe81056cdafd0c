"""The HTTP side of the signed links: survey, verify/reject and one-click unsubscribe pages.

``links_app(...)`` is a small Starlette app, served on its own port. Routes:

- ``GET /survey/{token}`` the survey form (rating 1-5, comment); ``POST`` records the answer once
  (a second answer: "already answered", 409);
- ``GET /verify/{token}``, ``GET /reject/{token}`` a confirmation page with a button — mail
  scanners fetch links, so a GET never acts; ``POST`` records the verdict once;
- ``GET /unsubscribe/{token}`` a page with a button; ``POST`` records the opt-out — with the body
  ``List-Unsubscribe=One-Click`` (RFC 8058) that is all a mail client sends, and it answers 200.

Every answer is a page in the recipient's language (the link's locale): a forged or altered link
403, an expired one 410, a body over 16 KiB 413, input that does not parse 400, the store not
answering 503 — never a stack trace. Forms are parsed strictly: known fields only, each at most
once, the rating an integer 1 to 5, texts within their limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Mapping
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import parse_qsl

import uvicorn
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from fixloop_notifications.adapters.templates import TemplateCatalog
from fixloop_notifications.app.feedback import (
    MAX_COMMENT_LENGTH,
    MAX_REASON_LENGTH,
    AlreadyAnswered,
    LinkAnswers,
)
from fixloop_notifications.domain.links import (
    LinkClaims,
    LinkExpired,
    LinkForged,
    LinkPurpose,
    LinkSigner,
)
from fixloop_notifications.domain.locales import (
    FALLBACK_LOCALE,
    NoTranslation,
    resolve_locale,
    text_direction,
)
from fixloop_shared.contracts import CompletionVerdict
from fixloop_shared.contracts.feedback import MAX_RATING

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024
MAX_FORM_FIELDS = 4
ONE_CLICK = ("List-Unsubscribe", "One-Click")
"""RFC 8058's one-click body: ``List-Unsubscribe=One-Click``."""

PAGE_LOCALES: frozenset[str] = frozenset({"en", "de", "fr", "es", "pt", "th", "zh-CN", "ar"})
"""The locales the pages are translated into."""

PAGES: Mapping[str, frozenset[str]] = {
    "survey": frozenset({"reference", "action", "rating", "comment", "error"}),
    "survey_thanks": frozenset({"reference"}),
    "already_answered": frozenset({"reference"}),
    "verify": frozenset({"reference", "action"}),
    "reject": frozenset({"reference", "action", "reason", "error"}),
    "verified": frozenset({"reference"}),
    "rejected": frozenset({"reference"}),
    "unsubscribe": frozenset({"address", "action", "every_kind"}),
    "unsubscribed": frozenset({"address", "every_kind"}),
    "link_forged": frozenset(),
    "link_expired": frozenset(),
    "bad_request": frozenset(),
    "too_large": frozenset(),
    "unavailable": frozenset(),
}
"""Every page (``templates/_pages/<page>.html.j2``) and the values it is given, besides ``lang``
and ``direction`` which every page gets."""

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}


class PageRenderer(Protocol):
    """Renders a page template of ``templates/_pages`` in the best locale for the request."""

    def render_page(
        self, page: str, requested_locale: str, values: Mapping[str, Any]
    ) -> tuple[str, str]:
        """The page's HTML and the locale used."""
        ...


def page_locale(requested: str) -> str:
    """The page locale a requested one gets (exact, language, English)."""
    try:
        return resolve_locale(requested, PAGE_LOCALES)
    except NoTranslation:  # pragma: no cover - English is always there
        return FALLBACK_LOCALE


class BadForm(ValueError):  # noqa: N818 - the domain's word
    """A request body that is not the form expected."""


class BodyTooLarge(ValueError):  # noqa: N818
    """A request body over the limit."""


async def read_body(request: Request, limit: int) -> bytes:
    """The request's body, refused (:class:`BodyTooLarge`) as soon as it passes ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            msg = "Content-Length is not a number"
            raise BadForm(msg)
        if int(declared) > limit:
            msg = f"body of {declared} bytes"
            raise BodyTooLarge(msg)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            msg = f"body over {limit} bytes"
            raise BodyTooLarge(msg)
        chunks.append(chunk)
    return b"".join(chunks)


async def parse_form(headers: Headers, body: bytes, allowed: frozenset[str]) -> dict[str, str]:
    """The fields of a urlencoded or multipart form body: only ``allowed`` names, each at most
    once, text only (no files). :class:`BadForm` otherwise."""
    content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    pairs: list[tuple[str, str]]
    if not body:
        return {}
    if content_type == "application/x-www-form-urlencoded":
        try:
            text = body.decode("utf-8", errors="strict")
            pairs = parse_qsl(
                text,
                keep_blank_values=True,
                strict_parsing=True,
                errors="strict",
                max_num_fields=MAX_FORM_FIELDS,
            )
        except ValueError as exc:  # UnicodeDecodeError is one
            msg = "form body does not parse"
            raise BadForm(msg) from exc
    elif content_type == "multipart/form-data":

        async def stream() -> AsyncGenerator[bytes, None]:
            yield body

        parser = MultiPartParser(
            headers, stream(), max_files=0, max_fields=MAX_FORM_FIELDS, max_part_size=MAX_BODY_BYTES
        )
        try:
            form = await parser.parse()
        except (MultiPartException, ValueError) as exc:
            msg = "multipart body does not parse"
            raise BadForm(msg) from exc
        pairs = []
        for name, value in form.multi_items():
            if not isinstance(value, str):
                msg = "files are not accepted"
                raise BadForm(msg)
            pairs.append((name, value))
    else:
        msg = f"unsupported content type {content_type[:60]!r}"
        raise BadForm(msg)
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name not in allowed or name in fields:
            msg = f"unexpected or repeated field {name[:40]!r}"
            raise BadForm(msg)
        if any(ord(ch) < 32 and ch not in "\r\n\t" for ch in value):
            msg = f"control characters in {name!r}"
            raise BadForm(msg)
        fields[name] = value
    return fields


def parse_rating(raw: str | None) -> int | None:
    """An integer 1 to 5 written as one ASCII digit, or None."""
    if raw is None or len(raw) != 1 or not raw.isascii() or not raw.isdigit():
        return None
    rating = int(raw)
    return rating if 1 <= rating <= MAX_RATING else None


_Handle = Callable[[Request, LinkClaims], Awaitable[Response]]


class _Pages:
    """Renders pages with the common values and the security headers."""

    def __init__(self, renderer: PageRenderer) -> None:
        self._renderer = renderer

    def __call__(self, page: str, locale: str, status: int = 200, **values: Any) -> HTMLResponse:
        expected = PAGES[page]
        missing = expected - set(values)
        if missing:  # pragma: no cover - a programming error, caught by the tests
            msg = f"page {page} lacks {sorted(missing)}"
            raise KeyError(msg)
        shown = page_locale(locale)
        html, _used = self._renderer.render_page(
            page, locale, {**values, "lang": shown, "direction": text_direction(shown)}
        )
        return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


class LinkEndpoints:
    """What each link's GET and POST do; :func:`links_app` routes requests here."""

    def __init__(
        self,
        *,
        signer: LinkSigner,
        answers: LinkAnswers,
        pages: PageRenderer,
        clock: Callable[[], datetime],
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self._signer = signer
        self._answers = answers
        self._page = _Pages(pages)
        self._now = clock
        self._max_body = max_body_bytes

    def endpoint(
        self, purpose: LinkPurpose, on_get: _Handle, on_post: _Handle
    ) -> Callable[[Request], Awaitable[Response]]:
        """The endpoint of ``purpose``'s links: reads the token, then GET or POST."""

        async def respond(request: Request) -> Response:
            handle = on_post if request.method == "POST" else on_get
            return await self._guarded(request, purpose, handle)

        respond.__name__ = f"{purpose.value}_link"
        return respond

    def _refused(self, exc: Exception, locale: str = FALLBACK_LOCALE) -> HTMLResponse:
        if isinstance(exc, LinkExpired):
            return self._page("link_expired", locale, 410)
        if isinstance(exc, LinkForged):
            return self._page("link_forged", locale, 403)
        if isinstance(exc, BodyTooLarge):
            return self._page("too_large", locale, 413)
        if isinstance(exc, BadForm):
            return self._page("bad_request", locale, 400)
        log.error("link request failed", exc_info=exc)
        return self._page("unavailable", locale, 503)

    async def _guarded(self, request: Request, purpose: LinkPurpose, handle: _Handle) -> Response:
        try:
            claims = self._signer.read(str(request.path_params["token"]), purpose, self._now())
        except (LinkForged, LinkExpired) as exc:
            log.info("link refused: %s", exc, extra={"purpose": purpose.value})
            return self._refused(exc)
        try:
            return await handle(request, claims)
        except (BadForm, BodyTooLarge) as exc:
            log.info("link answer refused: %s", exc, extra={"purpose": purpose.value})
            return self._refused(exc, claims.locale)
        except Exception as exc:  # noqa: BLE001 - a page, never a stack trace
            return self._refused(exc, claims.locale)

    async def _form(self, request: Request, allowed: frozenset[str]) -> dict[str, str]:
        body = await read_body(request, self._max_body)
        return await parse_form(request.headers, body, allowed)

    def _already(self, claims: LinkClaims, status: int = 200) -> HTMLResponse:
        return self._page("already_answered", claims.locale, status, reference=claims.work_order_id)

    # -- survey ------------------------------------------------------------------------------

    def _survey_form(
        self,
        request: Request,
        claims: LinkClaims,
        *,
        status: int = 200,
        rating: int | None = None,
        comment: str = "",
        error: str | None = None,
    ) -> HTMLResponse:
        return self._page(
            "survey",
            claims.locale,
            status,
            reference=claims.work_order_id,
            action=request.url.path,
            rating=rating,
            comment=comment,
            error=error,
        )

    async def show_survey(self, request: Request, claims: LinkClaims) -> Response:
        if await self._answers.survey_answered_already(claims):
            return self._already(claims)
        return self._survey_form(request, claims)

    async def answer_survey(self, request: Request, claims: LinkClaims) -> Response:
        fields = await self._form(request, frozenset({"rating", "comment"}))
        comment = fields.get("comment", "").replace("\r\n", "\n")
        rating = parse_rating(fields.get("rating"))
        if rating is None:
            return self._survey_form(request, claims, status=400, comment=comment, error="rating")
        if len(comment.strip()) > MAX_COMMENT_LENGTH:
            return self._survey_form(
                request, claims, status=400, rating=rating, comment=comment, error="comment"
            )
        try:
            await self._answers.answer_survey(claims, rating=rating, comment=comment)
        except AlreadyAnswered:
            return self._already(claims, 409)
        return self._page("survey_thanks", claims.locale, reference=claims.work_order_id)

    # -- verify / reject ---------------------------------------------------------------------

    def _reject_form(
        self,
        request: Request,
        claims: LinkClaims,
        *,
        status: int = 200,
        reason: str = "",
        error: str | None = None,
    ) -> HTMLResponse:
        return self._page(
            "reject",
            claims.locale,
            status,
            reference=claims.work_order_id,
            action=request.url.path,
            reason=reason,
            error=error,
        )

    async def show_verify(self, request: Request, claims: LinkClaims) -> Response:
        if await self._answers.completion_answered_already(claims):
            return self._already(claims)
        return self._page(
            "verify", claims.locale, reference=claims.work_order_id, action=request.url.path
        )

    async def show_reject(self, request: Request, claims: LinkClaims) -> Response:
        if await self._answers.completion_answered_already(claims):
            return self._already(claims)
        return self._reject_form(request, claims)

    async def answer_verify(self, request: Request, claims: LinkClaims) -> Response:
        await self._form(request, frozenset())
        try:
            await self._answers.answer_completion(claims, verdict=CompletionVerdict.VERIFIED)
        except AlreadyAnswered:
            return self._already(claims, 409)
        return self._page("verified", claims.locale, reference=claims.work_order_id)

    async def answer_reject(self, request: Request, claims: LinkClaims) -> Response:
        fields = await self._form(request, frozenset({"reason"}))
        reason = " ".join(fields.get("reason", "").split())
        if len(reason) > MAX_REASON_LENGTH:
            return self._reject_form(request, claims, status=400, reason=reason, error="reason")
        try:
            await self._answers.answer_completion(
                claims, verdict=CompletionVerdict.REJECTED, reason=reason or None
            )
        except AlreadyAnswered:
            return self._already(claims, 409)
        return self._page("rejected", claims.locale, reference=claims.work_order_id)

    # -- unsubscribe -------------------------------------------------------------------------

    async def show_unsubscribe(self, request: Request, claims: LinkClaims) -> Response:
        return self._page(
            "unsubscribe",
            claims.locale,
            address=claims.address,
            action=request.url.path,
            every_kind=claims.kind is None,
        )

    async def answer_unsubscribe(self, request: Request, claims: LinkClaims) -> Response:
        fields = await self._form(request, frozenset({ONE_CLICK[0]}))
        if fields.get(ONE_CLICK[0]) != ONE_CLICK[1]:
            msg = "not a one-click unsubscribe (List-Unsubscribe=One-Click)"
            raise BadForm(msg)
        await self._answers.unsubscribe(claims)
        return self._page(
            "unsubscribed", claims.locale, address=claims.address, every_kind=claims.kind is None
        )


def links_app(
    *,
    signer: LinkSigner,
    answers: LinkAnswers,
    catalog: PageRenderer | None = None,
    clock: Callable[[], datetime] | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> Starlette:
    """The Starlette app of the signed links.

    ``signer`` reads the tokens (the same secret that made them), ``answers`` records what the
    recipient answers (the service's units of work, answer book and preferences), ``catalog``
    renders the pages (default: the shipped :class:`TemplateCatalog`), ``clock`` is the time
    links are judged at (default: ``answers``' clock).
    """
    links = LinkEndpoints(
        signer=signer,
        answers=answers,
        pages=catalog or TemplateCatalog(),
        clock=clock or answers.now,
        max_body_bytes=max_body_bytes,
    )
    both = ["GET", "POST"]
    routes = [
        Route(
            "/survey/{token}",
            links.endpoint(LinkPurpose.SURVEY, links.show_survey, links.answer_survey),
            methods=both,
        ),
        Route(
            "/verify/{token}",
            links.endpoint(LinkPurpose.VERIFY, links.show_verify, links.answer_verify),
            methods=both,
        ),
        Route(
            "/reject/{token}",
            links.endpoint(LinkPurpose.REJECT, links.show_reject, links.answer_reject),
            methods=both,
        ),
        Route(
            "/unsubscribe/{token}",
            links.endpoint(
                LinkPurpose.UNSUBSCRIBE, links.show_unsubscribe, links.answer_unsubscribe
            ),
            methods=both,
        ),
    ]
    return Starlette(routes=routes)


class _ServerWithoutSignals(uvicorn.Server):
    """A uvicorn server that leaves the process's signal handling to the service's own server."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class LinksServer:
    """Serves the links app on its own port, in the service's event loop, beside its main app.

    ``start`` returns once the port is bound (``port`` is then the bound one, also for 0);
    ``stop`` lets requests in flight finish, within ``grace_seconds``.
    """

    def __init__(self, app: Starlette, *, host: str, port: int, grace_seconds: float = 5.0) -> None:
        self._config = uvicorn.Config(
            app,
            host=host,
            port=port,
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=max(1, int(grace_seconds)),
        )
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._grace = grace_seconds
        self.port = port

    async def start(self) -> None:
        server = _ServerWithoutSignals(self._config)
        self._server = server
        self._task = asyncio.create_task(server.serve(), name="links-server")
        while not server.started:
            if self._task.done():
                self._task.result()  # raises why it could not start
                msg = "the links server stopped while starting"
                raise RuntimeError(msg)
            await asyncio.sleep(0.01)
        for bound in server.servers:
            for sock in bound.sockets:
                self.port = int(sock.getsockname()[1])
                break
        log.info("links server listening", extra={"port": self.port})

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout=self._grace + 1)
        except TimeoutError:
            self._server.force_exit = True
            await asyncio.wait_for(self._task, timeout=2)
        finally:
            self._server = None
            self._task = None


__all__ = [
    "MAX_BODY_BYTES",
    "PAGES",
    "PAGE_LOCALES",
    "LinkEndpoints",
    "LinksServer",
    "PageRenderer",
    "links_app",
    "page_locale",
    "parse_form",
    "parse_rating",
    "read_body",
]
