// @ts-check
import js from "@eslint/js";
import { defineConfig } from "eslint/config";
import tseslint from "typescript-eslint";

export default defineConfig(
  { ignores: ["dist/", "node_modules/", "data/", "coverage/"] },
  js.configs.recommended,
  {
    files: ["**/*.ts"],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // A promise nobody awaits loses its rejection; say `void` when that is the intent.
      "@typescript-eslint/no-floating-promises": "error",
      // A new member of a union (an errcode class, a log format...) must reach every switch.
      "@typescript-eslint/switch-exhaustiveness-check": "error",
      // A class used only as a type is imported with `type`, so the import says what it is for.
      "@typescript-eslint/consistent-type-imports": ["error", { fixStyle: "inline-type-imports" }],
      // `==` coerces: errcode 0 would equal "0" and "" alike.
      eqeqeq: "error",
      // Node's URLSearchParams (from @types/node, not lib.dom) prints as a query string, as in lib.
      "@typescript-eslint/restrict-template-expressions": [
        "error",
        {
          allow: [
            { from: "lib", name: ["Error", "URL", "URLSearchParams"] },
            { from: "package", package: "url", name: "URLSearchParams" },
          ],
        },
      ],
      // `async` on a Promise-returning method is what turns its throws into rejections, await or not.
      "@typescript-eslint/require-await": "off",
      // Passing on a reason we were given (an abort's, a caught error) is not inventing a non-Error.
      "@typescript-eslint/prefer-promise-reject-errors": [
        "error",
        { allowThrowingAny: true, allowThrowingUnknown: true },
      ],
      // TypeScript's own convention (noUnusedLocals): a leading underscore marks a name unused on purpose.
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
    },
  },
  {
    // Product code logs through pino (redaction); the CLI and the sandbox print with process.stdout/stderr.
    files: ["src/**/*.ts"],
    rules: { "no-console": "error" },
  },
  {
    files: ["test/**/*.ts"],
    rules: {
      // vitest's asymmetric matchers (expect.any, expect.stringMatching...) are typed `any`.
      "@typescript-eslint/no-unsafe-assignment": "off",
    },
  },
  {
    // This file is plain JavaScript outside tsconfig.json: no type information for it.
    files: ["**/*.js"],
    extends: [tseslint.configs.disableTypeChecked],
  },
);
