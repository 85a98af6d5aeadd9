/**
 * A FuseChannel in memory: /dev/fuse without a kernel. Whoever plays the kernel pushes request
 * bytes in and gets the session's replies and notifications back, as the consumer kit's FakeKernel
 * does and the FUSE layer's specs do.
 *
 * Requests are copied into one reused read buffer that is scribbled over after each delivery, as a
 * device read buffer is reused: a session that keeps references into it fails.
 */
import type { ChannelSink, FuseChannel } from '../fuse/device.js';
import { decodeOutHeader, type OutHeaderFields } from './kernel-codec.js';

/** What the kernel's side is handed: every reply and notification the session writes, in order. */
export interface KernelEnd {
  /** A reply (out header and body). */
  reply(buf: Buffer): void;
  /** A notification (unique 0, the notify code in the error field). */
  notification(buf: Buffer): void;
}

/** What a MemoryChannel does with what the session writes. */
export interface MemoryChannelOptions {
  /** Gets each reply and notification as it is written (the kit's FakeKernel). */
  kernel?: KernelEnd;
  /** Keep every write in `replies`, `notifications` and `log` (for specs that read them back). Default true. */
  record?: boolean;
}

function errnoError(code: string): NodeJS.ErrnoException {
  const e: NodeJS.ErrnoException = new Error(`write /dev/fuse: ${code}`);
  e.code = code;
  return e;
}

/** /dev/fuse in memory: push() is the kernel queueing a request, the session's writes go to the KernelEnd. */
export class MemoryChannel implements FuseChannel {
  /** Room for the largest request (max_write of 1 MiB and its header). */
  readonly bufferSize = 1024 * 1024 + 4096;
  /** The replies written, when recording. */
  readonly replies: Buffer[] = [];
  /** The notifications written, when recording. */
  readonly notifications: Buffer[] = [];
  /** Everything written, in order, replies and notifications alike. */
  readonly log: Array<{ kind: 'reply' | 'notify'; buf: Buffer }> = [];
  /** Return an errno code to make the write of this reply fail. */
  failWrite: ((reply: Buffer) => string | undefined) | undefined;
  /** Result of notification writes (errno code to fail with). */
  notifyError: string | undefined;
  /** Replies written (or attempted). */
  writes = 0;
  private sink: ChannelSink | undefined;
  private isClosed = false;
  private readonly rbuf = Buffer.alloc(this.bufferSize);
  private readonly kernel: KernelEnd | undefined;
  private readonly record: boolean;
  /** Requests pushed while one is being delivered (a handler that makes the kernel ask again). */
  private readonly queued: Buffer[] = [];
  private delivering = false;

  constructor(options: MemoryChannelOptions = {}) {
    this.kernel = options.kernel;
    this.record = options.record ?? true;
  }

  /** True once closed by the session or ended by the kernel's side. */
  get closed(): boolean {
    return this.isClosed;
  }

  /** True once the session started reading. */
  get started(): boolean {
    return this.sink !== undefined;
  }

  start(sink: ChannelSink): void {
    this.sink = sink;
  }

  /** Delivers one read's worth of bytes (one request, or several concatenated, or garbage). */
  push(bytes: Buffer): void {
    if (!this.sink) throw new Error('channel not started');
    if (this.delivering) {
      // The read buffer is in use: deliver after the current read, as the next read would.
      this.queued.push(Buffer.from(bytes));
      return;
    }
    this.delivering = true;
    try {
      let next: Buffer | undefined = bytes;
      while (next !== undefined) {
        next.copy(this.rbuf, 0);
        this.sink.onData(this.rbuf, next.length);
        this.rbuf.fill(0xa5, 0, Math.max(next.length, 64));
        next = this.queued.shift();
      }
    } finally {
      this.delivering = false;
    }
  }

  write(buf: Buffer, len: number): void {
    this.writes++;
    const copy = Buffer.from(buf.subarray(0, len));
    const code = this.failWrite?.(copy);
    if (code) throw errnoError(code);
    if (this.record) {
      this.replies.push(copy);
      this.log.push({ kind: 'reply', buf: copy });
    }
    this.kernel?.reply(copy);
  }

  writev(bufs: Buffer[]): void {
    const all = Buffer.concat(bufs);
    this.write(all, all.length);
  }

  async writeNotify(buf: Buffer): Promise<void> {
    await Promise.resolve();
    if (this.notifyError) throw errnoError(this.notifyError);
    const copy = Buffer.from(buf);
    if (this.record) {
      this.notifications.push(copy);
      this.log.push({ kind: 'notify', buf: copy });
    }
    this.kernel?.notification(copy);
  }

  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.sink?.onEnd();
  }

  /** The kernel side ends the connection (unmount → ENODEV). */
  end(code = 'ENODEV'): void {
    this.isClosed = true;
    this.sink?.onEnd(errnoError(code));
  }

  /** The recorded reply to `unique`, decoded header + body. */
  reply(unique: number): { h: OutHeaderFields; body: Buffer } | undefined {
    for (const r of this.replies) {
      const h = decodeOutHeader(r);
      if (h.unique === unique) return { h, body: r.subarray(16) };
    }
    return undefined;
  }
}
