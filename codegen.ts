import type { CodegenConfig } from "@graphql-codegen/cli";
import { printSchema } from "graphql";
import { modules } from "./src/modules/index.ts";
import { schemaFor } from "./src/schema/index.ts";

/**
 * `npm run codegen` prints the schema that the code builds to schema.graphql
 * (checked in, compared with the public contract in CI) and types every
 * operation the tests write with `graphql(...)`.
 */
const config: CodegenConfig = {
  schema: printSchema(schemaFor(modules)),
  documents: ["test/**/*.ts", "bench/**/*.ts", "!test/generated/**"],
  ignoreNoDocuments: true,
  // Relative imports with their extension, as NodeNext wants.
  importExtension: ".ts",
  generates: {
    "schema.graphql": { plugins: ["schema-ast"] },
    "test/generated/": {
      preset: "client",
      config: { enumsAsTypes: true, useTypeImports: true, scalars: { DateTime: "string", ID: "string" } },
      // persisted-documents.json (hash → document) is what TRUSTED_DOCUMENTS takes: first-party apps send hashes only.
      presetConfig: { fragmentMasking: false, persistedDocuments: { hashAlgorithm: "sha256" } },
    },
  },
};

export default config;
