/**
 * What the consumer Lambda's package holds (plain data, used by infra/consumer.ts and by the test
 * that builds the package as SST does and runs it: test/integration/lambda-package.test.ts).
 * SST bundles the handler with esbuild to the handler's own path (services/consumer/handler.mjs);
 * the warehouse migrations are read at run time from `./migrations/` beside the module that runs
 * them, which in the bundle is the handler's folder, so they are copied there.
 */
export const CONSUMER_HANDLER = "services/consumer/handler.handler"

/** SST `copyFiles`: paths relative to sst.config.ts → paths in the function package. */
export const CONSUMER_COPY_FILES: ReadonlyArray<{ readonly from: string; readonly to: string }> = [
  { from: "services/warehouse/migrations", to: "services/consumer/migrations" }
]
