/** The `sim` provider: in process, no network, no variables (the built-in catalogue's SIM_* timings are the service's). */
import { defineProvider } from "../descriptor.js";

export const simDescriptor = defineProvider({
  name: "sim",
  env: {},
  settings: () => ({}),
  prices: {},
  // Anthropic's rule, so cached input can be priced and tried without a vendor (metadata sim-cached-tokens).
  cacheRates: { read: 0.1, write: 1.25 },
  async create() {
    const { SimProvider } = await import("./sim-provider.js");
    return new SimProvider();
  },
});
