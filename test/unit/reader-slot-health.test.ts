/** What the reader says about its slot while it runs: failover readiness and WAL headroom. */
import { describe, expect, it } from "vitest"
import { failoverFindings, FindingTracker, walHeadroomFindings, type Finding, type SlotHealthFacts } from "../../services/reader/slot-health.ts"
import type { PhysicalSlot, SlotInfo, StandbyView } from "../../services/reader/source-admin.ts"

const slot = (overrides: Partial<SlotInfo> = {}): SlotInfo => ({
  slot: "totes_cdc",
  plugin: "pgoutput",
  database: "totesys",
  confirmedFlushLsn: "0/16B3749",
  restartLsn: "0/16B3000",
  activePid: 4242,
  walStatus: "reserved",
  invalidationReason: null,
  safeWalSize: null,
  failover: true,
  synced: false,
  ...overrides
})

/** A standby connected through its physical slot, with feedback and a synchronised slot. */
const standby = (name: string, overrides: Partial<PhysicalSlot> = {}): PhysicalSlot => ({
  name,
  active: true,
  xmin: "767",
  catalogXmin: "755",
  walStatus: "reserved",
  invalidationReason: null,
  ...overrides
})

const view = (overrides: Partial<StandbyView> = {}): StandbyView => ({
  serverVersionNum: 180004,
  synchronizedStandbySlots: ["standby1"],
  physicalSlots: [standby("standby1")],
  logicalSlots: ["totes_cdc"],
  ...overrides
})

const facts = (overrides: Partial<SlotHealthFacts> = {}): SlotHealthFacts => ({
  slotName: "totes_cdc",
  failoverRequested: true,
  slot: slot(),
  standbys: view(),
  ...overrides
})

const keys = (findings: ReadonlyArray<Finding>) => findings.map((f) => f.key)

describe("failoverFindings", () => {
  it("a failover slot synchronised by a well-configured standby: nothing to say", () => {
    expect(failoverFindings(facts())).toEqual([])
  })

  it("failover not asked for and the slot has none: nothing to check", () => {
    expect(failoverFindings(facts({ failoverRequested: false, slot: slot({ failover: false }), standbys: view({ synchronizedStandbySlots: [], physicalSlots: [] }) }))).toEqual([])
  })

  it("PostgreSQL 16: TOTES_FAILOVER_SLOT is ignored with a warning that says what a failover then means", () => {
    const findings = failoverFindings(facts({ slot: slot({ failover: null, synced: null }), standbys: view({ serverVersionNum: 160004, synchronizedStandbySlots: [] }) }))
    expect(findings).toEqual([
      {
        key: "failover-unsupported",
        settles: false,
        message:
          "TOTES_FAILOVER_SLOT is ignored: failover slots need PostgreSQL 17 or later and this server is 16.4. A standby promoted after a failover will not have slot 'totes_cdc'; the reader then refuses to start (slot missing) and the repair is --resnapshot."
      }
    ])
    expect(failoverFindings(facts({ failoverRequested: false, standbys: view({ serverVersionNum: 160004 }) }))).toEqual([])
  })

  it("an existing slot without failover: reported with the command that switches it", () => {
    expect(failoverFindings(facts({ slot: slot({ failover: false }) }))).toEqual([
      {
        key: "slot-without-failover",
        settles: false,
        message:
          "slot 'totes_cdc' was created without failover, so standbys do not synchronise it and a promoted standby will not have it. Stop the reader and switch it on: psql \"dbname=<source database> replication=database\" -c 'ALTER_REPLICATION_SLOT totes_cdc (FAILOVER true)'"
      }
    ])
  })

  it("a slot that has failover is checked even when the variable is off (synchronized_standby_slots still holds it back)", () => {
    expect(keys(failoverFindings(facts({ failoverRequested: false, standbys: view({ physicalSlots: [standby("standby1", { active: false })] }) })))).toEqual([
      "listed-inactive:standby1"
    ])
  })

  it("no standby at all: no physical slot, nothing listed", () => {
    const findings = failoverFindings(facts({ standbys: view({ synchronizedStandbySlots: [], physicalSlots: [] }) }))
    expect(keys(findings)).toEqual(["no-standby-slot", "no-synchronized-standby-slots"])
    expect(findings[0]!.message).toBe(
      "no physical replication slot exists on this server: no standby streams through a slot (primary_slot_name), so no standby can synchronise the reader's slot. Give each standby that may be promoted a physical slot."
    )
    expect(findings[1]!.message).toBe(
      "synchronized_standby_slots is empty: the reader can receive and publish changes that no standby has yet, and after a failover those changes are missing from the new primary while the stream holds them. List the physical slots of the standbys that may be promoted in synchronized_standby_slots on the primary."
    )
  })

  it("a standby that is not listed in synchronized_standby_slots is still checked for feedback and synchronisation", () => {
    expect(keys(failoverFindings(facts({ standbys: view({ synchronizedStandbySlots: [], physicalSlots: [standby("s2", { catalogXmin: null })] }) })))).toEqual([
      "no-synchronized-standby-slots",
      "not-synchronising:s2"
    ])
  })

  it("synchronized_standby_slots naming what logical decoding would wait for forever", () => {
    const findings = failoverFindings(
      facts({
        standbys: view({
          synchronizedStandbySlots: ["gone", "totes_cdc", "broken", "asleep", "standby1"],
          physicalSlots: [standby("broken", { walStatus: "lost", invalidationReason: "wal_removed" }), standby("asleep", { active: false }), standby("standby1")]
        })
      })
    )
    expect(findings.map((f) => [f.key, f.message])).toEqual([
      [
        "listed-missing:gone",
        "synchronized_standby_slots names 'gone', which is not a slot on this server: logical decoding waits for it, so the reader receives nothing. Remove it from synchronized_standby_slots or create the standby's slot."
      ],
      [
        "listed-missing:totes_cdc",
        "synchronized_standby_slots names 'totes_cdc', which is a logical slot, not a standby's physical slot: logical decoding waits for it, so the reader receives nothing. Remove it from synchronized_standby_slots or create the standby's slot."
      ],
      [
        "listed-invalid:broken",
        "the standby slot 'broken' listed in synchronized_standby_slots is invalidated (wal_removed): logical decoding waits for it, so the reader receives nothing. Rebuild that standby or remove the slot from synchronized_standby_slots."
      ],
      [
        "listed-inactive:asleep",
        "the standby streaming through 'asleep' (listed in synchronized_standby_slots) is not connected: logical decoding waits for it, so the reader stalls until it is back. Bring the standby back or remove 'asleep' from synchronized_standby_slots."
      ]
    ])
    expect(findings.every((f) => !f.settles)).toBe(true)
  })

  it("the standby's own settings, seen through its physical slot: hot_standby_feedback, then slot synchronisation", () => {
    const noFeedback = failoverFindings(facts({ standbys: view({ physicalSlots: [standby("standby1", { xmin: null, catalogXmin: null })] }) }))
    expect(noFeedback).toEqual([
      {
        key: "no-feedback:standby1",
        settles: true,
        message:
          "the standby streaming through 'standby1' sends no hot_standby_feedback (its slot has no xmin): slot synchronisation needs hot_standby_feedback = on on the standby."
      }
    ])
    const notSyncing = failoverFindings(facts({ standbys: view({ physicalSlots: [standby("standby1", { catalogXmin: null })] }) }))
    expect(notSyncing).toEqual([
      {
        key: "not-synchronising:standby1",
        settles: true,
        message:
          "the standby streaming through 'standby1' holds no synchronised slot (its slot has no catalog_xmin): set sync_replication_slots = on and a dbname in primary_conninfo on that standby."
      }
    ])
  })
})

describe("walHeadroomFindings", () => {
  it("warns once the slot is past max_slot_wal_keep_size (unreserved), not before", () => {
    expect(keys(walHeadroomFindings("totes_cdc", slot({ walStatus: "unreserved", safeWalSize: -33554432 })))).toEqual(["wal-unreserved"])
    for (const walStatus of ["reserved", "extended", "lost", null]) expect(walHeadroomFindings("totes_cdc", slot({ walStatus }))).toEqual([])
    expect(walHeadroomFindings("totes_cdc", undefined)).toEqual([])
  })
})

describe("FindingTracker", () => {
  const now = 1_000_000
  const a: Finding = { key: "a", message: "A", settles: false }
  const slow: Finding = { key: "slow", message: "S", settles: true }

  it("reports a finding once while it holds, and its clearing once", () => {
    const tracker = new FindingTracker(60_000)
    expect(tracker.update([a], now)).toEqual({ raised: [a], cleared: [] })
    expect(tracker.update([a], now + 15_000)).toEqual({ raised: [], cleared: [] })
    expect(tracker.update([], now + 30_000)).toEqual({ raised: [], cleared: [a] })
    expect(tracker.update([], now + 45_000)).toEqual({ raised: [], cleared: [] })
    // Back again: reported again.
    expect(tracker.update([a], now + 60_000)).toEqual({ raised: [a], cleared: [] })
  })

  it("a settling finding is reported only once it held for the grace period, and never if it cleared before", () => {
    const tracker = new FindingTracker(60_000)
    expect(tracker.update([slow], now)).toEqual({ raised: [], cleared: [] })
    expect(tracker.update([slow], now + 59_999)).toEqual({ raised: [], cleared: [] })
    expect(tracker.update([slow], now + 60_000)).toEqual({ raised: [slow], cleared: [] })
    expect(tracker.update([slow], now + 75_000)).toEqual({ raised: [], cleared: [] })

    const transient = new FindingTracker(60_000)
    expect(transient.update([slow], now)).toEqual({ raised: [], cleared: [] })
    expect(transient.update([], now + 30_000)).toEqual({ raised: [], cleared: [] })
    // Its clock restarts when it comes back.
    expect(transient.update([slow], now + 45_000)).toEqual({ raised: [], cleared: [] })
    expect(transient.update([slow], now + 104_999)).toEqual({ raised: [], cleared: [] })
    expect(transient.update([slow], now + 105_000)).toEqual({ raised: [slow], cleared: [] })
  })
})
