/**
 * The lake, replay and verify commands as a `totes`-like CLI with the real runner (exit codes,
 * error lines), for tests that check exit statuses and output: `node --import tsx
 * test/support/cli-child.ts verify --json`.
 */
import { Command } from "effect/cli"
import { lakeCommand } from "../../services/cli/commands/lake.ts"
import { replayCommand } from "../../services/cli/commands/replay.ts"
import { verifyCommand } from "../../services/cli/commands/verify.ts"
import { runTotes } from "../../services/cli/runner.ts"

runTotes(Command.make("totes").pipe(Command.withSubcommands([lakeCommand, replayCommand, verifyCommand])))
