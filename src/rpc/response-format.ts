/** The proto's ResponseFormat ↔ the domain's: the structured-output part of the request mapping. */
import type { ResponseFormat as ResponseFormatMsg } from "../../gen/ts/llm/v1/llm_service_pb.js";
import type { ResponseFormat } from "../core/types.js";

/** The name OpenAI requires for a json_schema format when the caller gives none. */
export const DEFAULT_SCHEMA_NAME = "response";

/** The request's response format; undefined for none or text (the two mean the same). */
export function toResponseFormat(msg: ResponseFormatMsg | undefined): ResponseFormat | undefined {
  if (!msg) return undefined;
  const passThroughMismatch = msg.passThroughMismatch;
  switch (msg.format.case) {
    case "jsonObject":
      return { type: "json_object", passThroughMismatch };
    case "jsonSchema": {
      const s = msg.format.value;
      return { type: "json_schema", name: s.name === "" ? DEFAULT_SCHEMA_NAME : s.name, schemaJson: s.schemaJson, strict: s.strict, passThroughMismatch };
    }
    case "text":
    case undefined:
      return undefined;
  }
}
