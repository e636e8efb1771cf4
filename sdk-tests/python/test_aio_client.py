"""The same stubs on a grpc.aio channel (asyncio): every RPC, stream order, deadline, cancellation
and error details read with grpcio-status' async helper. Each test runs its own event loop."""

import asyncio
import time

import grpc
import pytest
from grpc_status import rpc_status

from llm_service.v1 import llm_service_pb2 as llm
from llm_service.v1 import llm_service_pb2_grpc as llm_grpc
from sdk_helpers import details_of_status, user
from test_sync_client import lorem_failed, wait_for_lorem_failed


def run(service, body):
    """Runs `await body(stub)` with a stub on a fresh grpc.aio channel."""

    async def main():
        async with grpc.aio.insecure_channel(service.addr) as channel:
            return await body(llm_grpc.LlmServiceStub(channel))

    return asyncio.run(main())


def test_aio_unary_rpcs(service):
    async def body(stub):
        models = await stub.ListModels(llm.ListModelsRequest(), metadata=service.auth, timeout=5)
        answer = await stub.Generate(llm.GenerateRequest(model="echo", messages=user("async hello")), metadata=service.auth, timeout=10)
        batch = await stub.BatchGenerate(
            llm.BatchGenerateRequest(requests=[llm.GenerateRequest(model="lorem", messages=user("x"), max_output_tokens=3)]),
            metadata=service.auth,
            timeout=10,
        )
        usage = await stub.GetUsage(llm.GetUsageRequest(), metadata=service.auth, timeout=5)
        return models, answer, batch, usage

    models, answer, batch, usage = run(service, body)
    assert [m.id for m in models.models] == ["sim/echo", "sim/lorem", "sim/embed"]
    assert answer.text == "async hello" and answer.finish_reason == llm.FINISH_REASON_STOP
    assert batch.results[0].response.usage.output_tokens == 3
    assert batch.results[0].response.finish_reason == llm.FINISH_REASON_LENGTH
    assert usage.tenant == "default"


def test_aio_stream_sends_started_deltas_then_completed(service):
    async def body(stub):
        call = stub.StreamGenerate(
            llm.StreamGenerateRequest(model="echo", messages=user("async stream works")), metadata=service.auth, timeout=10
        )
        events = [event async for event in call]
        return events, await call.code()

    events, code = run(service, body)
    assert code == grpc.StatusCode.OK
    assert [e.WhichOneof("event") for e in events] == ["started", "delta", "delta", "delta", "completed"]
    assert "".join(e.delta.text for e in events[1:-1]) == "async stream works"
    assert events[-1].completed.usage.output_tokens == 3


def test_aio_deadline_exceeded(service):
    async def body(stub):
        call = stub.Generate(
            llm.GenerateRequest(model="echo", messages=user("slow"), metadata={"sim-stall-ms": "5000"}),
            metadata=service.auth,
            timeout=0.3,
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        return caught.value.code()

    started = time.monotonic()
    assert run(service, body) == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 2


def test_aio_cancelling_a_stream_reaches_the_service(client, service):
    before = lorem_failed(client, service)

    async def body(stub):
        call = stub.StreamGenerate(
            llm.StreamGenerateRequest(
                model="sim/lorem",
                messages=user("take your time, async"),
                max_output_tokens=200,
                metadata={"sim-inter-token-ms": "200"},
            ),
            metadata=service.auth,
            timeout=30,
        )
        started = (await call.read()).started
        assert (await call.read()).WhichOneof("event") == "delta"
        assert call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call.read()
        return started.id, await call.code()

    request_id, code = run(service, body)
    assert code == grpc.StatusCode.CANCELLED
    wait_for_lorem_failed(client, service, before + 1)
    assert service.ledger_status(request_id) in ("cancelled", None)


def test_aio_error_details(service):
    async def body(stub):
        call = stub.Generate(
            llm.GenerateRequest(
                model="echo",
                messages=user("hi"),
                metadata={"sim-fail": "PROVIDER_RATE_LIMITED", "sim-retry-after-ms": "30000"},
            ),
            metadata=service.auth,
            timeout=5,
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        return caught.value.code(), await rpc_status.aio.from_call(call)

    code, status = run(service, body)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    details = details_of_status(status)
    assert details.info.reason == "PROVIDER_RATE_LIMITED"
    assert details.retry is not None and details.retry.retry_delay.seconds == 30
