/**
 * Writes FUSE notifications from one dedicated thread that nothing else waits on.
 *
 * The kernel may block a notification write for as long as it likes: INVAL_ENTRY takes the
 * directory's inode lock, which every LOOKUP in flight in that directory holds until its reply
 * arrives. Written from libuv's thread pool (fs.write), a few such writes occupy every pool
 * thread, the lookups holding the lock wait for the same pool to read /proc, and the mount hangs
 * for good with its clients in D state. Here a worker thread of its own does blocking
 * write(2)s, one at a time and in order; the event loop and the pool stay free to answer the
 * lookups, so the lock is released and the write goes through.
 *
 * The thread is an inline script (no separate file for the bundler to miss), started with the
 * channel (starting it takes tens of milliseconds, which the first exit invalidation must not
 * pay) and unref'd so it never keeps the process alive.
 */
import { Worker } from 'node:worker_threads';
import { errnoError } from './device-readers.js';

const SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { writeSync } = require('node:fs');
parentPort.on('message', (m) => {
  let code = null;
  try {
    writeSync(workerData.fd, m.buf, 0, m.buf.length);
  } catch (err) {
    code = (err && err.code) || 'EIO';
  }
  parentPort.postMessage({ id: m.id, code });
});
`;

interface Pending {
  resolve: () => void;
  reject: (err: Error) => void;
}

export class NotifyWriter {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private stopped = false;

  constructor(private readonly fd: number) {}

  /** Number of notifications handed to the thread and not yet written. */
  get queued(): number {
    return this.pending.size;
  }

  /** Starts the thread ahead of the first notification. */
  warm(): void {
    if (!this.stopped) this.start();
  }

  /** Resolves once the kernel took `buf`; rejects with an errno error (code ENOENT, ENODEV, ...). */
  write(buf: Buffer): Promise<void> {
    if (this.stopped) return Promise.reject(errnoError('ENODEV', 'write'));
    const worker = this.start();
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ id, buf });
    });
  }

  /**
   * Stops taking notifications and fails the queued ones with ENODEV. A write the kernel is
   * still blocking ends when the connection ends (the device closed or the connection aborted);
   * the thread is unref'd, so it never holds the process open.
   */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    const worker = this.worker;
    this.worker = undefined;
    for (const p of this.pending.values()) p.reject(errnoError('ENODEV', 'write'));
    this.pending.clear();
    if (worker) void worker.terminate();
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    // Plain JavaScript: none of the parent's loaders (a test runner's TypeScript hooks) are needed.
    const worker = new Worker(SOURCE, { eval: true, workerData: { fd: this.fd }, execArgv: [] });
    worker.unref();
    worker.on('message', (m: { id: number; code: string | null }) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.code === null) p.resolve();
      else p.reject(errnoError(m.code, 'write'));
    });
    worker.on('error', (err) => this.fail(err));
    worker.on('exit', () => {
      if (this.worker === worker) this.worker = undefined;
      this.fail(errnoError('ENODEV', 'write'));
    });
    this.worker = worker;
    return worker;
  }

  private fail(err: Error): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }
}
