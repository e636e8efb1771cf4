"""Decoding the google.rpc details that every llm-service error carries."""

from dataclasses import dataclass
from typing import Optional

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from llm_service.v1 import llm_service_pb2 as llm


def user(text: str) -> list:
    return [llm.Message(role=llm.ROLE_USER, content=text)]


@dataclass
class Details:
    info: error_details_pb2.ErrorInfo
    retry: Optional[error_details_pb2.RetryInfo] = None
    bad_request: Optional[error_details_pb2.BadRequest] = None


def details_of_status(status: status_pb2.Status) -> Details:
    """ErrorInfo (required, domain llm-service, with a request_id) and the optional details."""
    found = {}
    for any_detail in status.details:
        for kind in (error_details_pb2.ErrorInfo, error_details_pb2.RetryInfo, error_details_pb2.BadRequest):
            if any_detail.Is(kind.DESCRIPTOR):
                message = kind()
                assert any_detail.Unpack(message)
                found[kind] = message
    info = found.get(error_details_pb2.ErrorInfo)
    assert info is not None, f"status {status.code} {status.message!r} has no ErrorInfo"
    assert info.domain == "llm-service"
    assert info.metadata["request_id"], info
    return Details(
        info=info,
        retry=found.get(error_details_pb2.RetryInfo),
        bad_request=found.get(error_details_pb2.BadRequest),
    )


def details_of(err: grpc.RpcError) -> Details:
    """The details of a failed sync call (or a grpc.aio.AioRpcError), via grpcio-status."""
    status = rpc_status.from_call(err)
    assert status is not None, f"{err.code()} {err.details()!r} carries no google.rpc.Status"
    assert status.code == err.code().value[0]
    return details_of_status(status)
