/** The `ollama` provider: OLLAMA_HOST, no price defaults (local models), the adapter over the `ollama` package. */
import { z } from "zod";
import { definedOnly, optionalString } from "../../config/env-fields.js";
import { defineProvider } from "../descriptor.js";
import { ollamaHostUrl } from "./ollama-host.js";

/** OLLAMA_HOST in any form Ollama takes (`host`, `host:port`, `:port`, a URL), as a URL; blank means unset. */
const ollamaHost = optionalString.transform((s, ctx) => {
  if (s === undefined) return undefined;
  try {
    return ollamaHostUrl(s);
  } catch {
    ctx.addIssue({ code: "custom", message: "must be a URL, host, host:port or :port (as Ollama reads OLLAMA_HOST)" });
    return z.NEVER;
  }
});

export const ollamaDescriptor = defineProvider({
  name: "ollama",
  env: { OLLAMA_HOST: ollamaHost },
  settings: (e) => definedOnly({ host: e.OLLAMA_HOST }),
  prices: {},
  async create(settings, { credentials, fetch, now }) {
    const { OllamaProvider } = await import("./ollama-provider.js");
    return new OllamaProvider({ defaults: settings, credentials, fetch: fetch(), ...(now ? { now } : {}) });
  },
});
