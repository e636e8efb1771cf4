"""LlmClient: the generated LlmServiceStub on a grpc (sync) channel that adds the API key and a
default deadline to every call."""

import collections
from typing import Optional, Sequence, Tuple

import grpc

from llm_service._settings import (
    DEFAULT_TIMEOUT,
    ApiKey,
    bearer,
    checked_api_key,
    checked_target,
    checked_timeout,
    has_authorization,
)
from llm_service.v1.llm_service_pb2_grpc import LlmServiceStub


class _CallDetails(
    collections.namedtuple("_CallDetails", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")),
    grpc.ClientCallDetails,
):
    pass


class _Defaults(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Sets the deadline of calls that pass no timeout, and `authorization: Bearer <key>` on calls
    that carry no authorization metadata of their own. LlmService has only unary and
    server-streaming methods."""

    def __init__(self, api_key: Optional[ApiKey], timeout: Optional[float]):
        self._api_key = api_key
        self._timeout = timeout

    def _details(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        metadata = list(details.metadata or ())
        if self._api_key is not None and not has_authorization(metadata):
            entry = bearer(self._api_key() if callable(self._api_key) else self._api_key)
            if entry is not None:
                metadata.append(entry)
        return _CallDetails(
            details.method,
            details.timeout if details.timeout is not None else self._timeout,
            metadata or None,
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation, client_call_details, request):
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(self, continuation, client_call_details, request):
        return continuation(self._details(client_call_details), request)


class LlmClient(LlmServiceStub):
    """A client of llm.v1.LlmService: the generated stub (Generate, StreamGenerate, BatchGenerate,
    ListModels, GetUsage, Embed, with their usual `timeout=` and `metadata=` arguments) on a channel of its
    own that adds the API key and a default deadline:

        with LlmClient("127.0.0.1:8080", api_key=os.environ["LLM_API_KEY"]) as client:
            resp = client.Generate(llm.GenerateRequest(model="echo", messages=[...]))

    target: the service's host:port. api_key: sent as `authorization: Bearer <key>` unless a call
    passes its own authorization metadata; a function is asked before each call. timeout: the
    deadline in seconds of calls that pass none (default 60, the service's default; None sends
    none). credentials: grpc.ssl_channel_credentials() and the like for TLS (insecure without).
    options: channel arguments. interceptors: more grpc client interceptors, run after the one that
    sets the key and the deadline.
    """

    def __init__(
        self,
        target: str,
        *,
        api_key: Optional[ApiKey] = None,
        timeout: Optional[float] = DEFAULT_TIMEOUT,
        credentials: Optional[grpc.ChannelCredentials] = None,
        options: Sequence[Tuple[str, object]] = (),
        interceptors: Sequence[object] = (),
    ):
        target = checked_target(target)
        defaults = _Defaults(checked_api_key(api_key), checked_timeout(timeout))
        if credentials is None:
            channel = grpc.insecure_channel(target, options=options)
        else:
            channel = grpc.secure_channel(target, credentials, options=options)
        #: The underlying channel, without the key and deadline (e.g. for channel_ready_future).
        self.channel = channel
        super().__init__(grpc.intercept_channel(channel, defaults, *interceptors))

    def close(self) -> None:
        """Closes the channel; calls still running end with CANCELLED."""
        self.channel.close()

    def __enter__(self) -> "LlmClient":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
