/** The dialect list drives the simulator's routes: each listed dialect is served where it says, and answers what it claims. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DIALECTS } from "../../src/simulator/dialects.js";
import { startSimulator, type Simulator } from "../../src/simulator/index.js";

let sim: Simulator;
beforeAll(async () => {
  sim = await startSimulator();
});
afterAll(() => sim.close());

const cases = DIALECTS.map((d) => [d.name, d] as const);
/** Headers that make a request this dialect's when its path does not. */
const claimHeaders = (d: (typeof DIALECTS)[number]): Record<string, string> => (d.claims?.header ? { [d.claims.header]: "2023-06-01" } : {});

describe("simulator dialects", () => {
  it("have unique names and chat paths", () => {
    expect(new Set(DIALECTS.map((d) => d.name)).size).toBe(DIALECTS.length);
    expect(new Set(DIALECTS.map((d) => d.chatPath)).size).toBe(DIALECTS.length);
  });

  it.each(cases)("%s answers at its chat path, with its own error shape for a bad request", async (_name, d) => {
    const res = await fetch(`${sim.url}${d.chatPath}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...claimHeaders(d) },
      body: "{}",
    });
    expect(res.status).toBe(400);
    expect(res.headers.get(d.idHeader)).toMatch(/^req_sim/);
    const body = JSON.parse(await res.text()) as Record<string, unknown>;
    const shape = JSON.parse(d.error(400, "m", "r", undefined).body) as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(Object.keys(shape).sort());
  });

  it.each(cases)("%s serves its GET routes with the default models of every dialect", async (_name, d) => {
    const models = DIALECTS.map((x) => x.defaultModel);
    for (const [path, render] of Object.entries(d.get)) {
      const res = await fetch(`${sim.url}${path}`, { headers: claimHeaders(d) });
      expect(res.status).toBe(200);
      expect(await res.text()).toBe(render(models));
    }
  });
});
