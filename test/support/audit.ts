/**
 * An independent record of what the source committed: a trigger on every totesys table writes
 * (xid, statement order, table, op, key) into an audit table that is not published. Tests
 * compare the stream with it.
 */
import type pg from "pg"
import { PRIMARY_KEYS, TOTESYS_TABLES } from "../../contracts/totesys.ts"

export const installAudit = async (client: pg.ClientBase) => {
  await client.query(`
    CREATE TABLE IF NOT EXISTS totes_audit (seq bigserial PRIMARY KEY, xid bigint NOT NULL DEFAULT txid_current(), tbl text NOT NULL, op text NOT NULL, key text);
    CREATE OR REPLACE FUNCTION totes_audit_row() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'TRUNCATE' THEN
        INSERT INTO totes_audit (tbl, op, key) VALUES (TG_TABLE_NAME, 't', NULL);
        RETURN NULL;
      END IF;
      INSERT INTO totes_audit (tbl, op, key) VALUES (
        TG_TABLE_NAME,
        CASE TG_OP WHEN 'INSERT' THEN 'c' WHEN 'UPDATE' THEN 'u' ELSE 'd' END,
        (to_jsonb(CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END) ->> TG_ARGV[0]));
      RETURN NULL;
    END $$;`)
  for (const table of TOTESYS_TABLES) {
    await client.query(`DROP TRIGGER IF EXISTS totes_audit ON "${table}"`)
    await client.query(`CREATE TRIGGER totes_audit AFTER INSERT OR UPDATE OR DELETE ON "${table}" FOR EACH ROW EXECUTE FUNCTION totes_audit_row('${PRIMARY_KEYS[table]}')`)
    await client.query(`DROP TRIGGER IF EXISTS totes_audit_truncate ON "${table}"`)
    await client.query(`CREATE TRIGGER totes_audit_truncate AFTER TRUNCATE ON "${table}" FOR EACH STATEMENT EXECUTE FUNCTION totes_audit_row('${PRIMARY_KEYS[table]}')`)
  }
}

export interface AuditedChange {
  readonly xid: string
  readonly table: string
  readonly op: string
  readonly key: string | null
}

/** Committed changes in commit order per transaction (statement order within it). */
export const auditedChanges = async (client: pg.ClientBase, afterSeq = 0): Promise<Array<AuditedChange>> => {
  const { rows } = await client.query("SELECT xid::text, tbl, op, key FROM totes_audit WHERE seq > $1 ORDER BY seq", [afterSeq])
  return rows.map((r) => ({ xid: String(Number(r.xid) % 2 ** 32), table: r.tbl, op: r.op, key: r.key }))
}
