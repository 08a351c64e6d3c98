// SST's config.ts imports the type `Shell` from "bun" (for `$` in workflow hooks). Resolving the
// real bun-types 1.2.1 next to @types/node 22.20 breaks the check of SST's own sources (Buffer
// types clash), so infra/tsconfig.json maps "bun" to this minimal declaration.
export type Shell = (strings: TemplateStringsArray, ...expressions: Array<unknown>) => Promise<unknown>
