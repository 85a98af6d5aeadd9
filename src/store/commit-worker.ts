/**
 * Group commits off the event loop. A commit ends in an fsync, which takes 0.1 ms on an idle SSD
 * and tens of ms on a busy disk; done on the main thread it would stall every request, repeat
 * lookups included. A worker thread with its own connection to the state file runs the commit
 * transactions instead; the main thread keeps building the next batch meanwhile.
 *
 * The worker is an inline script (no separate file for the bundler to miss). It is deliberately
 * dumb: the main thread encodes each batch (dictionary ids, checksums) and the worker runs
 * it in one transaction. Completion is reported twice: a message (for the event loop) and a
 * SharedArrayBuffer cell (so that close() can wait for an in-flight commit synchronously).
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** One group commit, encoded: new dictionary names, rows to write, rows to delete. */
export interface EncodedBatch {
  /** [table, id, name, checksum] for names first used in this batch. */
  readonly names: [table: 'kinds' | 'scopes', id: number, name: string, checksum: number][];
  /** 7 numbers per row: ino, generation, kind_id, key, incarnation, scope_id, checksum. */
  readonly upserts: number[];
  readonly deletes: number[];
}

export const INSERT_KIND = 'INSERT INTO kinds (id, kind, checksum) VALUES (?, ?, ?)';
export const INSERT_SCOPE = 'INSERT INTO scopes (id, scope, checksum) VALUES (?, ?, ?)';
export const UPSERT_ROW = 'INSERT OR REPLACE INTO inodes (ino, generation, kind_id, key, incarnation, scope_id, checksum) VALUES (?, ?, ?, ?, ?, ?, ?)';
export const DELETE_ROW = 'DELETE FROM inodes WHERE ino = ?';

const SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.sqlite);
const status = new Int32Array(workerData.status);
let db;
let tx;
function open() {
  db = new Database(workerData.file, { fileMustExist: true, timeout: workerData.busyTimeoutMs });
  db.pragma('synchronous = FULL');
  db.pragma('cell_size_check = ON');
  const insert = { kinds: db.prepare(${JSON.stringify(INSERT_KIND)}), scopes: db.prepare(${JSON.stringify(INSERT_SCOPE)}) };
  const upsert = db.prepare(${JSON.stringify(UPSERT_ROW)});
  const remove = db.prepare(${JSON.stringify(DELETE_ROW)});
  tx = db.transaction((b) => {
    for (const [table, id, name, sum] of b.names) insert[table].run(id, name, sum);
    const u = b.upserts;
    for (let i = 0; i < u.length; i += 7) upsert.run(u[i], u[i + 1], u[i + 2], u[i + 3], u[i + 4], u[i + 5], u[i + 6]);
    for (const ino of b.deletes) remove.run(ino);
  });
}
parentPort.on('message', (m) => {
  if (m.type === 'die') process.exit(70); // tests: the thread dying between commits
  if (m.type === 'close') {
    try {
      if (db) db.close();
    } finally {
      Atomics.store(status, 2, 1);
      Atomics.notify(status, 2);
      parentPort.close();
    }
    return;
  }
  let reply;
  try {
    if (!db) open();
    tx.immediate(m.batch);
    reply = { seq: m.seq, ok: true };
  } catch (e) {
    reply = { seq: m.seq, ok: false, code: e && e.code, message: String(e && e.message || e) };
  }
  Atomics.store(status, 1, reply.ok ? 1 : 0);
  Atomics.store(status, 0, m.seq);
  Atomics.notify(status, 0);
  parentPort.postMessage(reply);
});
`;

export interface CommitReply {
  readonly seq: number;
  readonly ok: boolean;
  readonly code?: string;
  readonly message?: string;
}

/** An Error as the main thread would have seen it from better-sqlite3 (message and code). */
export function replyError(r: CommitReply): Error {
  const err = new Error(r.message ?? 'commit failed') as Error & { code?: string };
  if (r.code) err.code = r.code;
  return err;
}

export class CommitWorker {
  private readonly worker: Worker;
  /** [0] last finished commit, [1] its outcome (1 ok), [2] 1 once the worker closed its connection. */
  private readonly status = new Int32Array(new SharedArrayBuffer(12));
  private closed = false;

  constructor(
    file: string,
    busyTimeoutMs: number,
    onReply: (reply: CommitReply) => void,
    onFailure: (err: Error) => void,
  ) {
    const sqlite = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(SOURCE, { eval: true, workerData: { sqlite, file, busyTimeoutMs, status: this.status.buffer } });
    this.worker.on('message', (r: CommitReply) => {
      this.worker.unref();
      if (!this.closed) onReply(r);
    });
    this.worker.on('error', (err) => {
      if (!this.closed) onFailure(err);
    });
    this.worker.on('exit', (code) => {
      if (!this.closed) onFailure(new Error(`commit worker exited (code ${code})`));
    });
    this.worker.unref(); // keeps the process alive only while a commit is in flight
  }

  send(seq: number, batch: EncodedBatch): void {
    this.worker.ref();
    this.worker.postMessage({ seq, batch });
  }

  /**
   * Blocks until the commit numbered `seq` has finished (or `timeoutMs` passed). Returns its
   * outcome, or undefined on timeout.
   */
  waitSync(seq: number, timeoutMs: number): boolean | undefined {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const done = Atomics.load(this.status, 0);
      if (done >= seq) return Atomics.load(this.status, 1) === 1;
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      Atomics.wait(this.status, 0, done, left);
    }
  }

  /**
   * Stops delivering replies and has the worker close its connection, waiting (up to
   * `timeoutMs`) until it has, so that no connection of this store outlives close(). Call with
   * no commit in flight (waitSync first).
   */
  close(timeoutMs = 5000): boolean {
    if (this.closed) return true;
    this.closed = true;
    this.worker.postMessage({ type: 'close' });
    const deadline = Date.now() + timeoutMs;
    while (Atomics.load(this.status, 2) !== 1) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      Atomics.wait(this.status, 2, 0, left);
    }
    this.worker.unref();
    return true;
  }
}
