/**
 * The FUSE layer's spec harness: a real FuseSession over the kit's MemoryChannel; tests push
 * request buffers in and read the session's replies and notifications back out.
 */
import pino, { type Logger } from 'pino';
import {
  FuseSession,
  type SessionOptions,
  InitFlags,
  Opcode,
  type LowLevelFileSystem,
} from '../../../src/fuse/index.js';
import { KERNEL_FLAGS2_745, KERNEL_FLAGS_745, encodeRequest, requestBody } from '../../../src/testing/kernel-codec.js';
import { MemoryChannel } from '../../../src/testing/memory-channel.js';

export { KERNEL_FLAGS2_745, KERNEL_FLAGS_745, MemoryChannel };

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
  ch: MemoryChannel;
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
  const ch = new MemoryChannel();
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
