/**
 * A method's request and response messages to and from bytes, protobuf binary or JSON, with connect's
 * error codes and messages: binary that does not parse is `parse binary: …` (INTERNAL, which
 * protocol-errors.ts turns into INVALID_ARGUMENT), JSON that does not parse is INVALID_ARGUMENT, and
 * unknown JSON fields are ignored, as connect does. Size limits are the body reader's (request-body.ts).
 */
import { fromBinary, fromJsonString, toBinary, toJsonString, type DescMessage, type DescMethod, type MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";

export interface MessageCodec<T> {
  parse(bytes: Uint8Array): T;
  serialize(message: T): Uint8Array;
}

export interface MethodCodecs {
  /** The request message's codec, binary or JSON. */
  input(binary: boolean): MessageCodec<unknown>;
  /** The response message's codec, binary or JSON. */
  output(binary: boolean): MessageCodec<unknown>;
}

const JSON_OPTIONS = { ignoreUnknownFields: true };

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function binaryCodec<D extends DescMessage>(desc: D): MessageCodec<MessageShape<D>> {
  return {
    parse(bytes) {
      try {
        return fromBinary(desc, bytes);
      } catch (err) {
        throw new ConnectError(`parse binary: ${errorMessage(err)}`, Code.Internal);
      }
    },
    serialize(message) {
      try {
        return toBinary(desc, message);
      } catch (err) {
        throw new ConnectError(`serialize binary: ${errorMessage(err)}`, Code.Internal);
      }
    },
  };
}

function jsonCodec<D extends DescMessage>(desc: D): MessageCodec<MessageShape<D>> {
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  return {
    parse(bytes) {
      try {
        return fromJsonString(desc, decoder.decode(bytes), JSON_OPTIONS);
      } catch (err) {
        throw ConnectError.from(err, Code.InvalidArgument);
      }
    },
    serialize(message) {
      try {
        return encoder.encode(toJsonString(desc, message));
      } catch (err) {
        throw ConnectError.from(err, Code.Internal);
      }
    },
  };
}

export function methodCodecs(method: DescMethod): MethodCodecs {
  const codecs = {
    input: { binary: binaryCodec(method.input), json: jsonCodec(method.input) },
    output: { binary: binaryCodec(method.output), json: jsonCodec(method.output) },
  };
  return {
    input: (binary) => (binary ? codecs.input.binary : codecs.input.json) as MessageCodec<unknown>,
    output: (binary) => (binary ? codecs.output.binary : codecs.output.json) as MessageCodec<unknown>,
  };
}
