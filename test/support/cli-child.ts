/**
 * The lake, replay and verify commands as a `totes`-like CLI, for tests that check exit statuses
 * and output before (and independently of) their wiring into services/cli/main.ts:
 * `node --import tsx test/support/cli-child.ts verify --json`.
 */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Effect } from "effect"
import { Command } from "effect/cli"
import { lakeCommand } from "../../services/cli/commands/lake.ts"
import { replayCommand } from "../../services/cli/commands/replay.ts"
import { verifyCommand } from "../../services/cli/commands/verify.ts"

const totes = Command.make("totes").pipe(Command.withSubcommands([lakeCommand, replayCommand, verifyCommand]))

totes.pipe(Command.run({ version: "test" }), Effect.provide(NodeServices.layer), NodeRuntime.runMain({ disableErrorReporting: false }))
