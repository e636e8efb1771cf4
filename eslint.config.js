// ESLint flat config: typescript-eslint's recommended rules over src, test, scripts and
// config files. Not type-aware on purpose: `tsc --noEmit` (npm run check) already does
// the type checking, and this keeps lint to a few seconds.
import tseslint from "typescript-eslint";

export default tseslint.config(
  {
    ignores: ["**/dist/", "gen/", "node_modules/", ".data/", ".tmp/", "coverage/", "test-results/"],
  },
  ...tseslint.configs.recommended,
  {
    files: ["**/*.ts"],
    languageOptions: {
      ecmaVersion: 2023,
      sourceType: "module",
    },
    rules: {
      // A leading underscore marks a deliberately unused binding.
      "@typescript-eslint/no-unused-vars": [
        "error",
        {
          argsIgnorePattern: "^_",
          varsIgnorePattern: "^_",
          caughtErrorsIgnorePattern: "^_",
          destructuredArrayIgnorePattern: "^_",
        },
      ],
    },
  },
  {
    // Tests drive a grpc-js client built from a descriptor at run time, whose methods
    // are typed loosely (`Function`) on purpose. Source code keeps the rule.
    files: ["test/**/*.ts", "src/**/*.test.ts"],
    rules: {
      "@typescript-eslint/no-unsafe-function-type": "off",
    },
  },
);
