/** The `openai` provider: OPENAI_API_KEY / OPENAI_BASE_URL, OpenAI's prices, the adapter over the `openai` SDK. */
import { definedOnly, optionalString, optionalUrl } from "../../config/env-fields.js";
import { defineProvider } from "../descriptor.js";
import { OPENAI_PRICES } from "./openai-prices.js";

export const openAiDescriptor = defineProvider({
  name: "openai",
  env: { OPENAI_API_KEY: optionalString, OPENAI_BASE_URL: optionalUrl },
  settings: (e) => definedOnly({ apiKey: e.OPENAI_API_KEY, baseUrl: e.OPENAI_BASE_URL }),
  prices: OPENAI_PRICES,
  async create(settings, { credentials, fetch, now }) {
    const { OpenAiProvider } = await import("./openai-provider.js");
    return new OpenAiProvider({ defaults: settings, credentials, fetch: fetch(), ...(now ? { now } : {}) });
  },
});
