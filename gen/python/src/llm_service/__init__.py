"""The Python SDK of llm-service.

    llm_service.v1       the generated messages (llm_service_pb2) and grpcio stubs (llm_service_pb2_grpc)
    LlmClient            the stub on a grpc channel that sends the API key and a default deadline
    AsyncLlmClient       the same for asyncio (grpc.aio)
"""

from llm_service._settings import DEFAULT_TIMEOUT, ApiKey
from llm_service.aio import AsyncLlmClient
from llm_service.client import LlmClient

__all__ = ["DEFAULT_TIMEOUT", "ApiKey", "AsyncLlmClient", "LlmClient"]
