/** Where the reader starts: every branch of the slot guard. */
import { describe, expect, it } from "vitest"
import type { ReaderCheckpoint, SnapshotState } from "../../contracts/checkpoint.ts"
import { decideStart, gapOf, invalidationOf, type StartFacts } from "../../services/reader/slot-guard.ts"
import type { SlotInfo } from "../../services/reader/source-admin.ts"

const SYSTEM_ID = "7312345678901234567"

const slot = (overrides: Partial<SlotInfo> = {}): SlotInfo => ({
  slot: "totes_slot",
  plugin: "pgoutput",
  database: "totesys",
  confirmedFlushLsn: "0/16B3749",
  restartLsn: "0/16B3000",
  activePid: null,
  walStatus: "reserved",
  invalidationReason: null,
  safeWalSize: 1_000_000,
  failover: false,
  synced: false,
  ...overrides
})

const checkpoint = (overrides: Partial<ReaderCheckpoint> = {}): ReaderCheckpoint => ({
  lsn: "0/16B3748",
  committedAt: "2024-02-23T11:11:10.072123Z",
  systemId: SYSTEM_ID,
  slot: "totes_slot",
  ...overrides
})

const snapshot = (complete: boolean): SnapshotState => ({
  consistentPoint: "0/1600000",
  createdAt: "2024-02-23T10:00:00.000Z",
  tablesDone: complete ? ["payment", "staff"] : ["payment"],
  complete
})

const facts = (overrides: Partial<StartFacts> = {}): StartFacts => ({
  slotName: "totes_slot",
  systemId: SYSTEM_ID,
  slot: slot(),
  checkpoint: checkpoint(),
  snapshot: snapshot(true),
  resnapshot: false,
  ...overrides
})

const ADVICE =
  "Refusing to run. To start over, restart with --resnapshot (a new slot and initial snapshot), then rebuild the warehouse from that snapshot (a fresh warehouse, or totes replay --from the new snapshot's time) or repair the tables online with totes resnapshot --tables <tables>: changes in the gap were never captured, so rows deleted in it would otherwise linger; totes verify shows what differs."

describe("decideStart", () => {
  it("streams from the checkpoint when the slot confirmed exactly checkpoint + 1 (what the reader acknowledges)", () => {
    expect(decideStart(facts())).toEqual({ _tag: "Stream", from: "0/16B3748", committedAt: "2024-02-23T11:11:10.072123Z" })
  })

  it.each([
    ["the checkpoint itself", "0/16B3748"],
    ["behind the checkpoint (an acknowledgement the server did not record)", "0/1000000"],
    ["unknown (null)", null],
    ["checkpoint + 1 across the 32-bit boundary", "1/0"]
  ])("streams when the slot's confirmed position is %s", (_, confirmedFlushLsn) => {
    const cp = confirmedFlushLsn === "1/0" ? checkpoint({ lsn: "0/FFFFFFFF" }) : checkpoint()
    expect(decideStart(facts({ slot: slot({ confirmedFlushLsn }), checkpoint: cp }))).toEqual({ _tag: "Stream", from: cp.lsn, committedAt: cp.committedAt })
    expect(gapOf(facts({ slot: slot({ confirmedFlushLsn }), checkpoint: cp }))).toBeUndefined()
  })

  it("streams when no snapshot state was recorded but a checkpoint was (an older reader)", () => {
    expect(decideStart(facts({ snapshot: undefined }))._tag).toBe("Stream")
  })

  it("refuses a slot in use by another backend, whatever else holds", () => {
    const expected = { _tag: "Refuse", reason: "slot 'totes_slot' is in use by backend pid 4242" }
    expect(decideStart(facts({ slot: slot({ activePid: 4242 }) }))).toEqual(expected)
    // Even with --resnapshot and a gap: the other reader must stop first.
    expect(decideStart(facts({ slot: slot({ activePid: 4242, confirmedFlushLsn: "9/0" }), resnapshot: true }))).toEqual(expected)
  })

  it("refuses a slot of another output plugin", () => {
    expect(decideStart(facts({ slot: slot({ plugin: "wal2json" }) }))).toEqual({ _tag: "Refuse", reason: "slot 'totes_slot' uses plugin wal2json, not pgoutput" })
    expect(decideStart(facts({ slot: slot({ plugin: "test_decoding" }), resnapshot: true }))._tag).toBe("Refuse")
  })

  describe("gaps are refused, and --resnapshot starts over", () => {
    it("a slot moved past checkpoint + 1", () => {
      const moved = facts({ slot: slot({ confirmedFlushLsn: "0/16B374A" }) })
      const gap = "replication slot 'totes_slot' was moved past the reader's checkpoint (slot confirmed 0/16B374A, checkpoint 0/16B3748): changes in between were never published"
      expect(gapOf(moved)).toBe(gap)
      expect(decideStart(moved)).toEqual({ _tag: "Refuse", reason: `${gap}. ${ADVICE}` })
      expect(decideStart({ ...moved, resnapshot: true })).toEqual({
        _tag: "Snapshot",
        dropExisting: true,
        reason: `--resnapshot: ${gap}; starting over with a new slot and initial snapshot`
      })
    })

    it("a slot moved across the 32-bit boundary (checkpoint 0/FFFFFFFF, slot 1/1)", () => {
      expect(gapOf(facts({ slot: slot({ confirmedFlushLsn: "1/1" }), checkpoint: checkpoint({ lsn: "0/FFFFFFFF" }) }))).toMatch(/was moved past/)
      // Zero-padded text compares by value.
      expect(gapOf(facts({ slot: slot({ confirmedFlushLsn: "00000000/016B3749" }) }))).toBeUndefined()
      expect(gapOf(facts({ slot: slot({ confirmedFlushLsn: "00000000/016B374A" }) }))).toMatch(/was moved past/)
    })

    it("a missing slot while a checkpoint says changes were captured", () => {
      const missing = facts({ slot: undefined })
      const gap =
        "replication slot 'totes_slot' is missing but the checkpoint says changes up to 0/16B3748 were captured: the slot was dropped or the server replaced, and changes after that position may be lost"
      expect(gapOf(missing)).toBe(gap)
      expect(decideStart(missing)).toEqual({ _tag: "Refuse", reason: `${gap}. ${ADVICE}` })
      // Nothing to drop.
      expect(decideStart({ ...missing, resnapshot: true })).toEqual({ _tag: "Snapshot", dropExisting: false, reason: `--resnapshot: ${gap}; starting over with a new slot and initial snapshot` })
    })

    it("a checkpoint from another database server (checked before the slot)", () => {
      const other = facts({ checkpoint: checkpoint({ systemId: "7000000000000000001" }) })
      const gap = `the checkpoint for slot 'totes_slot' belongs to another database server (system id 7000000000000000001, this one is ${SYSTEM_ID}); refusing to mix histories`
      expect(gapOf(other)).toBe(gap)
      expect(gapOf({ ...other, slot: undefined })).toBe(gap)
      expect(decideStart(other)).toEqual({ _tag: "Refuse", reason: `${gap}. ${ADVICE}` })
      expect(decideStart({ ...other, resnapshot: true })).toEqual({ _tag: "Snapshot", dropExisting: true, reason: `--resnapshot: ${gap}; starting over with a new slot and initial snapshot` })
      expect(decideStart({ ...other, slot: undefined, resnapshot: true })).toMatchObject({ _tag: "Snapshot", dropExisting: false })
    })
  })

  describe("a slot the server invalidated is refused with its cause and the repair", () => {
    const INVALIDATED_ADVICE =
      "Refusing to run: the server no longer streams from this slot. Repair: restart the reader with --resnapshot (it drops the slot, creates a new one and publishes a new initial snapshot), then rebuild the warehouse from that snapshot (a fresh warehouse, or totes replay --from the new snapshot's time) or repair the tables online with totes resnapshot --tables <tables>: rows deleted while the slot was lost were never captured and linger otherwise; totes verify shows what differs. Against a repeat: keep the reader running, act on the slot-wal-headroom and retained-wal alarms, or raise max_slot_wal_keep_size / idle_replication_slot_timeout."

    it.each([
      [
        "idle_timeout",
        "was invalidated by the server (idle_timeout): it was unused for longer than idle_replication_slot_timeout while the reader was down"
      ],
      [
        "wal_removed",
        "was invalidated by the server (wal_removed): it needed WAL beyond max_slot_wal_keep_size, and the server removed that WAL while the reader was down or behind"
      ],
      [
        "rows_removed",
        "was invalidated by the server (rows_removed): catalog rows it needed were vacuumed away (on a standby: the primary removed them; a physical slot with hot_standby_feedback = on prevents it)"
      ],
      ["wal_level_insufficient", "was invalidated by the server (wal_level_insufficient): wal_level on the primary was lowered below logical"],
      ["some_future_reason", "was invalidated by the server (some_future_reason)"]
    ])("%s", (reason, explanation) => {
      // The slot still shows its old positions (idle_timeout keeps restart_lsn): only the status tells.
      const lost = facts({ slot: slot({ walStatus: "lost", invalidationReason: reason, safeWalSize: null }) })
      const gap = `replication slot 'totes_slot' ${explanation}; changes after the reader's checkpoint (0/16B3748) can no longer be read from it`
      expect(invalidationOf(lost.slot)).toBe(explanation)
      expect(gapOf(lost)).toBe(gap)
      expect(decideStart(lost)).toEqual({ _tag: "Refuse", reason: `${gap}. ${INVALIDATED_ADVICE}` })
      expect(decideStart({ ...lost, resnapshot: true })).toEqual({
        _tag: "Snapshot",
        dropExisting: true,
        reason: `--resnapshot: ${gap}; starting over with a new slot and initial snapshot`
      })
    })

    it("wal_status lost without a reason (PostgreSQL 13-16) means the WAL was removed", () => {
      const lost = facts({ slot: slot({ walStatus: "lost", invalidationReason: null, failover: null, synced: null }) })
      expect(invalidationOf(lost.slot)).toBe(
        "was invalidated by the server (wal_status lost): it needed WAL beyond max_slot_wal_keep_size, and the server removed that WAL while the reader was down or behind"
      )
      expect(decideStart(lost)).toMatchObject({ _tag: "Refuse", reason: expect.stringContaining("Repair: restart the reader with --resnapshot") })
    })

    it("a reason without wal_status lost (a conflict on a standby) is an invalidation too", () => {
      expect(decideStart(facts({ slot: slot({ walStatus: "reserved", invalidationReason: "rows_removed" }) }))._tag).toBe("Refuse")
    })

    it.each(["reserved", "extended", "unreserved", null])("wal_status %s is not an invalidation: the reader streams (unreserved is warned about while running)", (walStatus) => {
      expect(invalidationOf(slot({ walStatus }))).toBeUndefined()
      expect(decideStart(facts({ slot: slot({ walStatus }) }))._tag).toBe("Stream")
    })

    it("another server's checkpoint is still reported as such, with the general advice", () => {
      const other = facts({ slot: slot({ walStatus: "lost", invalidationReason: "idle_timeout" }), checkpoint: checkpoint({ systemId: "7000000000000000001" }) })
      expect(decideStart(other)).toEqual({ _tag: "Refuse", reason: expect.stringContaining(`belongs to another database server`) })
      expect((decideStart(other) as { reason: string }).reason.endsWith(ADVICE)).toBe(true)
    })

    it("an invalidated slot in use is still refused as in use", () => {
      expect(decideStart(facts({ slot: slot({ walStatus: "lost", invalidationReason: "wal_removed", activePid: 77 }) }))).toEqual({ _tag: "Refuse", reason: "slot 'totes_slot' is in use by backend pid 77" })
    })

    it("without a checkpoint nothing was streamed from it: recreated with a fresh snapshot, with the cause", () => {
      const reason =
        "slot 'totes_slot' was invalidated by the server (idle_timeout): it was unused for longer than idle_replication_slot_timeout while the reader was down before anything was streamed from it: recreating it with a fresh snapshot"
      for (const state of [undefined, snapshot(false)])
        expect(decideStart(facts({ slot: slot({ walStatus: "lost", invalidationReason: "idle_timeout" }), checkpoint: undefined, snapshot: state }))).toEqual({
          _tag: "Snapshot",
          dropExisting: true,
          reason
        })
    })
  })

  describe("without a checkpoint", () => {
    it("no slot, no checkpoint: a fresh snapshot (nothing to drop, nothing to say)", () => {
      expect(decideStart(facts({ slot: undefined, checkpoint: undefined, snapshot: undefined }))).toEqual({ _tag: "Snapshot", dropExisting: false, reason: undefined })
      expect(gapOf(facts({ slot: undefined, checkpoint: undefined }))).toBeUndefined()
      // --resnapshot changes nothing here.
      expect(decideStart(facts({ slot: undefined, checkpoint: undefined, snapshot: undefined, resnapshot: true }))).toEqual({ _tag: "Snapshot", dropExisting: false, reason: undefined })
    })

    it("no slot but snapshot progress: the snapshot cannot resume without its slot, so it starts again", () => {
      expect(decideStart(facts({ slot: undefined, checkpoint: undefined, snapshot: snapshot(false) }))).toEqual({ _tag: "Snapshot", dropExisting: false, reason: undefined })
    })

    it("a slot with neither checkpoint nor snapshot progress: recreated with a fresh snapshot", () => {
      expect(decideStart(facts({ checkpoint: undefined, snapshot: undefined }))).toEqual({
        _tag: "Snapshot",
        dropExisting: true,
        reason: "slot 'totes_slot' has no checkpoint: recreating it with a fresh snapshot"
      })
    })

    it("a slot with an unfinished snapshot: resume it", () => {
      const state = snapshot(false)
      expect(decideStart(facts({ checkpoint: undefined, snapshot: state }))).toEqual({ _tag: "ResumeSnapshot", state })
    })

    it("a slot with a finished snapshot but no checkpoint: refuse", () => {
      expect(decideStart(facts({ checkpoint: undefined, snapshot: snapshot(true) }))).toEqual({
        _tag: "Refuse",
        reason: "slot 'totes_slot' exists but no checkpoint was recorded after its snapshot"
      })
    })
  })

  it("an unfinished snapshot is resumed even when a checkpoint exists", () => {
    const state = snapshot(false)
    expect(decideStart(facts({ snapshot: state }))).toEqual({ _tag: "ResumeSnapshot", state })
  })

  it("--resnapshot without a gap streams as usual (it is the way out of a refused gap only)", () => {
    expect(decideStart(facts({ resnapshot: true }))).toEqual({ _tag: "Stream", from: "0/16B3748", committedAt: "2024-02-23T11:11:10.072123Z" })
  })
})
