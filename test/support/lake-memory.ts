/** In-memory lake and checkpoint stores with fault switches, for the lake unit tests. */
export { makeMemoryCheckpointStore as memoryCheckpoints } from "../../services/shared/checkpoint-store.ts"
export { makeMemoryLakeStore as memoryLake } from "../../services/shared/lake-store.ts"
