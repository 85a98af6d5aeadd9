/**
 * One group commit: the batch format and the transaction that writes it. The main thread encodes
 * each batch (dictionary ids, checksums); the transaction is the same code on the main thread
 * (commitThread: false, close()) and on the commit thread (commit-thread.ts), so the two cannot
 * drift apart.
 */
import type Database from 'better-sqlite3';
import type { InodeRecord } from '../core/store.js';
import { rowChecksum } from './damage.js';
import type { NameRow, Names } from './names.js';

/** Changes by number: a row to write, or null to delete it. */
export type Changes = ReadonlyMap<number, InodeRecord | null>;

/** One group commit, encoded: new dictionary names, rows to write, rows to delete. */
export interface EncodedBatch {
  /** Names first used in this batch. */
  readonly names: NameRow[];
  /** ROW_WIDTH numbers per row: ino, generation, kind_id, key, incarnation, scope_id, checksum. */
  readonly upserts: number[];
  /** The state column of each upserted row, in the same order (null: none). */
  readonly states: (string | null)[];
  readonly deletes: number[];
}

const ROW_WIDTH = 7;

/** Encodes `changes`, staging new names in the dictionaries (settle them once the commit's outcome is known). */
export function encodeBatch(changes: Changes, kinds: Names, scopes: Names): EncodedBatch {
  const upserts: number[] = [];
  const states: (string | null)[] = [];
  const deletes: number[] = [];
  for (const [ino, r] of changes) {
    if (r === null) {
      deletes.push(ino);
      continue;
    }
    const kindId = kinds.stage(r.kind);
    const scopeId = scopes.stage(r.scope);
    const state = r.state ?? null;
    upserts.push(ino, r.generation, kindId, r.key, r.incarnation, scopeId, rowChecksum(ino, r.generation, kindId, r.key, r.incarnation, scopeId, state));
    states.push(state);
  }
  const names: NameRow[] = [];
  kinds.stagedRows(names);
  scopes.stagedRows(names);
  return { names, upserts, states, deletes };
}

/**
 * Prepares the commit transaction on `db`; the returned function writes one batch in one
 * immediate transaction (all of it or nothing), durable when it returns (synchronous = FULL).
 */
export function commitTransaction(db: Database.Database): (batch: EncodedBatch) => void {
  const insert = {
    kinds: db.prepare('INSERT INTO kinds (id, kind, checksum) VALUES (?, ?, ?)'),
    scopes: db.prepare('INSERT INTO scopes (id, scope, checksum) VALUES (?, ?, ?)'),
  };
  const upsert = db.prepare('INSERT OR REPLACE INTO inodes (ino, generation, kind_id, key, incarnation, scope_id, checksum, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
  const remove = db.prepare('DELETE FROM inodes WHERE ino = ?');
  const tx = db.transaction((b: EncodedBatch) => {
    for (const [table, id, name, sum] of b.names) insert[table].run(id, name, sum);
    const u = b.upserts;
    for (let i = 0; i < u.length; i += ROW_WIDTH) upsert.run(u[i], u[i + 1], u[i + 2], u[i + 3], u[i + 4], u[i + 5], u[i + 6], b.states[i / ROW_WIDTH]);
    for (const ino of b.deletes) remove.run(ino);
  });
  return (batch) => tx.immediate(batch);
}
