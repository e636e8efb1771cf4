/** The `anthropic` provider: ANTHROPIC_API_KEY / ANTHROPIC_BASE_URL, Anthropic's prices, the adapter over `@anthropic-ai/sdk`. */
import { definedOnly, optionalString, optionalUrl } from "../../config/env-fields.js";
import { defineProvider } from "../descriptor.js";
import { ANTHROPIC_CACHE_RATES, ANTHROPIC_PRICES } from "./anthropic-prices.js";

export const anthropicDescriptor = defineProvider({
  name: "anthropic",
  env: { ANTHROPIC_API_KEY: optionalString, ANTHROPIC_BASE_URL: optionalUrl },
  settings: (e) => definedOnly({ apiKey: e.ANTHROPIC_API_KEY, baseUrl: e.ANTHROPIC_BASE_URL }),
  prices: ANTHROPIC_PRICES,
  cacheRates: ANTHROPIC_CACHE_RATES,
  async create(settings, { credentials, fetch, now }) {
    const { AnthropicProvider } = await import("./anthropic-provider.js");
    return new AnthropicProvider({ defaults: settings, credentials, fetch: fetch(), ...(now ? { now } : {}) });
  },
});
