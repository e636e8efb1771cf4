"""The sync grpcio stubs of gen/python against the running service: every RPC, stream order,
deadlines, cancellation that reaches the service's ledger, and google.rpc error details."""

import time

import grpc
import pytest
from google.rpc import status_pb2

from llm_service.v1 import llm_service_pb2 as llm
from sdk_helpers import details_of, details_of_status, user
from conftest import UUID


def test_list_models_lists_the_sim_catalogue(client, service):
    models = {m.id: m for m in client.ListModels(llm.ListModelsRequest(), metadata=service.auth, timeout=5).models}
    assert set(models) == {"sim/echo", "sim/lorem", "sim/embed"}
    echo = models["sim/echo"]
    assert list(echo.aliases) == ["echo"]
    assert echo.provider == "sim" and echo.context_window > 0
    assert echo.deployments[0].state == llm.CIRCUIT_STATE_CLOSED


def test_generate_returns_the_answer_with_usage_and_cost(client, service):
    resp = client.Generate(
        llm.GenerateRequest(model="echo", messages=user("Hello from the Python SDK")), metadata=service.auth, timeout=10
    )
    assert resp.text == "Hello from the Python SDK"
    assert (resp.model, resp.provider, resp.attempts) == ("sim/echo", "sim", 1)
    assert UUID.match(resp.id)
    assert resp.finish_reason == llm.FINISH_REASON_STOP
    assert resp.usage.input_tokens > 0 and resp.usage.output_tokens > 0
    assert resp.usage.total_tokens == resp.usage.input_tokens + resp.usage.output_tokens
    assert resp.cost_usd_nanos > 0


def test_stream_generate_sends_started_deltas_then_completed(client, service):
    call = client.StreamGenerate(
        llm.StreamGenerateRequest(model="echo", messages=user("one two three four")), metadata=service.auth, timeout=10
    )
    events = list(call)
    assert [e.WhichOneof("event") for e in events] == ["started", "delta", "delta", "delta", "delta", "completed"]
    started, completed = events[0].started, events[-1].completed
    assert UUID.match(started.id) and (started.model, started.provider) == ("sim/echo", "sim")
    assert "".join(e.delta.text for e in events[1:-1]) == "one two three four"
    assert completed.finish_reason == llm.FINISH_REASON_STOP
    assert completed.usage.output_tokens == 4 and completed.cost_usd_nanos > 0 and completed.attempts == 1
    assert call.code() == grpc.StatusCode.OK
    assert service.ledger_status(started.id) in ("ok", None)


def test_batch_generate_answers_each_item_with_a_response_or_a_status(client, service):
    resp = client.BatchGenerate(
        llm.BatchGenerateRequest(
            requests=[
                llm.GenerateRequest(model="echo", messages=user("first item")),
                llm.GenerateRequest(model="no-such-model", messages=user("second item")),
                llm.GenerateRequest(model="sim/echo", messages=user("third item")),
            ],
            max_concurrency=2,
        ),
        metadata=service.auth,
        timeout=10,
    )
    assert [r.index for r in resp.results] == [0, 1, 2]
    assert [r.WhichOneof("result") for r in resp.results] == ["response", "error", "response"]
    assert resp.results[0].response.text == "first item"
    assert resp.results[2].response.text == "third item"
    error = resp.results[1].error
    assert isinstance(error, status_pb2.Status)  # googleapis-common-protos' google.rpc.Status
    assert error.code == grpc.StatusCode.NOT_FOUND.value[0]
    info = details_of_status(error).info
    assert info.reason == "MODEL_NOT_FOUND" and info.metadata["model"] == "no-such-model"


def test_get_usage_sums_the_tenants_requests(client, service):
    client.Generate(llm.GenerateRequest(model="echo", messages=user("count me")), metadata=service.auth, timeout=10)
    deadline = time.monotonic() + 10  # the ledger writes off the hot path
    while True:
        usage = client.GetUsage(llm.GetUsageRequest(), metadata=service.auth, timeout=5)
        assert usage.tenant == "default"
        assert usage.start_time.ToDatetime() < usage.end_time.ToDatetime()
        echo = next((m.totals for m in usage.by_model if m.model == "sim/echo"), None)
        if echo is not None and echo.succeeded >= 1:
            break
        assert time.monotonic() < deadline, f"GetUsage never showed the request: {usage}"
        time.sleep(0.05)
    assert usage.totals.requests >= echo.requests
    assert usage.totals.usage.total_tokens > 0 and usage.totals.cost_usd_nanos > 0
    assert usage.by_key and usage.by_day


STALL = {"sim-stall-ms": "5000"}


def test_generate_past_its_deadline_is_deadline_exceeded(client, service):
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as caught:
        client.Generate(llm.GenerateRequest(model="echo", messages=user("slow"), metadata=STALL), metadata=service.auth, timeout=0.3)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 2


def test_stream_past_its_deadline_is_deadline_exceeded(client, service):
    started = time.monotonic()
    call = client.StreamGenerate(
        llm.StreamGenerateRequest(model="echo", messages=user("slow"), metadata=STALL), metadata=service.auth, timeout=0.3
    )
    with pytest.raises(grpc.RpcError) as caught:
        list(call)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 2


def lorem_failed(client, service) -> int:
    """GetUsage's failed count (failed or cancelled) for sim/lorem, which only cancellation tests use."""
    usage = client.GetUsage(llm.GetUsageRequest(), metadata=service.auth, timeout=5)
    return next((m.totals.failed for m in usage.by_model if m.model == "sim/lorem"), 0)


def wait_for_lorem_failed(client, service, want: int) -> None:
    deadline = time.monotonic() + 10
    while (got := lorem_failed(client, service)) != want:
        assert time.monotonic() < deadline, f"GetUsage for sim/lorem counts {got} failed, want {want}"
        time.sleep(0.05)


def test_cancelling_a_stream_reaches_the_service(client, service):
    before = lorem_failed(client, service)
    call = client.StreamGenerate(
        llm.StreamGenerateRequest(
            model="sim/lorem",
            messages=user("take your time"),
            max_output_tokens=200,
            metadata={"sim-inter-token-ms": "200"},
        ),
        metadata=service.auth,
        timeout=30,
    )
    started = next(call).started
    assert next(call).WhichOneof("event") == "delta"  # the model is producing
    assert call.cancel()
    with pytest.raises(grpc.RpcError) as caught:
        next(call)
    assert caught.value.code() == grpc.StatusCode.CANCELLED
    # The service saw it: GetUsage counts it as failed (failed or cancelled), its ledger row says cancelled.
    wait_for_lorem_failed(client, service, before + 1)
    assert service.ledger_status(started.id) in ("cancelled", None)


def test_unknown_model_is_not_found_with_error_info(client, service):
    with pytest.raises(grpc.RpcError) as caught:
        client.Generate(llm.GenerateRequest(model="gpt-9", messages=user("hi")), metadata=service.auth, timeout=5)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    info = details_of(caught.value).info
    assert info.reason == "MODEL_NOT_FOUND" and info.metadata["model"] == "gpt-9"
    # The reason is the proto's ErrorReason value name without its prefix.
    assert "ERROR_REASON_" + info.reason == llm.ErrorReason.Name(llm.ERROR_REASON_MODEL_NOT_FOUND)


def test_invalid_request_is_invalid_argument_with_bad_request(client, service):
    with pytest.raises(grpc.RpcError) as caught:
        client.Generate(llm.GenerateRequest(model="echo"), metadata=service.auth, timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = details_of(caught.value)
    assert details.info.reason == "INVALID_REQUEST"
    assert details.bad_request is not None and details.bad_request.field_violations[0].field == "messages"


def test_a_call_without_a_key_is_unauthenticated(client, service):
    with pytest.raises(grpc.RpcError) as caught:
        client.Generate(llm.GenerateRequest(model="echo", messages=user("hi")), timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert details_of(caught.value).info.reason == "UNAUTHENTICATED"


def test_upstream_rate_limit_is_resource_exhausted_with_retry_info(client, service):
    request = llm.GenerateRequest(
        model="echo",
        messages=user("hi"),
        metadata={"sim-fail": "PROVIDER_RATE_LIMITED", "sim-retry-after-ms": "30000"},
    )
    with pytest.raises(grpc.RpcError) as caught:
        client.Generate(request, metadata=service.auth, timeout=5)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    details = details_of(caught.value)
    assert details.info.reason == "PROVIDER_RATE_LIMITED"
    assert details.retry is not None and details.retry.retry_delay.ToMilliseconds() == 30000


def test_a_stream_that_breaks_raises_after_its_first_tokens(client, service):
    call = client.StreamGenerate(
        llm.StreamGenerateRequest(
            model="echo",
            messages=user("one two three"),
            metadata={"sim-fail": "PROVIDER_UNAVAILABLE", "sim-fail-after": "1"},
        ),
        metadata=service.auth,
        timeout=10,
    )
    seen = []
    with pytest.raises(grpc.RpcError) as caught:
        for event in call:
            seen.append(event)
    assert [e.WhichOneof("event") for e in seen] == ["started", "delta"]
    assert seen[1].delta.text == "one "
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert details_of(caught.value).info.reason == "PROVIDER_UNAVAILABLE"
