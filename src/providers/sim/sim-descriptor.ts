/** The `sim` provider: in process, no network, no variables (the built-in catalogue's SIM_* timings are the service's). */
import { defineProvider } from "../descriptor.js";

export const simDescriptor = defineProvider({
  name: "sim",
  env: {},
  settings: () => ({}),
  prices: {},
  async create() {
    const { SimProvider } = await import("./sim-provider.js");
    return new SimProvider();
  },
});
