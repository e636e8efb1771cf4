"""The installed llm-service-sdk distribution: one top-level package, llm_service (not llm, which
the unrelated PyPI project `llm` installs), with its type information, and dependency floors equal
to what the generated code checks at import."""

import re
from importlib import metadata
from pathlib import Path

import llm_service
from llm_service.v1 import llm_service_pb2, llm_service_pb2_grpc

DIST = metadata.distribution("llm-service-sdk")


def requirement(name: str) -> str:
    found = [r for r in DIST.requires or [] if re.match(rf"{re.escape(name)}(?=[<>=!~;\[ ]|$)", r)]
    assert len(found) == 1, DIST.requires
    return found[0].replace(" ", "")


def test_the_only_top_level_package_is_llm_service():
    top_level = {Path(f).parts[0] for f in DIST.files if not Path(f).parts[0].endswith(".dist-info")}
    assert top_level == {"llm_service"}
    # The modules imported here are the installed ones, not a source tree.
    assert Path(llm_service.__file__).resolve() == Path(DIST.locate_file("llm_service/__init__.py")).resolve()


def test_type_information_is_installed():
    files = {str(f) for f in DIST.files}
    for want in ["llm_service/py.typed", "llm_service/v1/py.typed", "llm_service/v1/llm_service_pb2.pyi"]:
        assert want in files, sorted(files)


def test_messages_belong_to_the_llm_service_package_and_keep_their_proto_names():
    assert llm_service_pb2.GenerateRequest.__module__ == "llm_service.v1.llm_service_pb2"
    assert llm_service_pb2.GenerateRequest.DESCRIPTOR.full_name == "llm.v1.GenerateRequest"
    assert llm_service_pb2.DESCRIPTOR.services_by_name["LlmService"].full_name == "llm.v1.LlmService"


def test_dependency_floors_are_what_the_generated_code_checks():
    source = Path(llm_service_pb2.__file__).read_text()
    gencode = re.search(r"ValidateProtobufRuntimeVersion\(\s*_runtime_version\.Domain\.PUBLIC,\s*(\d+),\s*(\d+),\s*(\d+),", source)
    assert gencode, "the messages no longer check the protobuf runtime version"
    major, minor, patch = gencode.groups()
    assert requirement("protobuf") in (f"protobuf<{int(major) + 1},>={major}.{minor}.{patch}", f"protobuf>={major}.{minor}.{patch},<{int(major) + 1}")
    assert requirement("grpcio") == f"grpcio>={llm_service_pb2_grpc.GRPC_GENERATED_VERSION}"
    assert DIST.metadata["Requires-Python"] == ">=3.10"
