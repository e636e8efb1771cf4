import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { GenerateRequestSchema, StreamGenerateRequestSchema } from "../../gen/ts/llm/v1/llm_service_pb.js";
import { toGenerationRequest } from "../../src/rpc/mappers.js";

const base = { model: "m", messages: [{ role: 2, content: "hi" }] };

describe("the response format, proto → domain", () => {
  it("leaves it out for none and for text, which mean the same", () => {
    expect(toGenerationRequest(create(GenerateRequestSchema, base)).responseFormat).toBeUndefined();
    expect(toGenerationRequest(create(GenerateRequestSchema, { ...base, responseFormat: { format: { case: "text", value: {} } } })).responseFormat).toBeUndefined();
  });

  it("maps a JSON object with its pass-through flag", () => {
    const req = create(StreamGenerateRequestSchema, { ...base, responseFormat: { format: { case: "jsonObject", value: {} }, passThroughMismatch: true } });
    expect(toGenerationRequest(req).responseFormat).toEqual({ type: "json_object", passThroughMismatch: true });
  });

  it("maps a JSON schema exactly, its name defaulting to response", () => {
    const schemaJson = '{"type":"object","properties":{"n":{"type":"integer","maximum":9007199254740993}}}';
    const req = create(GenerateRequestSchema, { ...base, responseFormat: { format: { case: "jsonSchema", value: { schemaJson, strict: true } } } });
    expect(toGenerationRequest(req).responseFormat).toEqual({ type: "json_schema", name: "response", schemaJson, strict: true, passThroughMismatch: false });
  });
});
