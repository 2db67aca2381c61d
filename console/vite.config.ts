import { defineConfig } from "vite";

// Built into dist/console, which the gateway serves at /console (src/gateway/console.ts).
export default defineConfig({
  root: import.meta.dirname,
  base: "/console/",
  logLevel: "warn",
  build: {
    outDir: "../dist/console",
    emptyOutDir: true,
    // Scripts and styles as files only: the page's CSP allows no inline ones.
    assetsInlineLimit: 0,
  },
});
