/**
 * Group commits: row changes queued by number and made durable together, one transaction per
 * event-loop turn, on the commit thread (commit-worker.ts) or, without one, on the main thread,
 * by the same transaction (commit-transaction.ts). It knows nothing of granted numbers or stored
 * rows; SqliteStore queues changes here and hears of each commit's outcome through CommitOutcomes.
 */
import type Database from 'better-sqlite3';
import type { Logger } from 'pino';
import type { InodeRecord } from '../core/store.js';
import { commitTransaction, encodeBatch, type EncodedBatch } from './commit-transaction.js';
import { CommitWorker, replyError, type CommitReply } from './commit-worker.js';
import { describeCause } from './damage.js';
import type { Names } from './names.js';

/** Changes by number: a row to write, or null to delete it. */
type Batch = Map<number, InodeRecord | null>;

type Deferred = { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void };

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

interface InFlight {
  readonly seq: number;
  readonly batch: Batch;
  readonly deferred: Deferred;
}

/** What the store does with each commit's outcome (counters, metrics, the failure log). */
export interface CommitOutcomes {
  /** `batch` is durable; `seconds` from the commit's start to its fsync, when it was timed. */
  committed(batch: Batch, seconds: number | undefined): void;
  /** `batch` failed and was rolled back (its changes are queued again); returns the error its waiters get. */
  failed(batch: Batch, err: unknown): Error;
}

export interface GroupCommitOptions {
  /** The state file (for the commit thread's own connection, and messages). */
  readonly file: string;
  /** The main connection: commits without a thread, and re-reading the dictionaries. */
  readonly db: Database.Database;
  readonly kinds: Names;
  readonly scopes: Names;
  readonly log: Logger;
  readonly busyTimeoutMs: number;
  /** Commit on a worker thread (falls back to the main thread if it cannot start or dies). */
  readonly commitThread: boolean;
  readonly outcomes: CommitOutcomes;
}

export class GroupCommit {
  /** Pending changes by number: a row to write, or null to delete it. */
  private readonly queue: Batch = new Map();
  /** Queued rows that change only their state (SqliteStore.putState): nothing waits for them. */
  private stateOnly = new Set<number>();
  /** The state-only rows of each batch taken for a commit. */
  private readonly batchStateOnly = new WeakMap<Batch, Set<number>>();
  /** Waiters for the commit that will carry what is queued now. */
  private next: Deferred | undefined;
  private scheduled: NodeJS.Immediate | undefined;
  /** The commit the worker is running (at most one at a time). */
  private inFlight: InFlight | undefined;
  private useWorker: boolean;
  private worker: CommitWorker | undefined;
  private seq = 0;
  /** When the commit in flight started (one commit runs at a time). */
  private commitStartedAt = 0;
  private readonly commitOnMainThread: (batch: EncodedBatch) => void;

  constructor(private readonly o: GroupCommitOptions) {
    this.useWorker = o.commitThread;
    this.commitOnMainThread = commitTransaction(o.db);
  }

  /** True while changes are queued or being committed. */
  get dirty(): boolean {
    return this.queue.size > 0 || this.inFlight !== undefined;
  }

  /**
   * Queues a row to write (`record`) or delete (null). `stateOnly`: the row changes only its state
   * (its number's row is durable or queued already), so isQueued and carrying do not count it,
   * unless a row that carries a new number is still queued for `ino`.
   */
  set(ino: number, record: InodeRecord | null, stateOnly = false): void {
    const numberPending = this.queue.has(ino) && !this.stateOnly.has(ino);
    this.queue.set(ino, record);
    if (stateOnly && !numberPending) this.stateOnly.add(ino);
    else this.stateOnly.delete(ino);
  }

  /** A change of `ino` that matters to its number waits for the next commit. */
  isQueued(ino: number): boolean {
    return this.queue.has(ino) && !this.stateOnly.has(ino);
  }

  /** The commit in flight, if it carries a change of `ino` that matters to its number. */
  carrying(ino: number): Promise<void> | undefined {
    const f = this.inFlight;
    return f !== undefined && f.batch.has(ino) && this.batchStateOnly.get(f.batch)?.has(ino) !== true ? f.deferred.promise : undefined;
  }

  /** `rows` with the changes in flight and queued applied. */
  overlay(rows: InodeRecord[]): InodeRecord[] {
    if (this.queue.size === 0 && this.inFlight === undefined) return rows;
    const byIno = new Map<number, InodeRecord>();
    for (const r of rows) byIno.set(r.ino, r);
    for (const changes of [this.inFlight?.batch, this.queue]) {
      for (const [ino, r] of changes ?? []) {
        if (r === null) byIno.delete(ino);
        else byIno.set(ino, r);
      }
    }
    return [...byIno.values()];
  }

  /** See SqliteStore.flush(). */
  flush(): Promise<void> {
    if (this.queue.size === 0) return this.inFlight ? this.inFlight.deferred.promise : Promise.resolve();
    if (!this.next) {
      this.next = deferred();
      this.schedule();
    }
    return this.next.promise;
  }

  private schedule(): void {
    if (this.scheduled === undefined && this.inFlight === undefined) this.scheduled = setImmediate(() => this.startCommit());
  }

  private startCommit(): void {
    this.scheduled = undefined;
    const d = this.next;
    this.next = undefined;
    if (!d) return;
    if (this.queue.size === 0) {
      d.resolve();
      return;
    }
    const batch = this.take();
    const encoded = this.encode(batch);
    this.commitStartedAt = performance.now();
    if (this.useWorker && !this.worker) {
      try {
        this.worker = new CommitWorker(this.o.file, this.o.busyTimeoutMs, (r) => this.onReply(r), (err) => this.onWorkerFailure(err));
      } catch (err) {
        this.useWorker = false;
        this.o.log.warn({ file: this.o.file, err: describeCause(err) }, `cannot start the commit thread (${describeCause(err)}); committing on the main thread`);
      }
    }
    if (this.worker) {
      const seq = ++this.seq;
      this.inFlight = { seq, batch, deferred: d };
      this.worker.send(seq, encoded);
      return;
    }
    try {
      this.commitOnMainThread(encoded);
    } catch (err) {
      d.reject(this.commitFailed(batch, err));
      return;
    }
    this.committed(batch);
    d.resolve();
  }

  /** Everything queued, as one batch (its state-only rows remembered with it). */
  private take(): Batch {
    const batch = new Map(this.queue);
    this.queue.clear();
    this.batchStateOnly.set(batch, this.stateOnly);
    this.stateOnly = new Set();
    return batch;
  }

  private encode(batch: Batch): EncodedBatch {
    return encodeBatch(batch, this.o.kinds, this.o.scopes);
  }

  private onReply(r: CommitReply): void {
    const f = this.inFlight;
    if (!f || f.seq !== r.seq) return;
    this.inFlight = undefined;
    if (r.ok) {
      this.committed(f.batch);
      f.deferred.resolve();
    } else {
      f.deferred.reject(this.commitFailed(f.batch, replyError(r)));
    }
    if (this.next) this.schedule();
  }

  /** The commit thread died: whatever it was doing may or may not have committed. */
  private onWorkerFailure(err: Error): void {
    this.worker = undefined;
    this.useWorker = false;
    this.o.log.error({ file: this.o.file, err: describeCause(err) }, `commit thread failed (${describeCause(err)}); committing on the main thread from now on`);
    const f = this.inFlight;
    this.inFlight = undefined;
    if (f) f.deferred.reject(this.outcomeUnknown(f.batch, err));
    if (this.next) this.schedule();
  }

  /**
   * A batch whose commit may or may not have landed: re-read the dictionaries from the database
   * (ids the batch may have created) and queue its changes again (rewriting a row is idempotent).
   */
  private outcomeUnknown(batch: Batch, err: unknown): Error {
    const { kinds, scopes, db, file, log } = this.o;
    kinds.settle(false);
    scopes.settle(false);
    try {
      kinds.load(db);
      scopes.load(db);
    } catch (loadErr) {
      log.error({ file, err: describeCause(loadErr) }, `cannot re-read the dictionaries of ${file}`);
    }
    this.requeue(batch);
    return new Error(`handlefs store: commit of ${batch.size} changes to ${file} did not complete: ${describeCause(err)}`, { cause: err });
  }

  private committed(batch: Batch): void {
    this.o.kinds.settle(true);
    this.o.scopes.settle(true);
    const seconds = this.commitStartedAt > 0 ? (performance.now() - this.commitStartedAt) / 1000 : undefined;
    this.commitStartedAt = 0;
    this.o.outcomes.committed(batch, seconds);
  }

  /** A commit failed and was rolled back: its changes go back in the queue. Returns the error to reject with. */
  private commitFailed(batch: Batch, err: unknown): Error {
    this.o.kinds.settle(false);
    this.o.scopes.settle(false);
    this.requeue(batch);
    return this.o.outcomes.failed(batch, err);
  }

  /**
   * Changes queued since the batch was taken are newer: they stay. A row of the batch that carried
   * a new number makes that number wait again, whatever state change was queued after it.
   */
  private requeue(batch: Batch): void {
    const stateOnly = this.batchStateOnly.get(batch);
    for (const [ino, r] of batch) {
      if (!this.queue.has(ino)) {
        this.queue.set(ino, r);
        if (stateOnly?.has(ino) === true) this.stateOnly.add(ino);
      } else if (stateOnly?.has(ino) !== true) {
        this.stateOnly.delete(ino);
      }
    }
  }

  /**
   * For close(): waits for the commit in flight, stops the thread, commits the rest on this
   * thread and settles every waiter. Returns the error of the last commit if it failed.
   */
  drain(): Error | undefined {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    const waiters: Deferred[] = [];
    const f = this.inFlight;
    this.inFlight = undefined;
    if (f && this.worker) {
      const ok = this.worker.waitSync(f.seq, 30_000);
      if (ok === true) {
        this.committed(f.batch);
        f.deferred.resolve();
      } else {
        if (ok === undefined) this.outcomeUnknown(f.batch, new Error('commit thread did not finish within 30 s'));
        else this.commitFailed(f.batch, new Error('commit failed on the commit thread'));
        waiters.push(f.deferred);
      }
    }
    if (this.worker) {
      if (!this.worker.close()) this.o.log.warn({ file: this.o.file }, 'the commit thread did not close its connection within 5 s');
      this.worker = undefined;
    }
    if (this.next) waiters.push(this.next);
    this.next = undefined;
    let error: Error | undefined;
    if (this.queue.size > 0) {
      const batch = this.take();
      try {
        this.commitOnMainThread(this.encode(batch));
        this.committed(batch);
      } catch (err) {
        error = this.commitFailed(batch, err);
      }
    }
    for (const d of waiters) {
      if (error === undefined) d.resolve();
      else d.reject(error);
    }
    return error;
  }
}
