"""E-mail messages as values, and their MIME form (multipart text + HTML).

Header values come from events (names, sites), so they are reduced to one line before they
reach a header: a line break in a name can never add a header of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address, BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.policy import default
from email.utils import format_datetime, parseaddr

from fixloop_notifications.domain.templates import single_line


class _HeaderClasses(HeaderRegistry):
    """The standard header registry, remembering the class it makes for each header name (the
    standard one makes a new class on every look-up, most of the time it takes to build a
    message)."""

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = super().__getitem__(name)
        return made


POLICY = default.clone(header_factory=_HeaderClasses())
"""The e-mail policy of every message: the standard one, with header classes remembered."""


@dataclass(frozen=True)
class Mailbox:
    """An e-mail address with an optional display name."""

    address: str
    name: str = ""

    @classmethod
    def parse(cls, value: str) -> Mailbox:
        """``Fixloop <no-reply@fixloop.local>`` -> Mailbox(address, name)."""
        name, address = parseaddr(value)
        if "@" not in address:
            msg = f"not an e-mail address: {value!r}"
            raise ValueError(msg)
        return cls(address=address, name=single_line(name))

    @property
    def domain(self) -> str:
        return self.address.rsplit("@", 1)[1]

    @property
    def smtp_address(self) -> str:
        """The address as sent over SMTP: an internationalized domain in its ASCII form."""
        local, _, domain = self.address.rpartition("@")
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            return self.address
        return f"{local}@{domain}"

    def header(self) -> Address | str:
        name = single_line(self.name)
        address = self.smtp_address
        if address.isascii():
            return Address(display_name=name, addr_spec=address)
        # A non-ASCII local part needs SMTPUTF8 (RFC 6531); the relay is asked for it when the
        # message is sent, and the header keeps the address as it is.
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{quoted}" <{address}>' if name else address


def message_id_for(notification_id: str, domain: str) -> str:
    """The Message-ID of a notification: the same on every re-send of it."""
    return f"<{notification_id}@{domain}>"


@dataclass(frozen=True)
class OutgoingMail:
    """One e-mail, ready to be sent (and sent again, identically, after a crash)."""

    message_id: str
    sender: Mailbox
    recipient: Mailbox
    subject: str
    text: str
    html: str
    language: str
    date: datetime
    unsubscribe_url: str | None = None
    """Signed one-click unsubscribe link (RFC 8058), if the notice can be unsubscribed from."""


def build_email(mail: OutgoingMail) -> EmailMessage:
    """The MIME message: multipart/alternative with the text part first, then HTML."""
    message = EmailMessage(policy=POLICY)
    message["Message-ID"] = mail.message_id
    message["Date"] = format_datetime(mail.date)
    message["From"] = mail.sender.header()
    message["To"] = mail.recipient.header()
    message["Subject"] = single_line(mail.subject)
    message["Auto-Submitted"] = "auto-generated"
    if mail.unsubscribe_url:
        # RFC 8058: a mail client may unsubscribe with one POST to this HTTPS link.
        message["List-Unsubscribe"] = f"<{mail.unsubscribe_url}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(mail.text, cte="quoted-printable")
    message.add_alternative(mail.html, subtype="html", cte="quoted-printable")
    # Set after the parts: setting content moves every Content-* header into the parts.
    message["Content-Language"] = mail.language
    return message
