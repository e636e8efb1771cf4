"""AsyncLlmClient: the generated LlmServiceStub on a grpc.aio (asyncio) channel that adds the API
key and a default deadline to every call."""

import inspect
from typing import Optional, Sequence, Tuple

import grpc
import grpc.aio

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


class _Defaults:
    """The asyncio twin of llm_service.client._Defaults. grpc.aio files an interceptor under the
    first kind it implements only, hence one subclass per kind below."""

    def __init__(self, api_key: Optional[ApiKey], timeout: Optional[float]):
        self._api_key = api_key
        self._timeout = timeout

    async def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        # A copy: the caller's own grpc.aio.Metadata object stays as it was.
        metadata = grpc.aio.Metadata(*(details.metadata or ()))
        if self._api_key is not None and not has_authorization(tuple(metadata)):
            key = self._api_key() if callable(self._api_key) else self._api_key
            if inspect.isawaitable(key):
                key = await key
            entry = bearer(key)
            if entry is not None:
                metadata.add(*entry)
        return grpc.aio.ClientCallDetails(
            details.method,
            details.timeout if details.timeout is not None else self._timeout,
            metadata,
            details.credentials,
            details.wait_for_ready,
        )



class _UnaryUnaryDefaults(_Defaults, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation, client_call_details, request):
        return await continuation(await self._details(client_call_details), request)


class _UnaryStreamDefaults(_Defaults, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation, client_call_details, request):
        return await continuation(await self._details(client_call_details), request)


class AsyncLlmClient(LlmServiceStub):
    """LlmClient for asyncio: the generated stub on a grpc.aio channel of its own, with the same
    arguments. Make it inside the event loop that uses it:

        async with AsyncLlmClient("127.0.0.1:8080", api_key=key) as client:
            resp = await client.Generate(request)
            async for event in client.StreamGenerate(stream_request):
                ...

    api_key may also be an async function. interceptors: grpc.aio client interceptors, one object
    per kind (grpc.aio uses an object for the first kind it implements only). Cancelling the task that awaits a call (or call.cancel())
    cancels it on the service.
    """

    def __init__(
        self,
        target: str,
        *,
        api_key: Optional[ApiKey] = None,
        timeout: Optional[float] = DEFAULT_TIMEOUT,
        credentials: Optional[grpc.ChannelCredentials] = None,
        options: Sequence[Tuple[str, object]] = (),
        interceptors: Sequence[grpc.aio.ClientInterceptor] = (),
    ):
        target = checked_target(target)
        api_key, timeout = checked_api_key(api_key), checked_timeout(timeout)
        chain = [_UnaryUnaryDefaults(api_key, timeout), _UnaryStreamDefaults(api_key, timeout), *interceptors]
        if credentials is None:
            channel = grpc.aio.insecure_channel(target, options=options, interceptors=chain)
        else:
            channel = grpc.aio.secure_channel(target, credentials, options=options, interceptors=chain)
        #: The underlying grpc.aio channel (its interceptors add the key and the deadline).
        self.channel = channel
        super().__init__(channel)

    async def close(self, grace: Optional[float] = None) -> None:
        """Closes the channel; after `grace` seconds (default: at once) running calls end with CANCELLED."""
        await self.channel.close(grace)

    async def __aenter__(self) -> "AsyncLlmClient":
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()
