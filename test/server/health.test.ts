import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, createHandlerContext, createRouterTransport } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import {
  Health,
  HealthCheckRequestSchema,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from "../../gen/ts/grpc/health/v1/health_pb.js";
import { HealthState, healthRoutes, healthService } from "../../src/server/health.js";

const llm = "llm.v1.LlmService";

function clientFor(state: HealthState) {
  return createClient(Health, createRouterTransport(healthRoutes(state)));
}

function watchContext(signal: AbortSignal) {
  return createHandlerContext({
    service: Health,
    method: Health.method.watch,
    protocolName: "test",
    requestMethod: "POST",
    url: "http://localhost/grpc.health.v1.Health/Watch",
    requestSignal: signal,
  });
}

async function rejection(promise: Promise<unknown>): Promise<ConnectError | undefined> {
  return promise.then(
    () => undefined,
    (reason: unknown) => ConnectError.from(reason),
  );
}

describe("HealthState", () => {
  it("starts the server and every registered service SERVING and knows no others", () => {
    const state = new HealthState([llm]);
    expect(state.get("")).toBe(ServingStatus.SERVING);
    expect(state.get(llm)).toBe(ServingStatus.SERVING);
    expect(state.get("other.v1.Other")).toBeUndefined();
  });

  it("tells listeners of changes only, and stops when unsubscribed", () => {
    const state = new HealthState([llm]);
    const heard: ServingStatus[] = [];
    const unsubscribe = state.subscribe(llm, (status) => heard.push(status));
    state.set(llm, ServingStatus.SERVING);
    state.set(llm, ServingStatus.NOT_SERVING);
    state.set("", ServingStatus.NOT_SERVING);
    unsubscribe();
    state.set(llm, ServingStatus.SERVING);
    expect(heard).toEqual([ServingStatus.NOT_SERVING]);
    expect(state.listenerCount).toBe(0);
  });

  it("setAll changes the server and every service", () => {
    const state = new HealthState([llm]);
    state.set("late.v1.Late", ServingStatus.SERVING);
    state.setAll(ServingStatus.NOT_SERVING);
    expect(state.get("")).toBe(ServingStatus.NOT_SERVING);
    expect(state.get(llm)).toBe(ServingStatus.NOT_SERVING);
    expect(state.get("late.v1.Late")).toBe(ServingStatus.NOT_SERVING);
  });
});

describe("grpc.health.v1.Health/Check", () => {
  it("reports SERVING for the server and a registered service", async () => {
    const client = clientFor(new HealthState([llm]));
    expect((await client.check({ service: "" })).status).toBe(ServingStatus.SERVING);
    expect((await client.check({ service: llm })).status).toBe(ServingStatus.SERVING);
  });

  it("reports the status last set", async () => {
    const state = new HealthState([llm]);
    const client = clientFor(state);
    state.set(llm, ServingStatus.NOT_SERVING);
    expect((await client.check({ service: llm })).status).toBe(ServingStatus.NOT_SERVING);
  });

  it("fails with NOT_FOUND for an unknown service", async () => {
    const client = clientFor(new HealthState([llm]));
    const error = await rejection(client.check({ service: "nope.v1.Nope" }));
    expect(error?.code).toBe(Code.NotFound);
  });
});

describe("grpc.health.v1.Health/Watch", () => {
  it("sends SERVING at once, then NOT_SERVING after setAll, and ends when the client aborts", async () => {
    const state = new HealthState([llm]);
    const client = clientFor(state);
    const abort = new AbortController();
    const seen: ServingStatus[] = [];
    const watching = (async () => {
      for await (const response of client.watch({ service: llm }, { signal: abort.signal })) {
        seen.push(response.status);
        if (response.status === ServingStatus.SERVING) {
          state.setAll(ServingStatus.NOT_SERVING);
        } else {
          abort.abort();
        }
      }
    })();
    const error = await rejection(watching);
    expect(seen).toEqual([ServingStatus.SERVING, ServingStatus.NOT_SERVING]);
    expect(error?.code).toBe(Code.Canceled);
    expect(state.listenerCount).toBe(0);
  });

  it("sends SERVICE_UNKNOWN for an unknown service, then its status once it is set", async () => {
    const state = new HealthState();
    const client = clientFor(state);
    const abort = new AbortController();
    const seen: ServingStatus[] = [];
    const watching = (async () => {
      for await (const response of client.watch({ service: "late.v1.Late" }, { signal: abort.signal })) {
        seen.push(response.status);
        if (response.status === ServingStatus.SERVICE_UNKNOWN) {
          state.set("late.v1.Late", ServingStatus.SERVING);
        } else {
          abort.abort();
        }
      }
    })();
    await rejection(watching);
    expect(seen).toEqual([ServingStatus.SERVICE_UNKNOWN, ServingStatus.SERVING]);
  });

  it("ends its stream, with the abort's code, and removes its listener when the call's signal aborts", async () => {
    const state = new HealthState([llm]);
    const abort = new AbortController();
    const watch = healthService(state).watch(create(HealthCheckRequestSchema, { service: llm }), watchContext(abort.signal));
    const stream = watch[Symbol.asyncIterator]();
    expect((await stream.next()).value).toMatchObject({ status: ServingStatus.SERVING });
    expect(state.listenerCount).toBe(1);
    const waiting = stream.next();
    abort.abort();
    expect((await rejection(waiting))?.code).toBe(Code.Canceled);
    expect(state.listenerCount).toBe(0);
  });

  it("ends with DEADLINE_EXCEEDED, not OK, when the call's deadline aborts it", async () => {
    const state = new HealthState([llm]);
    const abort = new AbortController();
    const watch = healthService(state).watch(create(HealthCheckRequestSchema, { service: llm }), watchContext(abort.signal));
    const stream = watch[Symbol.asyncIterator]();
    expect((await stream.next()).value).toMatchObject({ status: ServingStatus.SERVING });
    const waiting = stream.next();
    abort.abort(new ConnectError("the operation timed out", Code.DeadlineExceeded));
    expect((await rejection(waiting))?.code).toBe(Code.DeadlineExceeded);
  });

  it("endWatches() sends the latest status still pending, then ends every watch with UNAVAILABLE", async () => {
    const state = new HealthState([llm]);
    const watch = healthService(state).watch(create(HealthCheckRequestSchema, { service: llm }), watchContext(new AbortController().signal));
    const stream = watch[Symbol.asyncIterator]();
    expect((await stream.next()).value).toMatchObject({ status: ServingStatus.SERVING });
    state.setAll(ServingStatus.NOT_SERVING);
    state.endWatches();
    expect((await stream.next()).value).toMatchObject({ status: ServingStatus.NOT_SERVING });
    expect((await rejection(stream.next()))?.code).toBe(Code.Unavailable);
    expect(state.listenerCount).toBe(0);
  });

  it("removes its listener on abort even while suspended at a yield nobody resumes", async () => {
    const state = new HealthState([llm]);
    const abort = new AbortController();
    const watch = healthService(state).watch(create(HealthCheckRequestSchema, { service: llm }), watchContext(abort.signal));
    const stream = watch[Symbol.asyncIterator]();
    expect((await stream.next()).value).toMatchObject({ status: ServingStatus.SERVING });
    abort.abort();
    expect(state.listenerCount).toBe(0);
    expect((await rejection(stream.next()))?.code).toBe(Code.Canceled);
  });

  it("skips a status that changed and changed back before it was read", async () => {
    const state = new HealthState([llm]);
    const abort = new AbortController();
    const watch = healthService(state).watch(create(HealthCheckRequestSchema, { service: llm }), watchContext(abort.signal));
    const stream = watch[Symbol.asyncIterator]();
    expect((await stream.next()).value).toMatchObject({ status: ServingStatus.SERVING });
    state.set(llm, ServingStatus.NOT_SERVING);
    state.set(llm, ServingStatus.SERVING);
    state.set(llm, ServingStatus.NOT_SERVING);
    expect((await stream.next()).value).toMatchObject({ status: ServingStatus.NOT_SERVING });
    abort.abort();
    expect((await rejection(stream.next()))?.code).toBe(Code.Canceled);
    expect(state.listenerCount).toBe(0);
  });
});
