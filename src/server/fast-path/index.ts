/** The direct serving path for one service's gRPC and Connect calls; see create-fast-path.ts. */
export { createFastPath, type FastPath, type FastPathOptions } from "./create-fast-path.js";
