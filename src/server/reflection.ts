import { create, createFileRegistry, toBinary } from "@bufbuild/protobuf";
import type { DescEnum, DescFile, DescMessage, FileRegistry } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import type { ConnectRouter } from "@connectrpc/connect";
import {
  ServerReflection as ServerReflectionV1,
  file_grpc_reflection_v1_reflection,
} from "../../gen/ts/grpc/reflection/v1/reflection_pb.js";
import {
  ServerReflection as ServerReflectionV1alpha,
  file_grpc_reflection_v1alpha_reflection,
} from "../../gen/ts/grpc/reflection/v1alpha/reflection_pb.js";

// grpc.reflection.v1 and v1alpha have the same messages under different
// package names, so the answers are built from these version-free shapes,
// which both generated request types satisfy and both response types accept.

/** The message_request oneof of a ServerReflectionRequest (v1 or v1alpha). */
type ReflectionQuery =
  | { case: "fileByFilename"; value: string }
  | { case: "fileContainingSymbol"; value: string }
  | { case: "fileContainingExtension"; value: { containingType: string; extensionNumber: number } }
  | { case: "allExtensionNumbersOfType"; value: string }
  | { case: "listServices"; value: string }
  | { case: undefined; value?: undefined };

/** The message_response oneof of a ServerReflectionResponse (v1 or v1alpha). */
type ReflectionAnswer =
  | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
  | { case: "allExtensionNumbersResponse"; value: { baseTypeName: string; extensionNumber: number[] } }
  | { case: "listServicesResponse"; value: { service: { name: string }[] } }
  | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } };

interface ReflectionRequest {
  host: string;
  messageRequest: ReflectionQuery;
}

/** Files, symbols and services known to reflection, indexed once at startup. */
class ReflectionIndex {
  private readonly registry: FileRegistry;
  /** Fully-qualified symbol name → the file declaring it. */
  private readonly symbols = new Map<string, DescFile>();
  /** proto file name → serialized FileDescriptorProto. */
  private readonly encoded = new Map<string, Uint8Array>();
  readonly serviceNames: readonly string[];

  constructor(files: readonly DescFile[], serviceNames: readonly string[]) {
    const ordered = withDependencies(files);
    this.registry = createFileRegistry(create(FileDescriptorSetSchema, { file: ordered.map((file) => file.proto) }));
    for (const file of this.registry.files) {
      this.encoded.set(file.proto.name, toBinary(FileDescriptorProtoSchema, file.proto));
      indexFile(file, this.symbols);
    }
    for (const name of serviceNames) {
      if (this.registry.getService(name) === undefined) {
        throw new Error(`reflection: service ${name} is not declared in the given files`);
      }
    }
    this.serviceNames = [...new Set(serviceNames)].sort();
  }

  answer(query: ReflectionQuery, sent: Set<string>): ReflectionAnswer {
    switch (query.case) {
      case "listServices":
        return { case: "listServicesResponse", value: { service: this.serviceNames.map((name) => ({ name })) } };
      case "fileByFilename": {
        const file = this.registry.getFile(query.value);
        return file ? this.fileAnswer(file, sent) : notFound(`file not found: ${query.value}`);
      }
      case "fileContainingSymbol": {
        const name = query.value.replace(/^\./, "");
        const file = this.symbols.get(name);
        return file ? this.fileAnswer(file, sent) : notFound(`symbol not found: ${name}`);
      }
      case "fileContainingExtension": {
        const { containingType, extensionNumber } = query.value;
        const message = this.registry.getMessage(containingType);
        const extension = message && this.registry.getExtensionFor(message, extensionNumber);
        return extension
          ? this.fileAnswer(extension.file, sent)
          : notFound(`extension not found: ${containingType} ${extensionNumber}`);
      }
      case "allExtensionNumbersOfType": {
        if (this.registry.getMessage(query.value) === undefined) {
          return notFound(`type not found: ${query.value}`);
        }
        const numbers: number[] = [];
        for (const desc of this.registry) {
          if (desc.kind === "extension" && desc.extendee.typeName === query.value) {
            numbers.push(desc.number);
          }
        }
        return { case: "allExtensionNumbersResponse", value: { baseTypeName: query.value, extensionNumber: numbers } };
      }
      case undefined:
        throw new ConnectError("reflection: request has no message_request", Code.InvalidArgument);
    }
  }

  /**
   * The file and, breadth first, its transitive imports not yet sent on this
   * stream; the requested file always, as grpc-go does.
   */
  private fileAnswer(file: DescFile, sent: Set<string>): ReflectionAnswer {
    const out: Uint8Array[] = [];
    const queued = new Set<string>([file.proto.name]);
    const queue = [file];
    for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
      const name = next.proto.name;
      if (out.length === 0 || !sent.has(name)) {
        sent.add(name);
        out.push(this.encode(name));
      }
      for (const dep of next.dependencies) {
        if (!queued.has(dep.proto.name)) {
          queued.add(dep.proto.name);
          queue.push(dep);
        }
      }
    }
    return { case: "fileDescriptorResponse", value: { fileDescriptorProto: out } };
  }

  private encode(fileName: string): Uint8Array {
    const bytes = this.encoded.get(fileName);
    if (bytes === undefined) {
      throw new Error(`reflection: file ${fileName} was not indexed`);
    }
    return bytes;
  }
}

function notFound(message: string): ReflectionAnswer {
  return { case: "errorResponse", value: { errorCode: Code.NotFound, errorMessage: message } };
}

/** The files and all their transitive imports, each once, every import before its importer. */
function withDependencies(files: readonly DescFile[]): DescFile[] {
  const ordered: DescFile[] = [];
  const seen = new Set<string>();
  const visit = (file: DescFile): void => {
    if (seen.has(file.proto.name)) {
      return;
    }
    seen.add(file.proto.name);
    file.dependencies.forEach(visit);
    ordered.push(file);
  };
  files.forEach(visit);
  return ordered;
}

/** Records every symbol a file declares, under the names protoc would resolve. */
function indexFile(file: DescFile, symbols: Map<string, DescFile>): void {
  const pkg = file.proto.package;
  const indexEnum = (desc: DescEnum): void => {
    symbols.set(desc.typeName, file);
    // Enum values are scoped like their enum, not inside it (C++ scoping rules).
    const scope = desc.parent?.typeName ?? pkg;
    for (const value of desc.values) {
      symbols.set(scope ? `${scope}.${value.name}` : value.name, file);
    }
  };
  const indexMessage = (desc: DescMessage): void => {
    symbols.set(desc.typeName, file);
    for (const member of desc.members) {
      symbols.set(`${desc.typeName}.${member.name}`, file);
    }
    desc.nestedMessages.forEach(indexMessage);
    desc.nestedEnums.forEach(indexEnum);
    for (const extension of desc.nestedExtensions) {
      symbols.set(extension.typeName, file);
    }
  };
  file.messages.forEach(indexMessage);
  file.enums.forEach(indexEnum);
  for (const extension of file.extensions) {
    symbols.set(extension.typeName, file);
  }
  for (const service of file.services) {
    symbols.set(service.typeName, file);
    for (const method of service.methods) {
      symbols.set(`${service.typeName}.${method.name}`, file);
    }
  }
}

/** The bidi handler shared by v1 and v1alpha: one response per request, descriptors sent once per stream. */
function serverReflectionInfo(index: ReflectionIndex) {
  return async function* <Request extends ReflectionRequest>(requests: AsyncIterable<Request>) {
    const sent = new Set<string>();
    for await (const request of requests) {
      yield {
        validHost: request.host,
        originalRequest: request,
        messageResponse: index.answer(request.messageRequest, sent),
      };
    }
  };
}

/**
 * Routes serving gRPC server reflection, grpc.reflection.v1 and v1alpha, for
 * the given files (their imports are found through `file.dependencies`) and
 * services. Both reflection services add themselves to the list.
 */
export function reflectionRoutes(
  files: readonly DescFile[],
  serviceNames: readonly string[],
): (router: ConnectRouter) => void {
  const index = new ReflectionIndex(
    [...files, file_grpc_reflection_v1_reflection, file_grpc_reflection_v1alpha_reflection],
    [...serviceNames, ServerReflectionV1.typeName, ServerReflectionV1alpha.typeName],
  );
  const handler = serverReflectionInfo(index);
  return (router) => {
    router.service(ServerReflectionV1, { serverReflectionInfo: handler });
    router.service(ServerReflectionV1alpha, { serverReflectionInfo: handler });
  };
}
