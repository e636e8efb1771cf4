"""protoc-gen-grpc-python: grpcio-tools' gRPC Python generator as a protoc plugin, for buf.

grpcio-tools (PyPI) ships protoc with the gRPC Python generator compiled in, but no
`protoc-gen-grpc_python` executable, and buf only runs `protoc_builtin` for protoc's own
generators. This plugin reads buf's CodeGeneratorRequest on stdin, hands the descriptors
to grpcio-tools' protoc (`--descriptor_set_in`, `--grpc_python_out`) in-process, and
answers with the files that produced. The plugin parameter, if any, is passed on
(e.g. `grpc_2_0`).

Run it with the interpreter of the SDK tools venv (scripts/sdk-tools.sh), which pins
grpcio-tools: `local: [.tmp/sdk/venv/bin/python, scripts/protoc-gen-grpc-python.py]`.
"""

import os
import sys
import tempfile

from google.protobuf import descriptor_pb2
from google.protobuf.compiler import plugin_pb2
from grpc_tools import protoc


def generate(request: plugin_pb2.CodeGeneratorRequest) -> plugin_pb2.CodeGeneratorResponse:
    response = plugin_pb2.CodeGeneratorResponse(
        supported_features=plugin_pb2.CodeGeneratorResponse.FEATURE_PROTO3_OPTIONAL,
    )
    with tempfile.TemporaryDirectory(prefix="protoc-gen-grpc-python-") as tmp:
        descriptors = os.path.join(tmp, "descriptors.binpb")
        with open(descriptors, "wb") as f:
            f.write(descriptor_pb2.FileDescriptorSet(file=request.proto_file).SerializeToString())
        out = os.path.join(tmp, "out")
        os.mkdir(out)
        parameter = f"{request.parameter}:" if request.parameter else ""
        code = protoc.main(
            [
                "protoc",
                f"--descriptor_set_in={descriptors}",
                f"--grpc_python_out={parameter}{out}",
                *request.file_to_generate,
            ]
        )
        if code != 0:
            response.error = f"grpcio-tools protoc exited with {code} (its message is above)"
            return response
        for directory, _, names in sorted(os.walk(out)):
            for name in sorted(names):
                path = os.path.join(directory, name)
                with open(path, encoding="utf-8") as f:
                    response.file.add(name=os.path.relpath(path, out).replace(os.sep, "/"), content=f.read())
    return response


def main() -> None:
    request = plugin_pb2.CodeGeneratorRequest.FromString(sys.stdin.buffer.read())
    sys.stdout.buffer.write(generate(request).SerializeToString())


if __name__ == "__main__":
    main()
