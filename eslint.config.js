// Lint: ESLint's recommended rules with typescript-eslint (syntax-level, fast; types are checked by tsc).
import js from "@eslint/js"
import tseslint from "typescript-eslint"

export default tseslint.config(
  { ignores: ["node_modules/", ".sst/", ".totes/", ".prof/", "sst-env.d.ts", "coverage/", "dist/", ".scratch/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  // The console's page script runs in the browser.
  { files: ["tools/console/page/**/*.js"], languageOptions: { sourceType: "script", globals: { document: "readonly", window: "readonly" } } },
  {
    languageOptions: { globals: { process: "readonly", console: "readonly", Buffer: "readonly", URL: "readonly", setTimeout: "readonly", clearTimeout: "readonly", setInterval: "readonly", clearInterval: "readonly", performance: "readonly", AbortController: "readonly", AbortSignal: "readonly", TextEncoder: "readonly", TextDecoder: "readonly", structuredClone: "readonly", fetch: "readonly" } },
    rules: {
      "@typescript-eslint/no-explicit-any": "off",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" }],
      "no-empty": ["error", { allowEmptyCatch: true }],
      "@typescript-eslint/no-namespace": "off"
    }
  },
  { files: ["**/*.cjs"], languageOptions: { sourceType: "commonjs", globals: { module: "writable", require: "readonly" } } }
)
