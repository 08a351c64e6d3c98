import { Command, Flag } from "effect/cli"
import { runConsole } from "../console/console.ts"
import { numberIn } from "../../services/cli/arguments.ts"
import { untilSignal } from "../../services/cli/effects.ts"
import { COMMAND_DESCRIPTIONS } from "../../services/cli/command-descriptions.ts"

/** The console's port on 127.0.0.1 (`totes console`, `totes dev`). */
export const portFlag = Flag.Int("port").pipe(
  numberIn({ min: 0, max: 65_535, unit: "(a TCP port; 0 picks a free one)" }),
  Flag.withDescription("Port of the live console on 127.0.0.1 (0: a free port, printed at start)"),
  Flag.withDefault(0)
)

export const consoleCommand = Command.make("console", { port: portFlag }, ({ port }) => untilSignal((signal) => runConsole({ port, signal }))).pipe(
  Command.withDescription(COMMAND_DESCRIPTIONS.console)
)
