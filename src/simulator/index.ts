/** The upstream simulator's public surface. */
export { startSimulator, Simulator } from "./server.js";
export { KNOB_HEADERS } from "./knobs.js";
export { countWords } from "./text.js";
export type {
  AbortFilter,
  ClientAbort,
  Fault,
  RequestInfo,
  SimulatorKnobs,
  SimulatorOptions,
  SimulatorStats,
  TextMode,
} from "./types.js";
