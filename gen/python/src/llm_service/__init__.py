"""The Python SDK of llm-service.

    llm_service.v1       the generated messages (llm_service_pb2) and grpcio stubs (llm_service_pb2_grpc)
"""
