"""The gRPC edge every service shares, one concern per module.

* :mod:`~fixloop_shared.grpc_edge.errors` — rich ``google.rpc`` statuses and the one mapping of
  the error taxonomy (:mod:`fixloop_shared.errors`) to gRPC status codes: :func:`abort_for`, and
  the interceptors that turn a raised :class:`~fixloop_shared.errors.DomainError` into its status
  and anything unexpected into a bare ``INTERNAL``.
* :mod:`~fixloop_shared.grpc_edge.auth` — API-key authentication; the caller's tenant comes
  from its key (:func:`authenticated_tenant`), never from a request message.
* :mod:`~fixloop_shared.grpc_edge.rate_limit` — requests per tenant in moving windows, refused
  with ``RESOURCE_EXHAUSTED``.
* :mod:`~fixloop_shared.grpc_edge.server` — build a ``grpc.aio`` server with all of the above,
  health checking and reflection; stop it gracefully.

Servicers behind these interceptors must be ``async``.
"""
