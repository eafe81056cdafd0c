"""Kafka authentication and TLS: :class:`~fixloop_shared.settings.KafkaSettings` turned into the
options of the clients, in one place.

- :func:`aiokafka_security`: the keyword arguments of every raw aiokafka client (producer,
  consumer, admin): ``security_protocol``, ``sasl_mechanism``, ``sasl_plain_username``,
  ``sasl_plain_password``, ``ssl_context``.
- :func:`broker_security`: the same as FastStream's security object for ``KafkaBroker``.
- :func:`security_problem`: why a combination of settings cannot work (one line), checked when
  the settings are loaded.

The embedded broker takes ``PLAINTEXT`` with no credentials, the default; nothing is added then.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

from aiokafka.helpers import create_ssl_context
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

if TYPE_CHECKING:
    from fixloop_shared.settings import KafkaSettings

_SASL = ("SASL_PLAINTEXT", "SASL_SSL")
_TLS = ("SSL", "SASL_SSL")
_ENV = "FIXLOOP_KAFKA_"


def security_problem(settings: KafkaSettings) -> str | None:
    """Why these settings cannot connect as meant, in one line; None when they can."""
    return _sasl_problem(settings) or _tls_problem(settings)


def _sasl_problem(settings: KafkaSettings) -> str | None:
    protocol = settings.security_protocol
    username, password = settings.sasl_username, settings.sasl_password
    if protocol not in _SASL:
        if username is not None or password is not None:
            return (
                f"{_ENV}SASL_USERNAME/{_ENV}SASL_PASSWORD are set but {_ENV}SECURITY_PROTOCOL "
                f"is {protocol}: use SASL_PLAINTEXT or SASL_SSL"
            )
        return None
    if username is None or password is None:
        return (
            f"{_ENV}SECURITY_PROTOCOL={protocol} needs {_ENV}SASL_USERNAME and {_ENV}SASL_PASSWORD"
        )
    if not password.get_secret_value():
        return f"{_ENV}SASL_PASSWORD is empty"
    return None


def _tls_problem(settings: KafkaSettings) -> str | None:
    protocol = settings.security_protocol
    files = {
        "SSL_CAFILE": settings.ssl_cafile,
        "SSL_CERTFILE": settings.ssl_certfile,
        "SSL_KEYFILE": settings.ssl_keyfile,
    }
    given = [name for name, path in files.items() if path is not None]
    if given and protocol not in _TLS:
        return (
            f"{_ENV}{given[0]} is set but {_ENV}SECURITY_PROTOCOL is {protocol}: "
            "use SSL or SASL_SSL"
        )
    if settings.ssl_keyfile is not None and settings.ssl_certfile is None:
        return f"{_ENV}SSL_KEYFILE is set without {_ENV}SSL_CERTFILE"
    missing = [name for name, path in files.items() if path is not None and not path.is_file()]
    if missing:
        return f"{_ENV}{missing[0]} {str(files[missing[0]])!r} is not a readable file"
    return None


def ssl_context(settings: KafkaSettings) -> ssl.SSLContext | None:
    """The TLS context of a client (hostname checked; the system CAs unless ``ssl_cafile``);
    None without TLS."""
    if settings.security_protocol not in _TLS:
        return None
    context: ssl.SSLContext = create_ssl_context(
        cafile=settings.ssl_cafile, certfile=settings.ssl_certfile, keyfile=settings.ssl_keyfile
    )
    return context


def aiokafka_security(settings: KafkaSettings) -> dict[str, object]:
    """The security keyword arguments of an aiokafka client; empty for ``PLAINTEXT``."""
    protocol = settings.security_protocol
    if protocol == "PLAINTEXT":
        return {}
    options: dict[str, object] = {"security_protocol": protocol}
    context = ssl_context(settings)
    if context is not None:
        options["ssl_context"] = context
    if protocol in _SASL:
        password = settings.sasl_password
        options["sasl_mechanism"] = settings.sasl_mechanism
        options["sasl_plain_username"] = settings.sasl_username
        options["sasl_plain_password"] = password.get_secret_value() if password else None
    return options


def broker_security(settings: KafkaSettings) -> BaseSecurity | None:
    """FastStream's security object for ``KafkaBroker(security=...)``; None for ``PLAINTEXT``."""
    protocol = settings.security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = ssl_context(settings)
    use_ssl = context is not None
    if protocol not in _SASL:
        return BaseSecurity(ssl_context=context, use_ssl=use_ssl)
    username = settings.sasl_username
    password = settings.sasl_password
    if username is None or password is None:  # excluded by security_problem
        msg = "SASL needs a username and a password"
        raise ValueError(msg)
    kinds: dict[str, type[SASLPlaintext | SASLScram256 | SASLScram512]] = {
        "SCRAM-SHA-512": SASLScram512,
        "SCRAM-SHA-256": SASLScram256,
        "PLAIN": SASLPlaintext,
    }
    kind = kinds[settings.sasl_mechanism]
    return kind(username, password.get_secret_value(), ssl_context=context, use_ssl=use_ssl)


__all__ = ["aiokafka_security", "broker_security", "security_problem", "ssl_context"]
