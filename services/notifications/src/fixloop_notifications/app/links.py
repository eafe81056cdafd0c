"""The signed links messages carry, made from what a notice knows (order, recipient, moment)."""

from __future__ import annotations

from datetime import datetime

from fixloop_notifications.domain.links import MAX_AGE, LinkClaims, LinkPurpose, LinkSigner
from fixloop_notifications.domain.notices import NoticeOrder, Recipient
from fixloop_shared.vocabulary import Channel


class NoticeLinks:
    """Survey, verify/reject and one-click unsubscribe links, signed by ``signer``."""

    def __init__(self, signer: LinkSigner) -> None:
        self._signer = signer

    def link(
        self,
        purpose: str,
        *,
        order: NoticeOrder,
        recipient: Recipient,
        issued_at: datetime,
        expires_at: datetime | None = None,
    ) -> str:
        claims = LinkClaims(
            tenant=order.tenant,
            address=recipient.email or recipient.phone or recipient.key,
            locale=recipient.locale,
            timezone=recipient.timezone,
            work_order_id=order.work_order_id,
            contractor_id=order.contractor.contractor_id if order.contractor else None,
            expires_at=expires_at,
        )
        return self._signer.url(LinkPurpose(purpose), claims, issued_at)

    def survey_expires_at(self, issued_at: datetime) -> datetime:
        return issued_at + MAX_AGE[LinkPurpose.SURVEY]

    def unsubscribe(
        self,
        *,
        tenant: str,
        address: str,
        kind: str | None,
        channel: Channel,
        locale: str,
        timezone: str,
        issued_at: datetime,
    ) -> str:
        claims = LinkClaims(
            tenant=tenant,
            address=address,
            locale=locale,
            timezone=timezone,
            kind=kind,
            channel=channel,
        )
        return self._signer.url(LinkPurpose.UNSUBSCRIBE, claims, issued_at)


__all__ = ["NoticeLinks"]
