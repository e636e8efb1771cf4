import { create, createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import type { DescFile } from "@bufbuild/protobuf";
import {
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorProtoSchema,
  file_google_protobuf_descriptor,
} from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { Health, file_grpc_health_v1_health } from "../../gen/ts/grpc/health/v1/health_pb.js";
import { ServerReflection as ServerReflectionV1 } from "../../gen/ts/grpc/reflection/v1/reflection_pb.js";
import type { ServerReflectionResponse as ResponseV1 } from "../../gen/ts/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ServerReflectionV1alpha } from "../../gen/ts/grpc/reflection/v1alpha/reflection_pb.js";
import type { ServerReflectionResponse as ResponseV1alpha } from "../../gen/ts/grpc/reflection/v1alpha/reflection_pb.js";
import { LlmService, file_llm_v1_llm_service } from "../../gen/ts/llm/v1/llm_service_pb.js";
import { reflectionRoutes } from "../../src/server/reflection.js";

/** A request in the version-free shape both generated clients accept. */
type Query =
  | { case: "fileByFilename"; value: string }
  | { case: "fileContainingSymbol"; value: string }
  | { case: "fileContainingExtension"; value: { containingType: string; extensionNumber: number } }
  | { case: "allExtensionNumbersOfType"; value: string }
  | { case: "listServices"; value: string };

interface Answer {
  validHost: string;
  originalCase: string | undefined;
  originalValue: unknown;
  files?: string[];
  services?: string[];
  errorCode?: number;
  baseTypeName?: string;
  extensionNumbers?: number[];
}

/** One stream: sends every query, returns one summarised answer per response. */
type Reflect = (queries: Query[], host?: string) => Promise<Answer[]>;

function summarise(response: ResponseV1 | ResponseV1alpha): Answer {
  const answer: Answer = {
    validHost: response.validHost,
    originalCase: response.originalRequest?.messageRequest.case,
    originalValue: response.originalRequest?.messageRequest.value,
  };
  const body = response.messageResponse;
  switch (body.case) {
    case "fileDescriptorResponse":
      answer.files = body.value.fileDescriptorProto.map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes).name);
      break;
    case "listServicesResponse":
      answer.services = body.value.service.map((service) => service.name);
      break;
    case "errorResponse":
      answer.errorCode = body.value.errorCode;
      break;
    case "allExtensionNumbersResponse":
      answer.baseTypeName = body.value.baseTypeName;
      answer.extensionNumbers = body.value.extensionNumber;
      break;
    case undefined:
      break;
  }
  return answer;
}

async function* requestsOf(queries: Query[], host: string) {
  for (const messageRequest of queries) {
    yield { host, messageRequest };
  }
}

/** A proto file declaring extensions of google.protobuf.MessageOptions, numbers 50001 and 50002. */
function extensionFile(): DescFile {
  const field = (name: string, number: number) => ({
    name,
    number,
    label: FieldDescriptorProto_Label.OPTIONAL,
    type: FieldDescriptorProto_Type.STRING,
    extendee: ".google.protobuf.MessageOptions",
    jsonName: name,
  });
  const proto = create(FileDescriptorProtoSchema, {
    name: "test/ext.proto",
    package: "test.ext",
    syntax: "proto3",
    dependency: ["google/protobuf/descriptor.proto"],
    extension: [field("label", 50001), field("owner", 50002)],
  });
  const registry = createFileRegistry(proto, (name) =>
    name === file_google_protobuf_descriptor.proto.name ? file_google_protobuf_descriptor : undefined,
  );
  const file = registry.getFile("test/ext.proto");
  if (file === undefined) {
    throw new Error("test/ext.proto did not build");
  }
  return file;
}

const routes = reflectionRoutes(
  [file_llm_v1_llm_service, file_grpc_health_v1_health, extensionFile()],
  [LlmService.typeName, Health.typeName],
);

const reflectV1: Reflect = async (queries, host = "localhost:8080") => {
  const client = createClient(ServerReflectionV1, createRouterTransport(routes));
  const answers: Answer[] = [];
  for await (const response of client.serverReflectionInfo(requestsOf(queries, host))) {
    answers.push(summarise(response));
  }
  return answers;
};

const reflectV1alpha: Reflect = async (queries, host = "localhost:8080") => {
  const client = createClient(ServerReflectionV1alpha, createRouterTransport(routes));
  const answers: Answer[] = [];
  for await (const response of client.serverReflectionInfo(requestsOf(queries, host))) {
    answers.push(summarise(response));
  }
  return answers;
};

const llmFile = "llm/v1/llm_service.proto";
const llmFileWithDeps = [llmFile, "google/protobuf/timestamp.proto", "google/rpc/status.proto", "google/protobuf/any.proto"];

describe.each([
  ["grpc.reflection.v1", reflectV1],
  ["grpc.reflection.v1alpha", reflectV1alpha],
])("%s server reflection", (_version, reflect) => {
  it("lists the given services, health and both reflection services", async () => {
    const [answer] = await reflect([{ case: "listServices", value: "" }]);
    expect(answer?.services).toEqual([
      "grpc.health.v1.Health",
      "grpc.reflection.v1.ServerReflection",
      "grpc.reflection.v1alpha.ServerReflection",
      "llm.v1.LlmService",
    ]);
  });

  it("describes a service by symbol with the file first and every transitive import", async () => {
    const [answer] = await reflect([{ case: "fileContainingSymbol", value: "llm.v1.LlmService" }]);
    expect(answer?.files?.[0]).toBe(llmFile);
    expect(answer?.files).toHaveLength(llmFileWithDeps.length);
    expect(new Set(answer?.files)).toEqual(new Set(llmFileWithDeps));
  });

  it.each([
    ["a method", "llm.v1.LlmService.Generate", llmFile],
    ["a message", "llm.v1.GenerateRequest", llmFile],
    ["a field", "llm.v1.GenerateRequest.model", llmFile],
    ["an enum", "llm.v1.Role", llmFile],
    ["an enum value, scoped beside its enum", "llm.v1.ROLE_USER", llmFile],
    ["a nested enum", "grpc.health.v1.HealthCheckResponse.ServingStatus", "grpc/health/v1/health.proto"],
    ["a nested enum value", "grpc.health.v1.HealthCheckResponse.SERVING", "grpc/health/v1/health.proto"],
    ["a message of an imported file", "google.rpc.Status", "google/rpc/status.proto"],
    ["a reflection service itself", "grpc.reflection.v1.ServerReflection", "grpc/reflection/v1/reflection.proto"],
    ["a leading-dot name", ".llm.v1.GenerateRequest", llmFile],
  ])("finds the file containing %s", async (_kind, symbol, file) => {
    const [answer] = await reflect([{ case: "fileContainingSymbol", value: symbol }]);
    expect(answer?.errorCode).toBeUndefined();
    expect(answer?.files?.[0]).toBe(file);
  });

  it("answers an unknown symbol with NOT_FOUND and keeps the stream open", async () => {
    const answers = await reflect([
      { case: "fileContainingSymbol", value: "llm.v1.NoSuchThing" },
      { case: "fileContainingSymbol", value: "llm.v1.LlmService.NoSuchMethod" },
      { case: "listServices", value: "" },
    ]);
    expect(answers.map((answer) => answer.errorCode)).toEqual([Code.NotFound, Code.NotFound, undefined]);
    expect(answers[0]?.errorCode).toBe(5);
    expect(answers[2]?.services).toContain("llm.v1.LlmService");
  });

  it("finds a file by name with its imports, and NOT_FOUND for an unknown name", async () => {
    const answers = await reflect([
      { case: "fileByFilename", value: "google/rpc/status.proto" },
      { case: "fileByFilename", value: "nope/nope.proto" },
    ]);
    expect(answers[0]?.files).toEqual(["google/rpc/status.proto", "google/protobuf/any.proto"]);
    expect(answers[1]?.errorCode).toBe(Code.NotFound);
  });

  it("sends each imported file once per stream, but always the requested file", async () => {
    const answers = await reflect([
      { case: "fileContainingSymbol", value: "llm.v1.LlmService" },
      { case: "fileContainingSymbol", value: "llm.v1.GenerateRequest" },
      { case: "fileByFilename", value: "google/rpc/status.proto" },
    ]);
    expect(answers[0]?.files).toHaveLength(4);
    expect(answers[1]?.files).toEqual([llmFile]);
    expect(answers[2]?.files).toEqual(["google/rpc/status.proto"]);
    const [fresh] = await reflect([{ case: "fileByFilename", value: "google/rpc/status.proto" }]);
    expect(fresh?.files).toEqual(["google/rpc/status.proto", "google/protobuf/any.proto"]);
  });

  it("echoes the host and the original request", async () => {
    const [answer] = await reflect([{ case: "fileContainingSymbol", value: "llm.v1.Usage" }], "gateway.internal:443");
    expect(answer?.validHost).toBe("gateway.internal:443");
    expect(answer?.originalCase).toBe("fileContainingSymbol");
    expect(answer?.originalValue).toBe("llm.v1.Usage");
  });

  it("lists extension numbers of a type, empty for a type without any, NOT_FOUND for an unknown type", async () => {
    const answers = await reflect([
      { case: "allExtensionNumbersOfType", value: "google.protobuf.MessageOptions" },
      { case: "allExtensionNumbersOfType", value: "llm.v1.GenerateRequest" },
      { case: "allExtensionNumbersOfType", value: "llm.v1.Nope" },
    ]);
    expect(answers[0]?.baseTypeName).toBe("google.protobuf.MessageOptions");
    expect([...(answers[0]?.extensionNumbers ?? [])].sort()).toEqual([50001, 50002]);
    expect(answers[1]?.baseTypeName).toBe("llm.v1.GenerateRequest");
    expect(answers[1]?.extensionNumbers).toEqual([]);
    expect(answers[2]?.errorCode).toBe(Code.NotFound);
  });

  it("finds the file declaring an extension, NOT_FOUND for an unknown one", async () => {
    const answers = await reflect([
      { case: "fileContainingExtension", value: { containingType: "google.protobuf.MessageOptions", extensionNumber: 50002 } },
      { case: "fileContainingExtension", value: { containingType: "google.protobuf.MessageOptions", extensionNumber: 123 } },
      { case: "fileContainingExtension", value: { containingType: "llm.v1.Nope", extensionNumber: 1 } },
      { case: "fileContainingSymbol", value: "test.ext.owner" },
    ]);
    expect(answers[0]?.files).toEqual(["test/ext.proto", "google/protobuf/descriptor.proto"]);
    expect(answers[1]?.errorCode).toBe(Code.NotFound);
    expect(answers[2]?.errorCode).toBe(Code.NotFound);
    expect(answers[3]?.files).toEqual(["test/ext.proto"]);
  });
});

describe("reflectionRoutes", () => {
  it("returns a descriptor that decodes to the service definition", async () => {
    const client = createClient(ServerReflectionV1, createRouterTransport(routes));
    for await (const response of client.serverReflectionInfo(
      requestsOf([{ case: "fileContainingSymbol", value: "llm.v1.LlmService" }], ""),
    )) {
      if (response.messageResponse.case !== "fileDescriptorResponse") {
        throw new Error(`unexpected ${response.messageResponse.case}`);
      }
      const [first] = response.messageResponse.value.fileDescriptorProto;
      const file = fromBinary(FileDescriptorProtoSchema, first ?? new Uint8Array());
      expect(file.package).toBe("llm.v1");
      expect(file.service.map((service) => service.name)).toEqual(["LlmService"]);
      expect(file.service[0]?.method.map((method) => method.name)).toContain("StreamGenerate");
      expect(file.dependency).toEqual(expect.arrayContaining(["google/protobuf/timestamp.proto", "google/rpc/status.proto"]));
    }
  });

  it("refuses a service name that no given file declares", () => {
    expect(() => reflectionRoutes([file_llm_v1_llm_service], ["llm.v1.Typo"])).toThrow(/llm\.v1\.Typo/);
  });

  it("fails the stream with INVALID_ARGUMENT on a request without a message_request", async () => {
    const client = createClient(ServerReflectionV1, createRouterTransport(routes));
    async function* empty() {
      yield { host: "" };
    }
    const received: unknown[] = [];
    const drain = async (): Promise<void> => {
      for await (const response of client.serverReflectionInfo(empty())) {
        received.push(response);
      }
    };
    const error = await drain().then(
      () => undefined,
      (reason: unknown) => ConnectError.from(reason),
    );
    expect(error?.code).toBe(Code.InvalidArgument);
    expect(received).toEqual([]);
  });
});
