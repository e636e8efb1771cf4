"""Calls llm-service with the Python SDK (LlmClient: the generated grpcio stub with the API key and a
default deadline): lists the models, generates one answer, streams another token by token under a
deadline, and handles a RESOURCE_EXHAUSTED error by waiting the RetryInfo delay the service sends
and trying again.

    pip install ./gen/python            # from the repository root
    export LLM_API_KEY=...              # printed by the service on its first start
    python examples/python/main.py      # LLM_SERVICE_ADDR defaults to 127.0.0.1:8080
"""

import os
import sys
import time

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from llm_service import LlmClient
from llm_service.v1 import llm_service_pb2 as llm


def main() -> None:
    addr = os.environ.get("LLM_SERVICE_ADDR", "127.0.0.1:8080")
    key = os.environ.get("LLM_API_KEY")
    if not key:
        sys.exit("set LLM_API_KEY (the service prints a development key on its first start)")

    # Every call sends the key; a call without a timeout of its own gets 10 s here (default 60 s).
    with LlmClient(addr, api_key=key, timeout=10) as client:
        # 1. The models this key may use.
        for model in client.ListModels(llm.ListModelsRequest(), timeout=5).models:
            print(f"model: {model.id} (aliases {', '.join(model.aliases)}, context window {model.context_window})")

        # 2. One complete answer.
        resp = client.Generate(
            llm.GenerateRequest(model="echo", messages=[llm.Message(role=llm.ROLE_USER, content="Hello from Python!")]),
        )
        print(f"generate: {resp.text!r} (model {resp.model}, {resp.usage.total_tokens} tokens, cost {resp.cost_usd_nanos} nano-USD)")

        # 3. Tokens as they come, under a 30 s deadline for the whole stream. call.cancel() (or the
        # deadline passing) stops the call on the service and upstream too.
        call = client.StreamGenerate(
            llm.StreamGenerateRequest(model="echo", messages=[llm.Message(role=llm.ROLE_USER, content="Stream these words")]),
            timeout=30,
        )
        print("stream:", end="")
        for event in call:  # a stream that breaks raises grpc.RpcError, never ends quietly
            kind = event.WhichOneof("event")
            if kind == "started":
                print(f" [started {event.started.model} on {event.started.provider}]", end="")
            elif kind == "delta":
                print(f" {event.delta.text!r}", end="")
            elif kind == "completed":
                done = event.completed
                print(f" [completed {llm.FinishReason.Name(done.finish_reason)}, {done.usage.total_tokens} tokens]")

        # 4. RESOURCE_EXHAUSTED with RetryInfo: the sim provider's test knobs script an upstream 429
        # with Retry-After 1.5 s. Within a 1 s deadline the service cannot wait that long, so it
        # answers at once with the delay in RetryInfo; the caller waits it out and tries again (here
        # without the scripted failure). A key created with
        # `npm run keys -- create --name x --rpm 1` hits this service's own rate limit (reason
        # RATE_LIMITED) the same way.
        scripted = {"sim-fail": "PROVIDER_RATE_LIMITED", "sim-retry-after-ms": "1500"}
        for attempt in range(1, 4):
            request = llm.GenerateRequest(
                model="echo",
                messages=[llm.Message(role=llm.ROLE_USER, content="Worth the wait")],
                metadata=scripted,
            )
            try:
                resp = client.Generate(request, timeout=1)
            except grpc.RpcError as err:
                delay = retry_delay(err)
                if delay is None or attempt == 3:
                    raise
                print(f"rate limited: {err.code().name}, reason {reason(err)}, retry after {delay}s")
                time.sleep(delay)
                scripted = {}
                continue
            print(f"retried: {resp.text!r} after {attempt} attempt(s)")
            break


def retry_delay(err: grpc.RpcError):
    """The RetryInfo delay in seconds of a RESOURCE_EXHAUSTED error, else None."""
    status = rpc_status.from_call(err)
    if err.code() != grpc.StatusCode.RESOURCE_EXHAUSTED or status is None:
        return None
    for detail in status.details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return info.retry_delay.ToTimedelta().total_seconds()
    return None


def reason(err: grpc.RpcError) -> str:
    """The ErrorInfo reason every llm-service error carries (domain "llm-service")."""
    status = rpc_status.from_call(err)
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info.reason
    return ""


if __name__ == "__main__":
    main()
