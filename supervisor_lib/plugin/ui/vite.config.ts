// Builds src/main.tsx into ../static/supervisor.js: one script that registers Supervisor's views as globals
// (globalThis["Supervisor"], globalThis["Supervisor spend"]) for Airflow's UI to render. React, ReactDOM, the JSX
// runtime, Chakra UI and Emotion are the host's own (Airflow exposes them as globals), so the views share its
// theme; only uPlot is bundled.
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

const hostGlobals: Record<string, string> = {
  react: "React",
  "react-dom": "ReactDOM",
  "react/jsx-runtime": "ReactJSXRuntime",
  "@chakra-ui/react": "ChakraUI",
  "@emotion/react": "EmotionReact",
};

export default defineConfig({
  plugins: [react({ jsxRuntime: "automatic" })],
  define: { "process.env.NODE_ENV": JSON.stringify("production") },
  build: {
    outDir: "../static",
    emptyOutDir: false,
    sourcemap: false,
    minify: "esbuild",
    target: "es2022",
    lib: {
      entry: "src/main.tsx",
      name: "SupervisorViews",
      formats: ["iife"],
      fileName: () => "supervisor.js",
    },
    rollupOptions: {
      external: Object.keys(hostGlobals),
      output: { globals: hostGlobals, inlineDynamicImports: true },
    },
  },
});
