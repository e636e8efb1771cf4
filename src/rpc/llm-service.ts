import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import {
  BatchGenerateResponseSchema,
  ListModelsResponseSchema,
  type LlmService,
} from "../../gen/ts/llm/v1/llm_service_pb.js";
import type { Gateway } from "../pipeline/gateway.js";
import { LlmError, asLlmError } from "../errors/llm-error.js";
import { toConnectError, toRpcStatus } from "./to-connect.js";
import { kClientRequestId, kPrincipal, kRequestId, setRequestIdHeaders } from "../server/call-values.js";
import { callContext } from "./call-context.js";
import { toEmbedRequest, toEmbedResponse } from "./embed-mappers.js";
import {
  toGenerateResponse,
  toGenerationRequest,
  toGetUsageResponse,
  toModel,
  toStreamResponse,
  toUsageQuery,
} from "./mappers.js";

export interface LlmServiceOptions {
  defaultDeadlineMs: number;
  batch: { maxItems: number; defaultConcurrency: number; maxConcurrency: number };
}

/** The LlmService handlers: proto ↔ domain mapping and nothing else. Domain errors become ConnectErrors here. */
export function llmService(gateway: Gateway, options: LlmServiceOptions): ServiceImpl<typeof LlmService> {
  const fail = (err: unknown, values: HandlerContext["values"]): never => {
    throw toConnectError(asLlmError(err), values.get(kRequestId), values.get(kClientRequestId));
  };
  return {
    async generate(req, ctx) {
      try {
        const { call, dispose } = callContext(ctx, options.defaultDeadlineMs);
        try {
          return toGenerateResponse(await gateway.generate(toGenerationRequest(req), call));
        } finally {
          dispose();
        }
      } catch (err) {
        return fail(err, ctx.values);
      }
    },

    streamGenerate(req, ctx) {
      // The gateway pushes each event, mapped to its message, into the queue this returns: the
      // RPC writer's await on it is the one async step a token takes between the upstream read and the wire.
      try {
        const { call, dispose } = callContext(ctx, options.defaultDeadlineMs);
        try {
          return gateway.stream(toGenerationRequest(req), call, {
            map: toStreamResponse,
            mapError: (err) => toConnectError(err, ctx.values.get(kRequestId), ctx.values.get(kClientRequestId)),
            onEnd: dispose,
          });
        } catch (err) {
          dispose();
          throw err;
        }
      } catch (err) {
        return fail(err, ctx.values);
      }
    },

    async batchGenerate(req, ctx) {
      try {
        const { batch } = options;
        if (req.requests.length === 0 || req.requests.length > batch.maxItems) {
          throw new LlmError("INVALID_REQUEST", `a batch must have 1 to ${batch.maxItems} requests`, {
            fieldViolations: [{ field: "requests", description: `must contain 1 to ${batch.maxItems} requests` }],
          });
        }
        if (req.maxConcurrency > batch.maxConcurrency) {
          throw new LlmError("INVALID_REQUEST", `max_concurrency must be at most ${batch.maxConcurrency}`, {
            fieldViolations: [{ field: "max_concurrency", description: `must be at most ${batch.maxConcurrency}` }],
          });
        }
        const { call, dispose } = callContext(ctx, options.defaultDeadlineMs);
        try {
          const items = req.requests.map(toGenerationRequest);
          const results = await gateway.batch(items, req.maxConcurrency || batch.defaultConcurrency, call);
          return create(BatchGenerateResponseSchema, {
            results: results.map((r, index) =>
              r.ok
                ? { index, result: { case: "response" as const, value: toGenerateResponse(r.result) } }
                : { index, result: { case: "error" as const, value: toRpcStatus(r.error, r.requestId, call.clientRequestId) } },
            ),
          });
        } finally {
          dispose();
        }
      } catch (err) {
        return fail(err, ctx.values);
      }
    },

    listModels(_req, ctx) {
      setRequestIdHeaders(ctx.responseHeader, ctx.values);
      const principal = ctx.values.get(kPrincipal);
      if (!principal) return fail(new LlmError("UNAUTHENTICATED", "missing API key"), ctx.values);
      const models = gateway.listModels(principal).map((m) => toModel(m, (d) => gateway.circuitState(d)));
      return create(ListModelsResponseSchema, { models });
    },

    async getUsage(req, ctx) {
      try {
        const { call, dispose } = callContext(ctx, options.defaultDeadlineMs);
        try {
          return toGetUsageResponse(await gateway.usage(call.principal, toUsageQuery(req)));
        } finally {
          dispose();
        }
      } catch (err) {
        return fail(err, ctx.values);
      }
    },

    async embed(req, ctx) {
      try {
        const { call, dispose } = callContext(ctx, options.defaultDeadlineMs);
        try {
          return toEmbedResponse(await gateway.embed(toEmbedRequest(req), call));
        } finally {
          dispose();
        }
      } catch (err) {
        return fail(err, ctx.values);
      }
    },
  };
}
