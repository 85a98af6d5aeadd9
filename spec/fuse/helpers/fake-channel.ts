/**
 * A FuseChannel that plays the kernel's part in memory: tests push request buffers in and read the
 * session's replies and notifications back out. Requests are copied into one reused buffer that is
 * scribbled over after each delivery, so a session that keeps references into the read buffer
 * fails its tests.
 */
import pino, { type Logger } from 'pino';
import type { ChannelSink, FuseChannel } from '../../../src/fuse/device.js';
import {
  FuseSession,
  type SessionOptions,
  InitFlags,
  InitFlags2,
  Opcode,
  type LowLevelFileSystem,
} from '../../../src/fuse/index.js';
import { decodeOutHeader, encodeRequest, requestBody, type OutHeaderFields } from '../../../src/testing/kernel-codec.js';

function errnoError(code: string): NodeJS.ErrnoException {
  const e: NodeJS.ErrnoException = new Error(`write /dev/fuse: ${code}`);
  e.code = code;
  return e;
}

export class FakeChannel implements FuseChannel {
  readonly bufferSize = 1024 * 1024 + 4096;
  readonly replies: Buffer[] = [];
  readonly notifications: Buffer[] = [];
  /** Everything written, in order, replies and notifications alike. */
  readonly log: Array<{ kind: 'reply' | 'notify'; buf: Buffer }> = [];
  /** Return an errno code to make the write of this reply fail. */
  failWrite: ((reply: Buffer) => string | undefined) | undefined;
  /** Result of notification writes (errno code to fail with). */
  notifyError: string | undefined;
  writes = 0;
  private sink: ChannelSink | undefined;
  private isClosed = false;
  private readonly rbuf = Buffer.alloc(this.bufferSize);

  get closed(): boolean {
    return this.isClosed;
  }

  get started(): boolean {
    return this.sink !== undefined;
  }

  start(sink: ChannelSink): void {
    this.sink = sink;
  }

  /** Deliver one read's worth of bytes (one request, or several concatenated, or garbage). */
  push(bytes: Buffer): void {
    if (!this.sink) throw new Error('channel not started');
    bytes.copy(this.rbuf, 0);
    this.sink.onData(this.rbuf, bytes.length);
    this.rbuf.fill(0xa5, 0, Math.max(bytes.length, 64));
  }

  write(buf: Buffer, len: number): void {
    this.writes++;
    const copy = Buffer.from(buf.subarray(0, len));
    const code = this.failWrite?.(copy);
    if (code) throw errnoError(code);
    this.replies.push(copy);
    this.log.push({ kind: 'reply', buf: copy });
  }

  writev(bufs: Buffer[]): void {
    const all = Buffer.concat(bufs);
    this.write(all, all.length);
  }

  async writeNotify(buf: Buffer): Promise<void> {
    await Promise.resolve();
    if (this.notifyError) throw errnoError(this.notifyError);
    const copy = Buffer.from(buf);
    this.notifications.push(copy);
    this.log.push({ kind: 'notify', buf: copy });
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

  /** The reply to `unique`, decoded header + body. */
  reply(unique: number): { h: OutHeaderFields; body: Buffer } | undefined {
    for (const r of this.replies) {
      const h = decodeOutHeader(r);
      if (h.unique === unique) return { h, body: r.subarray(16) };
    }
    return undefined;
  }
}

/** Kernel flags a 6.18 kernel (7.45) offers in INIT. */
/** What a 6.18 kernel offers: bits 0..30 except FILE_OPS, MAP_ALIGNMENT and SUBMOUNTS. */
export const KERNEL_FLAGS_745 = (0x7fffffff & ~(InitFlags.FILE_OPS | InitFlags.MAP_ALIGNMENT | InitFlags.SUBMOUNTS)) >>> 0;
export const KERNEL_FLAGS2_745 =
  InitFlags2.SECURITY_CTX |
  InitFlags2.CREATE_SUPP_GROUP |
  InitFlags2.HAS_EXPIRE_ONLY |
  InitFlags2.DIRECT_IO_ALLOW_MMAP |
  InitFlags2.PASSTHROUGH |
  InitFlags2.NO_EXPORT_SUPPORT |
  InitFlags2.HAS_RESEND |
  InitFlags2.ALLOW_IDMAP |
  InitFlags2.REQUEST_TIMEOUT;

export interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

export function captureLogger(level: pino.LevelWithSilent = 'info'): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino({ level }, {
    write(s: string) {
      for (const l of s.split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l) as LogLine);
    },
  });
  return { logger, lines };
}

export interface Harness {
  ch: FakeChannel;
  session: FuseSession;
  lines: LogLine[];
  logger: Logger;
  /** Next even unique (the kernel's numbering). */
  next(): number;
  /** Send a request; returns its unique. */
  send(opcode: number, nodeId: number, body?: Buffer, unique?: number): number;
  init(opts?: { minor?: number; flags?: number; flags2?: number; major?: number }): number;
  ran: Promise<void>;
}

export function harness(fs: LowLevelFileSystem, options: SessionOptions = {}, level: pino.LevelWithSilent = 'info'): Harness {
  const ch = new FakeChannel();
  const { logger, lines } = captureLogger(level);
  const session = new FuseSession(fs, ch, logger, options);
  let u = 0;
  const h: Harness = {
    ch,
    session,
    lines,
    logger,
    next: () => (u += 2),
    send(opcode, nodeId, body = Buffer.alloc(0), unique) {
      const q = unique ?? h.next();
      ch.push(encodeRequest({ opcode, unique: q, nodeId, uid: 1000, gid: 1000, pid: 4242 }, body));
      return q;
    },
    init(o = {}) {
      return h.send(
        Opcode.INIT,
        0,
        requestBody.init({
          major: o.major ?? 7,
          minor: o.minor ?? 45,
          flags: o.flags ?? KERNEL_FLAGS_745,
          flags2: o.flags2 ?? KERNEL_FLAGS2_745,
        }),
      );
    },
    ran: undefined as unknown as Promise<void>,
  };
  h.ran = session.run();
  h.ran.catch(() => undefined);
  return h;
}

export { InitFlags };
