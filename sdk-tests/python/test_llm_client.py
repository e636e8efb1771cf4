"""LlmClient and AsyncLlmClient (llm_service): the generated stub on a channel that sends the API key
and a default deadline, against the running service."""

import asyncio
import time

import grpc
import grpc.aio
import pytest
from grpc_status import rpc_status

from llm_service import DEFAULT_TIMEOUT, AsyncLlmClient, LlmClient
from llm_service.v1 import llm_service_pb2 as llm
from sdk_helpers import details_of, details_of_status, user
from test_sync_client import lorem_failed, wait_for_lorem_failed

STALL = {"sim-stall-ms": "5000"}


class SeenTimeouts(grpc.UnaryUnaryClientInterceptor):
    """Records the deadline each call leaves the client with (it runs after the client's own interceptor)."""

    def __init__(self):
        self.timeouts = []

    def intercept_unary_unary(self, continuation, client_call_details, request):
        self.timeouts.append(client_call_details.timeout)
        return continuation(client_call_details, request)


def test_every_rpc_works_with_the_key_given_once(service):
    with LlmClient(service.addr, api_key=service.key) as client:
        models = client.ListModels(llm.ListModelsRequest())
        answer = client.Generate(llm.GenerateRequest(model="echo", messages=user("hello client")))
        events = list(client.StreamGenerate(llm.StreamGenerateRequest(model="echo", messages=user("streamed by the client"))))
        batch = client.BatchGenerate(llm.BatchGenerateRequest(requests=[llm.GenerateRequest(model="echo", messages=user("x"))]))
        usage = client.GetUsage(llm.GetUsageRequest())
        vectors = client.Embed(llm.EmbedRequest(model="embed", inputs=["first text", "second"], dimensions=4))
    assert [m.id for m in models.models] == ["sim/echo", "sim/lorem", "sim/embed"]
    assert list(models.models[2].capabilities) == ["embeddings"]
    assert [(e.index, len(e.values)) for e in vectors.embeddings] == [(0, 4), (1, 4)]
    assert abs(sum(v * v for v in vectors.embeddings[0].values) - 1) < 1e-5
    assert (vectors.model, vectors.usage.input_tokens, vectors.usage.output_tokens) == ("sim/embed", 3, 0)
    assert answer.text == "hello client"
    assert [e.WhichOneof("event") for e in events] == ["started", "delta", "delta", "delta", "delta", "completed"]
    assert batch.results[0].response.text == "x"
    assert usage.tenant == "default"


def test_calls_without_a_timeout_get_the_default_deadline(service):
    seen = SeenTimeouts()
    with LlmClient(service.addr, api_key=service.key, interceptors=[seen]) as client:
        client.Generate(llm.GenerateRequest(model="echo", messages=user("a")))
        client.Generate(llm.GenerateRequest(model="echo", messages=user("b")), timeout=7)
    with LlmClient(service.addr, api_key=service.key, timeout=None, interceptors=[seen]) as client:
        client.Generate(llm.GenerateRequest(model="echo", messages=user("c")))
    assert DEFAULT_TIMEOUT == 60.0
    assert seen.timeouts == [60.0, 7, None]


def test_the_default_deadline_reaches_the_service(service):
    with LlmClient(service.addr, api_key=service.key, timeout=0.3) as client:
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as unary:
            client.Generate(llm.GenerateRequest(model="echo", messages=user("slow"), metadata=STALL))
        with pytest.raises(grpc.RpcError) as stream:
            list(client.StreamGenerate(llm.StreamGenerateRequest(model="echo", messages=user("slow"), metadata=STALL)))
        elapsed = time.monotonic() - started
        # A call's own timeout still wins over the default.
        slow = client.Generate(
            llm.GenerateRequest(model="echo", messages=user("worth it"), metadata={"sim-stall-ms": "500"}), timeout=10
        )
    assert unary.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert stream.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert elapsed < 3
    assert slow.text == "worth it"


def test_a_calls_own_authorization_wins_over_the_key(service):
    with LlmClient(service.addr, api_key=service.key) as client:
        with pytest.raises(grpc.RpcError) as caught:
            client.Generate(
                llm.GenerateRequest(model="echo", messages=user("hi")),
                metadata=(("authorization", "Bearer not-a-key"),),
            )
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert details_of(caught.value).info.reason == "UNAUTHENTICATED"


def test_without_a_key_the_service_answers_unauthenticated(service):
    with LlmClient(service.addr) as client:
        with pytest.raises(grpc.RpcError) as caught:
            client.Generate(llm.GenerateRequest(model="echo", messages=user("hi")))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_key_function_is_asked_before_each_call(service):
    asked = []

    def key():
        asked.append(1)
        return service.key

    with LlmClient(service.addr, api_key=key) as client:
        for text in ("one", "two"):
            assert client.Generate(llm.GenerateRequest(model="echo", messages=user(text))).text == text
    assert len(asked) == 2


def test_errors_keep_their_google_rpc_details(service):
    request = llm.GenerateRequest(
        model="echo", messages=user("hi"), metadata={"sim-fail": "PROVIDER_RATE_LIMITED", "sim-retry-after-ms": "30000"}
    )
    # Within 5 s the service cannot wait the 30 s out, so it answers at once with RetryInfo.
    with LlmClient(service.addr, api_key=service.key, timeout=5) as client:
        with pytest.raises(grpc.RpcError) as caught:
            client.Generate(request)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    details = details_of(caught.value)
    assert details.info.reason == "PROVIDER_RATE_LIMITED"
    assert details.retry is not None and details.retry.retry_delay.seconds == 30


def test_cancelling_a_stream_reaches_the_service(client, service):
    before = lorem_failed(client, service)
    with LlmClient(service.addr, api_key=service.key) as llm_client:
        call = llm_client.StreamGenerate(
            llm.StreamGenerateRequest(
                model="sim/lorem", messages=user("slowly"), max_output_tokens=200, metadata={"sim-inter-token-ms": "200"}
            )
        )
        started = next(call).started
        assert next(call).WhichOneof("event") == "delta"
        assert call.cancel()
        with pytest.raises(grpc.RpcError) as caught:
            next(call)
    assert caught.value.code() == grpc.StatusCode.CANCELLED
    wait_for_lorem_failed(client, service, before + 1)
    assert service.ledger_status(started.id) in ("cancelled", None)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"api_key": "pasted\n"}, "api_key must be a string of printable ASCII"),
        ({"api_key": "with space"}, "api_key must be a string of printable ASCII"),
        ({"timeout": 0}, "timeout must be a number of seconds greater than 0"),
        ({"timeout": -1}, "timeout must be a number of seconds greater than 0"),
        ({"timeout": float("inf")}, "timeout must be a number of seconds greater than 0"),
    ],
)
def test_bad_options_fail_when_the_client_is_made(kwargs, message):
    for make in (LlmClient, AsyncLlmClient):
        with pytest.raises(ValueError, match=message):
            make("127.0.0.1:1", **kwargs)


def test_a_target_is_required():
    with pytest.raises(ValueError, match="target is required"):
        LlmClient("")


# --- AsyncLlmClient ---------------------------------------------------------------------------------


def test_async_client_calls_with_the_key_and_streams(service):
    async def main():
        async def key():
            return service.key

        async with AsyncLlmClient(service.addr, api_key=key) as client:
            answer = await client.Generate(llm.GenerateRequest(model="echo", messages=user("async client")))
            events = [e async for e in client.StreamGenerate(llm.StreamGenerateRequest(model="echo", messages=user("a b")))]
            return answer, events

    answer, events = asyncio.run(main())
    assert answer.text == "async client"
    assert [e.WhichOneof("event") for e in events] == ["started", "delta", "delta", "completed"]


def test_async_client_applies_the_default_deadline_and_a_calls_own_timeout(service):
    async def main():
        async with AsyncLlmClient(service.addr, api_key=service.key, timeout=0.3) as client:
            started = time.monotonic()
            with pytest.raises(grpc.aio.AioRpcError) as unary:
                await client.Generate(llm.GenerateRequest(model="echo", messages=user("slow"), metadata=STALL))
            with pytest.raises(grpc.aio.AioRpcError) as stream:
                [e async for e in client.StreamGenerate(llm.StreamGenerateRequest(model="echo", messages=user("slow"), metadata=STALL))]
            elapsed = time.monotonic() - started
            slow = await client.Generate(
                llm.GenerateRequest(model="echo", messages=user("worth it"), metadata={"sim-stall-ms": "500"}), timeout=10
            )
            return unary.value.code(), stream.value.code(), elapsed, slow

    unary, stream, elapsed, slow = asyncio.run(main())
    assert unary == grpc.StatusCode.DEADLINE_EXCEEDED and stream == grpc.StatusCode.DEADLINE_EXCEEDED
    assert elapsed < 3
    assert slow.text == "worth it"


def test_async_client_keeps_a_calls_own_authorization_and_error_details(service):
    async def main():
        async with AsyncLlmClient(service.addr, api_key=service.key, timeout=5) as client:
            with pytest.raises(grpc.aio.AioRpcError) as unauthenticated:
                await client.Generate(
                    llm.GenerateRequest(model="echo", messages=user("hi")), metadata=(("authorization", "Bearer nope"),)
                )
            call = client.Generate(
                llm.GenerateRequest(
                    model="echo", messages=user("hi"), metadata={"sim-fail": "PROVIDER_RATE_LIMITED", "sim-retry-after-ms": "30000"}
                )
            )
            with pytest.raises(grpc.aio.AioRpcError) as limited:
                await call
            return unauthenticated.value.code(), limited.value.code(), await rpc_status.aio.from_call(call)

    unauthenticated, limited, status = asyncio.run(main())
    assert unauthenticated == grpc.StatusCode.UNAUTHENTICATED
    assert limited == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert details_of_status(status).retry.retry_delay.seconds == 30
