"""grpcio deadlines with fractions of a millisecond against every provider.

A deadline that is not a whole number of milliseconds once reached the openai and anthropic SDKs,
which refuse such a timeout, and the call failed with INTERNAL. The built-in sim provider never
noticed, so these tests start a second service whose catalogue points an openai, an anthropic and an
ollama deployment (and a sim one) at the project's wire simulator (src/simulator).

grpcio itself writes grpc-timeout in whole milliseconds (a 5.0000012 s timeout went out as `4980m`,
0.000999 s as `1m`), so against this client the check is a guard: it passed before the fix too. The
grpc-go test (sdk-tests/go/deadline_test.go) and test/e2e/upstream.test.ts (raw `u` and `n` values)
are the ones that failed before it.
"""

import os
import re
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Iterator

import grpc
import pytest

from conftest import ROOT, Service, running_service
from llm_service.v1 import llm_service_pb2 as llm
from llm_service.v1 import llm_service_pb2_grpc as llm_grpc
from sdk_helpers import user

LISTENING = re.compile(r"upstream simulator listening on (http://\S+)")


@pytest.fixture(scope="module")
def simulator_url() -> Iterator[str]:
    proc = subprocess.Popen(
        [str(ROOT / "node_modules" / ".bin" / "node"), "--import", "tsx", "src/simulator/main.ts", "--port", "0", "--host", "127.0.0.1"],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", tempfile.gettempdir())},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
    )
    found = threading.Event()
    url: list = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            match = LISTENING.search(line)
            if match and not url:
                url.append(match.group(1))
                found.set()
        found.set()  # the process ended

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        found.wait(60)
        if not url:
            pytest.fail("the upstream simulator was not listening within 60 s")
        yield url[0]
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(5)


def providers_catalogue(sim_url: str) -> str:
    def model(model_id: str, provider: str, base_url: str) -> str:
        return f"""
  - id: {model_id}
    contextWindow: 100000
    maxOutputTokens: 256
    deployments:
      - provider: {provider}
        model: upstream-{model_id}
        baseUrl: {base_url}
        options: {{ "header:x-sim-text": "echo" }}"""

    return (
        "models:"
        + model("oai", "openai", f"{sim_url}/v1")
        + model("claude", "anthropic", sim_url)
        + model("llama", "ollama", sim_url)
        + """
  - id: sim
    contextWindow: 100000
    maxOutputTokens: 256
    deployments:
      - { provider: sim, model: echo }
"""
    )


@pytest.fixture(scope="module")
def providers_service(simulator_url: str, tmp_path_factory) -> Iterator[Service]:
    catalogue = Path(tmp_path_factory.mktemp("catalogue")) / "catalogue.yaml"
    catalogue.write_text(providers_catalogue(simulator_url))
    with running_service(
        {
            "LLM_CONFIG": str(catalogue),
            "OPENAI_API_KEY": "sk-test-openai",
            "ANTHROPIC_API_KEY": "sk-test-anthropic",
            "OLLAMA_HOST": simulator_url,
        }
    ) as s:
        yield s


@pytest.fixture(scope="module")
def providers_client(providers_service: Service) -> Iterator[llm_grpc.LlmServiceStub]:
    with grpc.insecure_channel(providers_service.addr) as channel:
        yield llm_grpc.LlmServiceStub(channel)


MODELS = ["oai", "claude", "llama", "sim"]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("timeout", [5.0000012, 3.000333007, 2.5000005])
def test_a_deadline_with_a_fraction_of_a_millisecond_is_served(providers_client, providers_service, model, timeout):
    resp = providers_client.Generate(
        llm.GenerateRequest(model=model, messages=user("hello upstream world")),
        metadata=providers_service.auth,
        timeout=timeout,
    )
    assert resp.text == "hello upstream world"


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("timeout", [0.000999, 0.000000999])
def test_a_deadline_under_a_millisecond_is_deadline_exceeded_never_internal(providers_client, providers_service, model, timeout):
    with pytest.raises(grpc.RpcError) as raised:
        providers_client.Generate(
            llm.GenerateRequest(model=model, messages=user("hello upstream world")),
            metadata=providers_service.auth,
            timeout=timeout,
        )
    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
