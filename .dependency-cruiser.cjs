/**
 * Which folder may import which (run by `npm run depcheck`, part of `npm test`).
 *
 *   contracts/                     vocabulary: events, LSNs, keys, checkpoints, catalogues — imports nothing of ours
 *   services/shared/               platform adapters: AWS clients, config, logging, metrics, checkpoints
 *   services/lake/, warehouse/     the two stores: lake objects and Parquet; star schema, projection, apply
 *   services/reader/, consumer/,   deployables: each uses contracts and the layers above, never another
 *     archiver/, replay/             deployable's modules
 *   services/status/, cli/         the operator's view: may read any service
 *   tools/                         development tooling (local stack, simulator, dashboard): never imported
 *                                  by services/ or contracts/, so it stays out of the image and the bundle
 *
 * `scripts/dependency-check.sh --prove-fails` plants a cycle and a forbidden import and shows this fails.
 */
const DEPLOYABLES = "(reader|consumer|archiver|replay)"

module.exports = {
  forbidden: [
    {
      name: "no-cycles",
      comment: "A module cycle means two modules are one; merge them or move the shared part down a layer.",
      severity: "error",
      from: {},
      to: { circular: true }
    },
    {
      name: "contracts-are-pure",
      comment: "contracts/ is the vocabulary every layer shares: it depends on nothing of ours but itself.",
      severity: "error",
      from: { path: "^contracts/" },
      to: { path: "^(services|tools|infra|test|bench|scripts)/" }
    },
    {
      name: "shared-is-the-bottom",
      comment: "services/shared/ holds adapters every service uses; it cannot know any service.",
      severity: "error",
      from: { path: "^services/shared/" },
      to: { path: "^services/(?!shared/)" }
    },
    {
      name: "stores-below-deployables",
      comment: "The lake and warehouse modules are used by deployables, never the other way round, and not by each other.",
      severity: "error",
      from: { path: "^services/(lake|warehouse)/" },
      to: { path: "^services/(?!shared/|$1/)" }
    },
    {
      name: "deployables-are-independent",
      comment: "A deployable uses contracts, shared, lake and warehouse; what two deployables share moves down a layer.",
      severity: "error",
      from: { path: `^services/${DEPLOYABLES}/` },
      to: { path: `^services/(?!shared/|lake/|warehouse/|$1/)` }
    },
    {
      name: "status-below-cli",
      comment: "The CLI uses status, not the reverse.",
      severity: "error",
      from: { path: "^services/status/" },
      to: { path: "^services/cli/" }
    },
    {
      name: "production-code-without-tooling",
      comment: "Development tooling, tests and benchmarks stay out of the production image and the Lambda bundle.",
      severity: "error",
      from: { path: "^(services|contracts)/" },
      to: { path: "^(tools|test|bench|scripts|infra)/", dependencyTypesNot: ["dynamic-import"] }
    },
    {
      name: "tooling-loaded-only-by-the-cli",
      comment: "Only the CLI's development commands load tools/, with a dynamic import the image never reaches.",
      severity: "error",
      from: { path: "^(services|contracts)/", pathNot: "^services/cli/" },
      to: { path: "^(tools|test|bench|scripts|infra)/", dependencyTypes: ["dynamic-import"] }
    },
    {
      name: "production-code-without-dev-dependencies",
      comment: "A devDependency is not installed in the image; production code may only use it for types.",
      severity: "error",
      from: { path: "^(services|contracts)/" },
      to: { dependencyTypes: ["npm-dev"], dependencyTypesNot: ["type-only"] }
    },
    {
      name: "infra-without-tooling",
      comment: "The deployment describes production code only.",
      severity: "error",
      from: { path: "^(infra/|sst\\.config\\.ts)" },
      to: { path: "^(tools|test|bench)/" }
    },
    {
      name: "resolvable",
      comment: "Every import resolves to a file or an installed package.",
      severity: "error",
      from: {},
      to: { couldNotResolve: true }
    }
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "(^|/)(dist|\\.sst|\\.totes|\\.prof)/" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: {
      exportsFields: ["exports"],
      conditionNames: ["import", "require", "node", "default", "types"],
      extensions: [".ts", ".js", ".mjs", ".cjs", ".d.ts", ".json"]
    },
    reporterOptions: { text: { highlightFocused: true } }
  }
}
