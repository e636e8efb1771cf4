import { Ajv } from "ajv";
import { describe, expect, it } from "vitest";
import { outputCheck, outputMismatch } from "../../src/structured/output-check.js";
import { OutputSchemas, SCHEMA_LIMITS, SchemaError } from "../../src/structured/output-schemas.js";
import { jsonText, jsonTokens } from "../../src/simulator/json-output.js";
import { mulberry32 } from "../../src/simulator/prng.js";

const ORDER = JSON.stringify({
  type: "object",
  properties: {
    id: { type: "string" },
    items: {
      type: "array",
      minItems: 1,
      items: { type: "object", properties: { sku: { type: "string" }, price: { type: "number", minimum: 0 } }, required: ["sku", "price"], additionalProperties: false },
    },
    status: { enum: ["open", "paid"] },
  },
  required: ["id", "items", "status"],
  additionalProperties: false,
});

describe("the compiled-schema cache", () => {
  it("compiles a schema once, however often it is used, and a different schema once more", () => {
    const schemas = new OutputSchemas();
    const a = schemas.get(ORDER);
    expect(schemas.get(ORDER)).toBe(a);
    schemas.get(JSON.stringify({ type: "string" }));
    expect(schemas.compilations).toBe(2);
  });

  it("is bounded: past its size the least recently used schema is compiled again", () => {
    const schemas = new OutputSchemas(2);
    const [s1, s2, s3] = [1, 2, 3].map((n) => JSON.stringify({ type: "integer", minimum: n }));
    schemas.get(s1 as string);
    schemas.get(s2 as string);
    schemas.get(s3 as string);
    schemas.get(s3 as string);
    expect(schemas.compilations).toBe(3);
    schemas.get(s1 as string);
    expect(schemas.compilations).toBe(4);
  });

  it("keeps callers' schemas apart: two schemas may declare the same $id", () => {
    const schemas = new OutputSchemas();
    const a = schemas.get(JSON.stringify({ $id: "https://example.com/s", type: "string" }));
    const b = schemas.get(JSON.stringify({ $id: "https://example.com/s", type: "integer" }));
    expect([a.check("x"), a.check(1).length]).toEqual([[], 1]);
    expect([b.check(1), b.check("x").length]).toEqual([[], 1]);
  });

  it("refuses what is not a usable schema, and remembers the refusal", () => {
    const schemas = new OutputSchemas();
    expect(() => schemas.get("{not json")).toThrow(SchemaError);
    expect(() => schemas.get("[1]")).toThrow(/JSON object/);
    expect(() => schemas.get(JSON.stringify({ type: "bogus" }))).toThrow(/not a valid JSON Schema/);
    expect(() => schemas.get(JSON.stringify({ $ref: "https://example.com/remote.json" }))).toThrow(/not a valid JSON Schema/);
    expect(() => schemas.get(JSON.stringify({ type: "bogus" }))).toThrow(SchemaError);
    expect(schemas.compilations).toBe(4);
  });

  it("bounds a schema's size and depth", () => {
    const schemas = new OutputSchemas();
    expect(() => schemas.get(JSON.stringify({ description: "x".repeat(SCHEMA_LIMITS.chars) }))).toThrow(/at most 65536 characters/);
    let deep: unknown = { type: "string" };
    for (let i = 0; i < SCHEMA_LIMITS.depth; i++) deep = { type: "array", items: deep };
    expect(() => schemas.get(JSON.stringify(deep))).toThrow(/nest at most/);
  });
});

describe("the output check", () => {
  const schemas = new OutputSchemas();
  const schemaCheck = outputCheck({ type: "json_schema", name: "order", schemaJson: ORDER, strict: false, passThroughMismatch: false }, schemas.get(ORDER));

  it("passes an answer that matches, and names each wrong place by its JSON Pointer", () => {
    expect(schemaCheck?.violations('{"id": "o1", "items": [{"sku": "a", "price": 2}], "status": "paid"}')).toEqual([]);
    expect(schemaCheck?.violations('{"id": "o1", "items": [{"sku": "a", "price": "2"}], "status": "lost"}')).toEqual([
      { field: "/items/0/price", description: "must be number" },
      { field: "/status", description: "must be equal to one of the allowed values" },
    ]);
  });

  it("calls text that is not JSON a mismatch of the whole answer", () => {
    expect(schemaCheck?.violations("Sure! Here it is: {")).toEqual([{ field: "", description: "must be JSON text" }]);
  });

  it("reports at most 10 violations", () => {
    const many = { type: "array", items: { type: "integer" } };
    const check = outputCheck({ type: "json_schema", name: "n", schemaJson: JSON.stringify(many), strict: false, passThroughMismatch: false }, schemas.get(JSON.stringify(many)));
    expect(check?.violations(JSON.stringify(Array.from({ length: 50 }, () => "x")))).toHaveLength(SCHEMA_LIMITS.violations);
  });

  it("json_object wants one JSON object; text wants nothing", () => {
    const check = outputCheck({ type: "json_object", passThroughMismatch: false }, undefined);
    expect(check?.violations('{"a": 1}')).toEqual([]);
    expect(check?.violations("[1, 2]")).toEqual([{ field: "", description: "must be object" }]);
    expect(outputCheck({ type: "text" }, undefined)).toBeUndefined();
    expect(outputCheck(undefined, undefined)).toBeUndefined();
  });

  it("the mismatch error carries the violations and never the answer's text", () => {
    const err = outputMismatch(schemaCheck?.violations('{"id": "secret-answer-text", "items": [], "status": 3}') ?? []);
    expect(err.reason).toBe("OUTPUT_SCHEMA_MISMATCH");
    expect(err.fieldViolations[0]).toEqual({ field: "/items", description: "must NOT have fewer than 1 items" });
    expect(err.message).not.toContain("secret-answer-text");
  });
});

describe("the simulator's JSON mode", () => {
  const validate = new Ajv({ strict: false }).compile(JSON.parse(ORDER) as object);

  it("builds an instance that matches the schema, the same for the same seed, streamed as words", () => {
    const text = jsonText({ kind: "json_schema", schema: JSON.parse(ORDER) }, "valid", mulberry32(7));
    expect(validate(JSON.parse(text))).toBe(true);
    expect(jsonText({ kind: "json_schema", schema: JSON.parse(ORDER) }, "valid", mulberry32(7))).toBe(text);
    const tokens = jsonTokens(text);
    expect(tokens.length).toBeGreaterThan(3);
    expect(tokens.join("")).toBe(text);
  });

  it("follows local $refs, consts, formats and bounds", () => {
    const schema = {
      $defs: { when: { type: "string", format: "date-time" } },
      type: "object",
      properties: { at: { $ref: "#/$defs/when" }, kind: { const: "k" }, n: { type: "integer", minimum: 5, maximum: 6 }, tags: { type: "array", items: { type: "string" }, minItems: 3 } },
      required: ["at", "kind", "n", "tags"],
    };
    const value = JSON.parse(jsonText({ kind: "json_schema", schema }, "valid", mulberry32(1))) as Record<string, unknown>;
    expect(new Ajv({ strict: false }).validate(schema, value)).toBe(true);
    expect(value.kind).toBe("k");
  });

  it("breaks the first required property when asked for a wrong answer, or answers in prose", () => {
    const text = jsonText({ kind: "json_schema", schema: JSON.parse(ORDER) }, "invalid", mulberry32(7));
    expect(validate(JSON.parse(text))).toBe(false);
    expect(validate.errors?.[0]?.instancePath).toBe("/id");
    expect(() => JSON.parse(jsonText({ kind: "json_object" }, "not-json", mulberry32(1)))).toThrow();
    expect(JSON.parse(jsonText({ kind: "json_object" }, "valid", mulberry32(1)))).toEqual({ answer: "sim", ok: true });
  });
});
