/**
 * connect's `@private` API carries no semver promise. This pins it two ways, so an upgrade that changes
 * it fails here rather than on the wire:
 * - the internals src/server/wire/connect-internals.ts still imports: the behaviour we rely on;
 * - the protocol pieces we own (src/server/wire/): still the same output as connect's, which
 *   connect-node keeps using on every path the fast path leaves to it.
 */
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { compressionGzip, compressionBrotli } from "@connectrpc/connect-node";
import { compressionNegotiate, createMethodSerializationLookup, mergeNonProtocolHeaders } from "@connectrpc/connect/protocol";
import { codeToHttpStatus as connectCodeToHttpStatus, createEndStreamSerialization, errorToJson, errorToJsonBytes, parseTimeout as connectParseConnectTimeout, trailerMux as connectTrailerMux } from "@connectrpc/connect/protocol-connect";
import { parseTimeout as connectParseGrpcTimeout, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../../gen/ts/google/rpc/error_details_pb.js";
import { GenerateRequestSchema, LlmService } from "../../gen/ts/llm/v1/llm_service_pb.js";
import { codeToHttpStatus, endStreamJsonBytes, errorJsonBytes, trailerMux } from "../../src/server/wire/connect-errors.js";
import * as internals from "../../src/server/wire/connect-internals.js";
import { setGrpcStatus } from "../../src/server/wire/grpc-status.js";
import { methodCodecs } from "../../src/server/wire/message-codec.js";
import { parseConnectTimeout, parseGrpcTimeout } from "../../src/server/wire/timeout-header.js";

/** An error as the service sends them: a detail with a descriptor, one without, and metadata (a protocol header among it). */
function sampleError(): ConnectError {
  const error = new ConnectError("model \"x\" was not found: 100% sure", Code.NotFound, { "x-request-id": "req-1", "retry-after": "3", "content-type": "text/evil", "grpc-status": "9" });
  error.details.push({ desc: ErrorInfoSchema, value: { reason: "MODEL_NOT_FOUND", domain: "llm.example", metadata: { model: "x" } } });
  error.details.push({ type: "google.rpc.RetryInfo", value: new Uint8Array([10, 2, 8, 3]), debug: { retryDelay: "3s" } });
  return error;
}

const headersOf = (h: Headers) => [...h.entries()];
const timeoutOf = (t: { timeoutMs?: number; error?: ConnectError }) => ({ timeoutMs: t.timeoutMs, error: t.error && { code: t.error.code, message: t.error.rawMessage } });

describe("connect internals we still import: the behaviour we rely on", () => {
  it("imports exactly the internals connect-internals.ts lists", () => {
    expect(Object.keys(internals).sort()).toEqual(["compressionNegotiate", "errorToJson", "mergeNonProtocolHeaders"]);
  });

  it("mergeNonProtocolHeaders copies an error's metadata but never a protocol header", () => {
    const into = new Headers({ "x-existing": "1" });
    mergeNonProtocolHeaders(
      into,
      new Headers({
        "x-request-id": "r",
        "retry-after": "2",
        "content-type": "x",
        "content-length": "1",
        "content-encoding": "gzip",
        "grpc-status": "1",
        "grpc-message": "m",
        "grpc-status-details-bin": "AA",
        "grpc-timeout": "1S",
        "grpc-encoding": "gzip",
        "grpc-accept-encoding": "gzip",
        "connect-timeout-ms": "5",
        "connect-protocol-version": "1",
        "connect-content-encoding": "gzip",
        "connect-accept-encoding": "gzip",
        "accept-encoding": "gzip",
        "trailer-x": "t",
      }),
    );
    expect(headersOf(into)).toEqual([
      ["retry-after", "2"],
      ["trailer-x", "t"],
      ["x-existing", "1"],
      ["x-request-id", "r"],
    ]);
  });

  it("errorToJson gives code, message and details (std base64 without padding, debug JSON for a known type)", () => {
    expect(errorToJson(sampleError(), {})).toEqual({
      code: "not_found",
      message: 'model "x" was not found: 100% sure',
      details: [
        { type: "google.rpc.ErrorInfo", value: "Cg9NT0RFTF9OT1RfRk9VTkQSC2xsbS5leGFtcGxlGgoKBW1vZGVsEgF4", debug: { reason: "MODEL_NOT_FOUND", domain: "llm.example", metadata: { model: "x" } } },
        { type: "google.rpc.RetryInfo", value: "CgIIAw", debug: { retryDelay: "3s" } },
      ],
    });
    expect(errorToJson(new ConnectError("", Code.ResourceExhausted), {})).toEqual({ code: "resource_exhausted" });
  });

  it("compressionNegotiate picks the client's first accepted encoding the server has, or none", () => {
    const server = [compressionGzip, compressionBrotli];
    const pick = (accepted: string) => compressionNegotiate(server, null, accepted, "accept-encoding").response?.name ?? null;
    expect(pick("gzip")).toBe("gzip");
    expect(pick("zstd, br, gzip")).toBe("br");
    expect(pick("gzip, deflate, br, zstd")).toBe("gzip");
    expect(pick("identity,deflate,gzip")).toBe("gzip");
    expect(pick("snappy")).toBeNull();
    const negotiated = compressionNegotiate(server, null, "br", "accept-encoding");
    expect(negotiated.request).toBeNull();
    expect(negotiated.error).toBeUndefined();
  });
});

describe("the protocol pieces we own agree with connect's", () => {
  it("grpc-timeout and connect-timeout-ms parse and refuse as connect's parsers do", () => {
    const grpcValues = [null, "1S", "150m", "2M", "1H", "99999999n", "7u", "123456789S", "soon", "5", "-1S", "1.5S", "", "10x"];
    for (const value of grpcValues) expect(timeoutOf(parseGrpcTimeout(value, 60_000)), String(value)).toEqual(timeoutOf(connectParseGrpcTimeout(value, 60_000)));
    const connectValues = [null, "0", "150", "60000", "60001", "9999999999", "99999999999", "-5", "1.5", "", "abc"];
    for (const value of connectValues) expect(timeoutOf(parseConnectTimeout(value, 60_000)), String(value)).toEqual(timeoutOf(connectParseConnectTimeout(value, 60_000)));
  });

  it("the gRPC status trailers are the same, for OK, a bare error and one with details and metadata", () => {
    const bare = new ConnectError("deadline passed", Code.DeadlineExceeded);
    const wire = sampleError();
    wire.isWireError = true;
    for (const error of [undefined, bare, sampleError(), wire]) {
      expect(headersOf(setGrpcStatus(new Headers({ "x-a": "1" }), error))).toEqual(headersOf(setTrailerStatus(new Headers({ "x-a": "1" }), error)));
    }
  });

  it("every code maps to connect's HTTP status", () => {
    for (let code = 0; code <= 20; code++) expect(codeToHttpStatus(code as Code), String(code)).toBe(connectCodeToHttpStatus(code as Code));
  });

  it("trailers become trailer- headers as connect's trailerMux makes them", () => {
    const header = new Headers({ "content-type": "application/json", "x-request-id": "r" });
    const trailer = new Headers({ "x-cost": "1", "x-many": "a" });
    trailer.append("x-many", "b");
    expect(headersOf(trailerMux(header, trailer))).toEqual(headersOf(connectTrailerMux(header, trailer)));
  });

  it("a Connect error body and an end-of-stream message are byte for byte connect's", () => {
    expect(Buffer.from(errorJsonBytes(sampleError())).toString()).toBe(Buffer.from(errorToJsonBytes(sampleError(), {})).toString());
    const endStream = createEndStreamSerialization({});
    const wire = sampleError();
    wire.isWireError = true;
    for (const [trailer, error] of [
      [{}, undefined],
      [{ "x-cost": "12" }, undefined],
      [{}, sampleError()],
      [{ "x-cost": "12" }, sampleError()],
      [{}, wire],
    ] as [Record<string, string>, ConnectError | undefined][]) {
      const ours = Buffer.from(endStreamJsonBytes(new Headers(trailer), error)).toString();
      const theirs = Buffer.from(endStream.serialize({ metadata: new Headers(trailer), ...(error ? { error } : {}) })).toString();
      expect(ours).toBe(theirs);
    }
  });

  it("messages parse and serialize as connect's method serialization does, errors included", () => {
    const method = LlmService.method.generate;
    const ours = methodCodecs(method);
    const theirs = createMethodSerializationLookup(method, undefined, undefined, { readMaxBytes: 1 << 20, writeMaxBytes: 0xffffffff });
    const message = create(GenerateRequestSchema, { model: "sim/echo", messages: [{ role: 1, content: "hi" }], temperature: 0.5 });
    for (const binary of [true, false]) {
      const bytes = theirs.getI(binary).serialize(message);
      expect(Buffer.from(ours.input(binary).serialize(message)).equals(Buffer.from(bytes))).toBe(true);
      expect(ours.input(binary).parse(bytes)).toEqual(theirs.getI(binary).parse(bytes));
    }
    // Unknown JSON fields are ignored.
    const extra = new TextEncoder().encode('{"model":"m","noSuchField":1}');
    expect(ours.input(false).parse(extra)).toEqual(theirs.getI(false).parse(extra));
    const failure = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        const e = ConnectError.from(err);
        return { code: e.code, message: e.rawMessage };
      }
      return undefined;
    };
    for (const [binary, bytes] of [
      [true, new Uint8Array([0x0a, 0xff, 0x01])],
      [false, new TextEncoder().encode("{not json")],
      [false, new TextEncoder().encode('{"model": 5}')],
      [false, new TextEncoder().encode('{"temperature": "hot"}')],
    ] as [boolean, Uint8Array][]) {
      const expected = failure(() => theirs.getI(binary).parse(bytes));
      expect(expected).toBeDefined();
      expect(failure(() => ours.input(binary).parse(bytes))).toEqual(expected);
    }
  });
});
