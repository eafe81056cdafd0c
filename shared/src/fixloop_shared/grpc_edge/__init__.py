"""The gRPC edge every service shares, one concern per module.

* :mod:`~fixloop_shared.grpc_edge.errors` — rich ``google.rpc`` statuses and the one mapping of
  the error taxonomy (:mod:`fixloop_shared.errors`) to gRPC status codes: :func:`abort_for`, and
  the interceptors that turn a raised :class:`~fixloop_shared.errors.DomainError` into its status
  and anything unexpected into a bare ``INTERNAL``.
* :mod:`~fixloop_shared.grpc_edge.principals` — who calls: :class:`Principal` (a partner, a
  contractor's app or a tenant's operator), configured as :class:`PrincipalSpec` entries holding
  only hashes of their API keys (:func:`hash_api_key`, :func:`new_api_key`), looked up in a
  :class:`PrincipalDirectory`.
* :mod:`~fixloop_shared.grpc_edge.auth` — API-key authentication; the calling principal
  (:func:`~fixloop_shared.grpc_edge.auth.authenticated_principal`) and its tenant
  (:func:`~fixloop_shared.grpc_edge.auth.authenticated_tenant`) come from its key, never from a
  request message; one log line per call.
* :mod:`~fixloop_shared.grpc_edge.rate_limit` — requests per principal in moving windows,
  refused with ``RESOURCE_EXHAUSTED``.
* :mod:`~fixloop_shared.grpc_edge.observability` — a SERVER span per call and the RED metrics
  (``grpc_server_handled_total`` by method and code, ``grpc_server_handling_seconds``) on the
  service's registry.
* :mod:`~fixloop_shared.grpc_edge.server` — build a ``grpc.aio`` server with all of the above,
  health checking and reflection; stop it gracefully.
* :mod:`~fixloop_shared.grpc_edge.hosting` — such a server in a service's lifespan: started and
  drained with the app, its health following the service's readiness.
* :mod:`~fixloop_shared.grpc_edge.reads` — a servicer's read within the call's deadline, store
  trouble mapped to DEADLINE_EXCEEDED or UNAVAILABLE.
* :mod:`~fixloop_shared.grpc_edge.settings` — a service's gRPC API settings
  (``FIXLOOP_<SERVICE>_GRPC_*``, ``FIXLOOP_<SERVICE>_PRINCIPALS``) in one base class.

Servicers behind these interceptors must be ``async``.
"""

from fixloop_shared.grpc_edge.principals import (
    API_KEY_PREFIX,
    Principal,
    PrincipalDirectory,
    PrincipalKind,
    PrincipalSpec,
    PrincipalSpecs,
    hash_api_key,
    new_api_key,
)

__all__ = [
    "API_KEY_PREFIX",
    "Principal",
    "PrincipalDirectory",
    "PrincipalKind",
    "PrincipalSpec",
    "PrincipalSpecs",
    "hash_api_key",
    "new_api_key",
]
