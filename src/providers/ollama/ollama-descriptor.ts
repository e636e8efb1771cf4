/** The `ollama` provider: OLLAMA_HOST, no price defaults (local models), the adapter over the `ollama` package. */
import { definedOnly, optionalUrl } from "../../config/env-fields.js";
import { defineProvider } from "../descriptor.js";

export const ollamaDescriptor = defineProvider({
  name: "ollama",
  env: { OLLAMA_HOST: optionalUrl },
  settings: (e) => definedOnly({ host: e.OLLAMA_HOST }),
  prices: {},
  async create(settings, { credentials, fetch, now }) {
    const { OllamaProvider } = await import("./ollama-provider.js");
    return new OllamaProvider({ defaults: settings, credentials, fetch: fetch(), ...(now ? { now } : {}) });
  },
});
