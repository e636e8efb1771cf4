import type { z } from "zod";
import type { CatalogueConfig } from "../config.js";

/** The catalogue used when no LLM_CONFIG is given: the built-in sim models, no keys, no network. */
export function defaultCatalogue(sim: { ttftMs: number; interTokenMs: number }): z.input<z.ZodType<CatalogueConfig>> {
  const options = { ttftMs: sim.ttftMs, interTokenMs: sim.interTokenMs };
  return {
    models: [
      {
        id: "sim/echo",
        aliases: ["echo"],
        contextWindow: 8192,
        maxOutputTokens: 4096,
        price: { inputPerMillion: 0.5, outputPerMillion: 1.5 },
        capabilities: ["chat", "streaming"],
        deployments: [{ provider: "sim", model: "echo", weight: 1, options }],
        fallbacks: [],
      },
      {
        id: "sim/lorem",
        aliases: ["lorem"],
        contextWindow: 32768,
        maxOutputTokens: 2048,
        price: { inputPerMillion: 3, outputPerMillion: 15 },
        capabilities: ["chat", "streaming"],
        deployments: [{ provider: "sim", model: "lorem", weight: 1, options }],
        fallbacks: [],
      },
      {
        // Deterministic unit vectors (256 long by default, or the request's dimensions), for Embed.
        id: "sim/embed",
        aliases: ["embed"],
        contextWindow: 8192,
        maxOutputTokens: 1,
        price: { inputPerMillion: 0.02, outputPerMillion: 0 },
        capabilities: ["embeddings"],
        deployments: [{ provider: "sim", model: "embed", weight: 1, options }],
        fallbacks: [],
      },
    ],
  };
}
