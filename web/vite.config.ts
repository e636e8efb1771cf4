import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

/**
 * The /playground page. `npm run build:web` writes it to dist/web, where the service serves it
 * (src/server/static-assets.ts). The SDK comes from source, by its package name, in its browser build.
 */
export default defineConfig({
  root: here("."),
  base: "/playground/",
  resolve: {
    alias: [{ find: /^@llm-service\/sdk$/, replacement: here("../sdk/ts/src/browser.ts") }],
  },
  build: {
    outDir: here("../dist/web"),
    emptyOutDir: true,
    target: "es2022",
    sourcemap: true,
    // Small enough to keep in one chunk.
    chunkSizeWarningLimit: 400,
  },
  server: {
    // `npx vite web` for work on the page: API calls go to a service on :8080 listed in CORS_ORIGINS,
    // or use the Server field.
    port: 5173,
    strictPort: false,
  },
});
