/**
 * Usage errors the command parser lets through: `totes <unknown> --help` printed the top-level help
 * and exited 0 (a help flag wins over parse errors), so a typo looked like success. The command
 * path is checked first: an unknown (sub)command is a usage error, exit status 2.
 */
import type { Command } from "effect/cli"

/** Global flags that take the next argument as their value. */
const VALUE_FLAGS = new Set(["--log-level", "--completions"])

export interface UnknownCommand {
  /** The command path up to the unknown name, e.g. ["totes", "lake"]. */
  readonly path: ReadonlyArray<string>
  readonly name: string
  readonly known: ReadonlyArray<string>
}

/** The first name in `args` that is not a subcommand where one is expected; undefined when the path is valid. */
export const unknownSubcommand = (root: Command.Command.Any, args: ReadonlyArray<string>): UnknownCommand | undefined => {
  let node: Command.Command.Any = root
  const path = [root.name]
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    if (arg === "--") return undefined
    if (arg.startsWith("-")) {
      if (VALUE_FLAGS.has(arg)) i++
      continue
    }
    const children = node.subcommands.flatMap((group) => group.commands)
    // A command without subcommands: the rest are its own arguments.
    if (children.length === 0) return undefined
    const next = children.find((child) => child.name === arg || child.alias === arg)
    if (!next) return { path, name: arg, known: children.map((child) => child.name) }
    node = next
    path.push(next.name)
  }
  return undefined
}

export const unknownCommandMessage = (unknown: UnknownCommand): string =>
  `${unknown.path.join(" ")}: unknown command "${unknown.name}" (commands: ${unknown.known.join(", ")}); see '${unknown.path.join(" ")} --help'`
