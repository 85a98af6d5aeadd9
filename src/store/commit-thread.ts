/**
 * The commit thread's entry module (run by CommitWorker in a worker_threads Worker, never
 * imported): its own connection to the state file, running commitTransaction() on each batch the
 * main thread sends. Completion is reported twice: a message (for the event loop) and the shared
 * status cells (so that close() can wait for an in-flight commit synchronously).
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { commitTransaction, type EncodedBatch } from './commit-transaction.js';
import { STATUS, type CommitReply, type CommitThreadData } from './commit-worker.js';

/** What the main thread sends: a batch to commit, or a command. */
type Message = { readonly type: 'die' } | { readonly type: 'close' } | { readonly type?: undefined; readonly seq: number; readonly batch: EncodedBatch };

const port = parentPort!;
const data = workerData as CommitThreadData;
const status = new Int32Array(data.status);
let db: Database.Database | undefined;
let commit: ((batch: EncodedBatch) => void) | undefined;

function open(): (batch: EncodedBatch) => void {
  db = new Database(data.file, { fileMustExist: true, timeout: data.busyTimeoutMs });
  db.pragma('synchronous = FULL');
  db.pragma('cell_size_check = ON');
  return commitTransaction(db);
}

port.on('message', (m: Message) => {
  if (m.type === 'die') process.exit(70); // tests: the thread dying between commits
  if (m.type === 'close') {
    try {
      db?.close();
    } finally {
      Atomics.store(status, STATUS.closed, 1);
      Atomics.notify(status, STATUS.closed);
      port.close();
    }
    return;
  }
  let reply: CommitReply;
  try {
    commit ??= open();
    commit(m.batch);
    reply = { seq: m.seq, ok: true };
  } catch (e) {
    const err = e as { code?: unknown; message?: unknown } | undefined;
    reply = {
      seq: m.seq,
      ok: false,
      ...(typeof err?.code === 'string' ? { code: err.code } : {}),
      message: String((err && err.message) || e),
    };
  }
  Atomics.store(status, STATUS.outcome, reply.ok ? 1 : 0);
  Atomics.store(status, STATUS.done, m.seq);
  Atomics.notify(status, STATUS.done);
  port.postMessage(reply);
});
