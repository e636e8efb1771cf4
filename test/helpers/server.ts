import { startHarness, type Harness, type HarnessOptions } from "./harness.js";

export type TestServer = Harness;

/** The service with the built-in catalogue, configured by `env` (see harness.ts). */
export function startTestServer(env: Record<string, string> = {}, options: Pick<HarnessOptions, "newRequestId"> = {}): Promise<TestServer> {
  return startHarness({ env, ...options });
}
