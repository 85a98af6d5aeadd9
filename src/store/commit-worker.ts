/**
 * Group commits off the event loop. A commit ends in an fsync, which takes 0.1 ms on an idle SSD
 * and tens of ms on a busy disk; done on the main thread it would stall every request, repeat
 * lookups included. A worker thread with its own connection to the state file (commit-thread.ts)
 * runs the commit transactions instead; the main thread keeps building the next batch meanwhile.
 *
 * The thread is deliberately dumb: the main thread encodes each batch (commit-transaction.ts) and
 * the thread runs it in the same transaction the main thread would. Completion is reported twice:
 * a message (for the event loop) and a SharedArrayBuffer cell (so that close() can wait for an
 * in-flight commit synchronously).
 */
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { EncodedBatch } from './commit-transaction.js';

/** Cells of the shared status array. */
export const STATUS = {
  /** The seq of the last finished commit. */
  done: 0,
  /** Its outcome: 1 committed, 0 failed. */
  outcome: 1,
  /** 1 once the thread closed its connection. */
  closed: 2,
} as const;

/** The thread's workerData. */
export interface CommitThreadData {
  readonly file: string;
  readonly busyTimeoutMs: number;
  /** SharedArrayBuffer of the STATUS cells. */
  readonly status: SharedArrayBuffer;
}

/**
 * Where the commit thread's module is. From source (tsx: the specs, the benchmarks) it sits next
 * to this module as commit-thread.ts. In the built package it is the tsup entry
 * dist/store/commit-thread.js, while this code runs from a chunk in dist/ or from an entry one
 * directory below it (dist/cli/, dist/testing/).
 */
export function commitThreadModule(from: string = import.meta.url): URL {
  const ext = from.endsWith('.ts') ? '.ts' : '.js';
  const candidates = [`./commit-thread${ext}`, './store/commit-thread.js', '../store/commit-thread.js'].map((c) => new URL(c, from));
  const found = candidates.find((u) => fs.existsSync(fileURLToPath(u)));
  if (!found) throw new Error(`the commit thread's module is missing (looked for ${candidates.map((u) => fileURLToPath(u)).join(', ')})`);
  return found;
}

/**
 * Starts the thread on `entry`. A TypeScript entry (running from source under tsx) registers tsx
 * in the thread first: Node 20 does not carry the parent's --import hooks into a worker.
 */
function startThread(entry: URL, workerData: CommitThreadData): Worker {
  if (!entry.pathname.endsWith('.ts')) return new Worker(entry, { workerData });
  const tsx = import.meta.resolve('tsx/esm/api');
  const load = `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}); })`;
  return new Worker(load, { eval: true, workerData });
}

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
  /** The STATUS cells, shared with the thread. */
  private readonly status = new Int32Array(new SharedArrayBuffer(4 * Object.keys(STATUS).length));
  private closed = false;

  constructor(
    file: string,
    busyTimeoutMs: number,
    onReply: (reply: CommitReply) => void,
    onFailure: (err: Error) => void,
  ) {
    const workerData: CommitThreadData = { file, busyTimeoutMs, status: this.status.buffer as SharedArrayBuffer };
    this.worker = startThread(commitThreadModule(), workerData);
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
      const done = Atomics.load(this.status, STATUS.done);
      if (done >= seq) return Atomics.load(this.status, STATUS.outcome) === 1;
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      Atomics.wait(this.status, STATUS.done, done, left);
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
    while (Atomics.load(this.status, STATUS.closed) !== 1) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      Atomics.wait(this.status, STATUS.closed, 0, left);
    }
    this.worker.unref();
    return true;
  }
}
