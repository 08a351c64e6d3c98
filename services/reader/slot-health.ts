/**
 * Pure: what the primary's catalogue says about the slot while the reader runs, as findings an
 * operator can act on before they turn into a failure:
 *
 *   - failover (PostgreSQL 17+): would a promoted standby have the slot, and at a position the
 *     reader has not gone past? The primary sees its standbys only through their physical slots:
 *     `xmin` comes from a standby's hot_standby_feedback, `catalog_xmin` from the logical slots it
 *     holds (synchronised ones); synchronized_standby_slots makes logical decoding wait for the
 *     listed standbys, so nothing reaches the reader that they have not received.
 *   - WAL headroom: a slot past max_slot_wal_keep_size (`unreserved`) is invalidated by the next
 *     checkpoint unless the reader catches up.
 *
 * The standby's own settings (sync_replication_slots, a dbname in primary_conninfo) are not
 * visible from the primary; a standby that synchronises nothing is recognised by its effect.
 */
import type { SlotInfo, StandbyView } from "./source-admin.ts"

export const FAILOVER_MIN_VERSION = 170000

export interface Finding {
  /** Stable identity (kind and subject): a finding is reported once, and again only after it cleared. */
  readonly key: string
  readonly message: string
  /**
   * Only reported once it has held for the grace period: a standby's feedback and the slot
   * synchronisation take a few seconds to show after a start or a new slot.
   */
  readonly settles: boolean
}

export interface SlotHealthFacts {
  readonly slotName: string
  /** TOTES_FAILOVER_SLOT */
  readonly failoverRequested: boolean
  readonly slot: SlotInfo | undefined
  readonly standbys: StandbyView
}

const version = (num: number) => `${Math.floor(num / 10000)}.${num % 10000}`

/** The replication command that switches failover on for an existing slot (psql accepts it on a replication connection). */
export const alterFailoverCommand = (slotName: string) =>
  `psql "dbname=<source database> replication=database" -c 'ALTER_REPLICATION_SLOT ${slotName} (FAILOVER true)'`

export const failoverFindings = ({ slotName, failoverRequested, slot, standbys }: SlotHealthFacts): Array<Finding> => {
  const findings: Array<Finding> = []
  const add = (key: string, message: string, settles = false) => findings.push({ key, message, settles })
  if (standbys.serverVersionNum < FAILOVER_MIN_VERSION) {
    if (failoverRequested)
      add(
        "failover-unsupported",
        `TOTES_FAILOVER_SLOT is ignored: failover slots need PostgreSQL 17 or later and this server is ${version(standbys.serverVersionNum)}. A standby promoted after a failover will not have slot '${slotName}'; the reader then refuses to start (slot missing) and the repair is --resnapshot.`
      )
    return findings
  }
  if (failoverRequested && slot?.failover === false)
    add(
      "slot-without-failover",
      `slot '${slotName}' was created without failover, so standbys do not synchronise it and a promoted standby will not have it. Stop the reader and switch it on: ${alterFailoverCommand(slotName)}`
    )
  // What follows only matters for a slot that standbys synchronise (or will once switched).
  if (!(failoverRequested || slot?.failover)) return findings

  const physical = new Map(standbys.physicalSlots.map((p) => [p.name, p]))
  const listed = standbys.synchronizedStandbySlots
  if (standbys.physicalSlots.length === 0)
    add(
      "no-standby-slot",
      "no physical replication slot exists on this server: no standby streams through a slot (primary_slot_name), so no standby can synchronise the reader's slot. Give each standby that may be promoted a physical slot."
    )
  if (listed.length === 0)
    add(
      "no-synchronized-standby-slots",
      "synchronized_standby_slots is empty: the reader can receive and publish changes that no standby has yet, and after a failover those changes are missing from the new primary while the stream holds them. List the physical slots of the standbys that may be promoted in synchronized_standby_slots on the primary."
    )
  for (const name of listed) {
    const standby = physical.get(name)
    if (!standby) {
      const what = standbys.logicalSlots.includes(name) ? "a logical slot, not a standby's physical slot" : "not a slot on this server"
      add(`listed-missing:${name}`, `synchronized_standby_slots names '${name}', which is ${what}: logical decoding waits for it, so the reader receives nothing. Remove it from synchronized_standby_slots or create the standby's slot.`)
    } else if (standby.walStatus === "lost" || standby.invalidationReason) {
      add(`listed-invalid:${name}`, `the standby slot '${name}' listed in synchronized_standby_slots is invalidated (${standby.invalidationReason ?? "wal_status lost"}): logical decoding waits for it, so the reader receives nothing. Rebuild that standby or remove the slot from synchronized_standby_slots.`)
    } else if (!standby.active) {
      add(`listed-inactive:${name}`, `the standby streaming through '${name}' (listed in synchronized_standby_slots) is not connected: logical decoding waits for it, so the reader stalls until it is back. Bring the standby back or remove '${name}' from synchronized_standby_slots.`)
    }
  }
  // The standbys that matter: the listed ones, or every connected one when none is listed.
  const candidates = (listed.length > 0 ? listed.flatMap((name) => physical.get(name) ?? []) : standbys.physicalSlots).filter((p) => p.active)
  for (const standby of candidates) {
    if (standby.xmin === null)
      add(
        `no-feedback:${standby.name}`,
        `the standby streaming through '${standby.name}' sends no hot_standby_feedback (its slot has no xmin): slot synchronisation needs hot_standby_feedback = on on the standby.`,
        true
      )
    else if (standby.catalogXmin === null)
      add(
        `not-synchronising:${standby.name}`,
        `the standby streaming through '${standby.name}' holds no synchronised slot (its slot has no catalog_xmin): set sync_replication_slots = on and a dbname in primary_conninfo on that standby.`,
        true
      )
  }
  return findings
}

/** Past max_slot_wal_keep_size: the next checkpoint invalidates the slot unless the reader catches up. */
export const walHeadroomFindings = (slotName: string, slot: SlotInfo | undefined): Array<Finding> =>
  slot?.walStatus === "unreserved"
    ? [
        {
          key: "wal-unreserved",
          message: `slot '${slotName}' retains more WAL than max_slot_wal_keep_size allows (wal_status unreserved): the next checkpoint invalidates it unless the reader catches up first. Raise max_slot_wal_keep_size now if the reader cannot catch up.`,
          settles: false
        }
      ]
    : []

export interface FindingChanges {
  /** Findings to report now (new, or settled after their grace period). */
  readonly raised: ReadonlyArray<Finding>
  /** Findings reported earlier that no longer hold. */
  readonly cleared: ReadonlyArray<Finding>
}

/** Reports each finding once while it holds; a settling one only after `graceMs`. */
export class FindingTracker {
  private readonly firstSeen = new Map<string, number>()
  private readonly reported = new Map<string, Finding>()

  constructor(private readonly graceMs: number) {}

  update(findings: ReadonlyArray<Finding>, now: number): FindingChanges {
    const current = new Map(findings.map((f) => [f.key, f]))
    for (const key of [...this.firstSeen.keys()]) if (!current.has(key)) this.firstSeen.delete(key)
    const cleared: Array<Finding> = []
    for (const [key, finding] of this.reported) {
      if (current.has(key)) continue
      this.reported.delete(key)
      cleared.push(finding)
    }
    const raised: Array<Finding> = []
    for (const finding of findings) {
      if (this.reported.has(finding.key)) continue
      const since = this.firstSeen.get(finding.key) ?? now
      this.firstSeen.set(finding.key, since)
      if (finding.settles && now - since < this.graceMs) continue
      this.reported.set(finding.key, finding)
      raised.push(finding)
    }
    return { raised, cleared }
  }
}
