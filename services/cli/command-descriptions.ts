/** One line per `totes` command, shown by `totes --help` and by each command's own help. */
export const COMMAND_DESCRIPTIONS = {
  dev: "Run everything locally: stack, generated totesys, reader, consumer, simulator, live dashboard and web console (npm start)",
  stack: "The local stack: real servers from npm packages, no Docker, no AWS account",
  source: "The totesys source database: schema, snapshots, synthetic data, workload",
  warehouse: "The star-schema warehouse",
  run: "Run pipeline components in this process with the configuration variables",
  status: "Show the reader's and the consumer's positions, lag, the warehouse's consistent_through and the lake's watermark",
  console: "Serve a live web console of the configured stage on 127.0.0.1 (read-only): stages, latency, throughput, lag, shards, watermarks, dead letters",
  lake: "The S3 lake: list, print, compact, pull to a folder, query with DuckDB",
  replay: "Rebuild a warehouse from the lake (bulk COPY into an empty target) or catch one up (the consumer's own apply), resumable",
  resnapshot: "Re-read chosen tables while the reader streams (online repair: no gap, no overlap, rows deleted meanwhile removed), with progress",
  verify: "Reconcile the warehouse with the source (read-only): row counts and checksums per key bucket, differing keys listed"
} as const
