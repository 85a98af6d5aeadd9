/**
 * Answers requests: encodes each reply into the one reply buffer and writes it to the channel (one
 * write per reply, writev for large data), and hands back to the filesystem every reference a
 * reply carried but could not deliver (entries, READDIRPLUS entries, opened handles).
 */
import type { Logger } from 'pino';
import { Errno, FUSE_KERNEL_MINOR_VERSION, OutHeader, errnoName, opcodeName } from './abi.js';
import {
  encodeAttrOut,
  encodeDirent,
  encodeEntryOut,
  encodeErrorReply,
  encodeGetxattrOut,
  encodeOpenOut,
  encodeOutHeader,
  encodePollOut,
  encodeStatfsOut,
} from './codec.js';
import type { FuseChannel } from './device.js';
import { isThenable, type Ctx } from './request-context.js';
import type { AttrReply, DirEntry, Entry, LowLevelFileSystem, OpenReply, StatfsReply } from './types.js';

/** Writes the reply of a request, given what the handler returned (the opcode table's reply column). */
export type ReplyFn<R> = (w: Replies, ctx: Ctx, value: R) => void;

/** Counters of the writing side (part of the session's stats). */
export interface ReplyStats {
  replies: number;
  /** Replies whose write failed (ENOENT: interrupted; ENODEV: connection gone). */
  failedReplies: number;
  /** References handed back with forget(nodeId, 1) because their reply was not delivered. */
  givenBack: number;
  forgets: number;
}

const describeEntry = (e: Entry): string => `OK {n${e.nodeId} g${e.generation}}`;
const describeAttr = (r: AttrReply): string => `OK {i${r.attr.ino} m${r.attr.mode.toString(8)} s${r.attr.size}}`;
const describeBytes = (b: Buffer): string => `OK ${b.length} bytes`;
const describeOk = (): string => 'OK';

function isDot(name: string): boolean {
  return name === '.' || name === '..';
}

const EMPTY = Buffer.alloc(0);
/** Replies up to this size are copied into the reply buffer; larger data is written with writev. */
const COPY_LIMIT = 64 * 1024;
/** The reply buffer: the largest READDIR reply a request may ask for, and its header. */
export const OUT_BUFFER_SIZE = 256 * 1024 + 4096;

export class Replies {
  readonly out = Buffer.alloc(OUT_BUFFER_SIZE);
  /** The negotiated protocol minor: the size of entry, attr and statfs replies. */
  minor = FUSE_KERNEL_MINOR_VERSION;
  /** Debug logging on (read once per request by the session). */
  dbg = false;

  constructor(
    private readonly fs: LowLevelFileSystem,
    private readonly channel: FuseChannel,
    private readonly logger: Logger,
    private readonly stats: ReplyStats,
    /** True once the session ended: replies are dropped. */
    private readonly ended: () => boolean,
  ) {}

  /** Encoding failed because the layer above returned something that cannot be sent. */
  badReply(ctx: Ctx, err: unknown): void {
    this.logger.error({ err, op: opcodeName(ctx.opcode), unique: ctx.unique, nodeId: ctx.nodeId }, 'FUSE handler returned an invalid reply; answering EIO');
    this.sendError(ctx.unique, Errno.EIO);
  }

  /**
   * Writes out[0, 16 + bodyLen) as the reply to `unique`. Returns whether it was delivered.
   * `describe(arg)` makes the debug line; it is only called when debug logging is on.
   */
  send<T>(unique: number, bodyLen: number, describe: (arg: T) => string, arg: T): boolean {
    const len = OutHeader.SIZE + bodyLen;
    encodeOutHeader(this.out, 0, len, 0, unique);
    return this.write(unique, this.out, len, undefined, describe, arg);
  }

  sendError(unique: number, errno: number): boolean {
    encodeErrorReply(this.out, 0, unique, errno);
    return this.write(unique, this.out, OutHeader.SIZE, undefined, errnoName, errno);
  }

  /** Header in out[0,16) + `data` (copied when small, else written with writev). */
  sendData(unique: number, data: Buffer, describe: (arg: Buffer) => string): boolean {
    const len = OutHeader.SIZE + data.length;
    encodeOutHeader(this.out, 0, len, 0, unique);
    if (data.length <= COPY_LIMIT) {
      data.copy(this.out, OutHeader.SIZE);
      return this.write(unique, this.out, len, undefined, describe, data);
    }
    return this.write(unique, this.out, OutHeader.SIZE, data, describe, data);
  }

  private write<T>(unique: number, buf: Buffer, len: number, tail: Buffer | undefined, describe: (arg: T) => string, arg: T): boolean {
    if (this.ended() || this.channel.closed) {
      this.stats.failedReplies++;
      if (this.dbg) this.logger.debug(`tx ${unique}: dropped (session ended)`);
      return false;
    }
    try {
      if (tail === undefined) this.channel.write(buf, len);
      else this.channel.writev([buf.subarray(0, len), tail]);
    } catch (err) {
      this.stats.failedReplies++;
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        if (this.dbg) this.logger.debug(`tx ${unique}: not delivered (ENOENT: request was interrupted)`);
      } else if (code === 'ENODEV' || code === 'ECONNABORTED') {
        if (this.dbg) this.logger.debug(`tx ${unique}: not delivered (${code}: connection gone)`);
      } else {
        this.logger.error({ err, unique }, 'writing a FUSE reply failed');
      }
      return false;
    }
    this.stats.replies++;
    if (this.dbg) this.logger.debug(`tx ${unique}: ${describe(arg)}`);
    return true;
  }

  /** Hands back one kernel reference the layer above counted but the kernel never received. */
  giveBack(nodeId: number): void {
    this.stats.givenBack++;
    if (this.dbg) this.logger.debug(`give back n${nodeId} x1 (reply not delivered)`);
    this.forget(nodeId, 1);
  }

  /** References go back to the filesystem: the kernel's FORGET, or a reply that could not deliver them. */
  forget(nodeId: number, nlookup: number): void {
    this.stats.forgets++;
    try {
      this.fs.forget(nodeId, nlookup);
    } catch (err) {
      this.logger.error({ err, nodeId, nlookup }, 'forget() threw');
    }
  }

  // -------------------------------------------------------------------------------------------
  // Replies
  // -------------------------------------------------------------------------------------------

  entry(ctx: Ctx, e: Entry): void {
    const positive = e !== null && typeof e === 'object' && e.nodeId > 0;
    let n: number;
    try {
      n = encodeEntryOut(this.out, OutHeader.SIZE, e, this.minor);
    } catch (err) {
      this.badReply(ctx, err);
      if (positive) this.giveBack(e.nodeId);
      return;
    }
    const ok = this.send(ctx.unique, n, describeEntry, e);
    if (!ok && positive) this.giveBack(e.nodeId);
  }

  attr(ctx: Ctx, r: AttrReply): void {
    let n: number;
    try {
      n = encodeAttrOut(this.out, OutHeader.SIZE, r.attr, r.attrTimeout, this.minor);
    } catch (err) {
      return this.badReply(ctx, err);
    }
    this.send(ctx.unique, n, describeAttr, r);
  }

  readlink(ctx: Ctx, target: string | Buffer): void {
    let data: Buffer;
    if (typeof target === 'string') data = Buffer.from(target, 'utf8');
    else if (Buffer.isBuffer(target)) data = target;
    else return this.badReply(ctx, new TypeError('readlink must return a string or Buffer'));
    this.sendData(ctx.unique, data, (d) => `OK ${JSON.stringify(d.toString('utf8'))}`);
  }

  open(ctx: Ctx, r: OpenReply, dir: boolean): void {
    let n: number;
    try {
      n = encodeOpenOut(this.out, OutHeader.SIZE, r);
    } catch (err) {
      return this.badReply(ctx, err);
    }
    const ok = this.send(ctx.unique, n, (o: OpenReply) => `OK {fh${o.fh}${o.directIo ? ' direct' : ''}${o.keepCache ? ' keep' : ''}}`, r);
    if (!ok) {
      // The opener is gone: nobody will ever RELEASE this handle; do it ourselves (as libfuse does).
      try {
        const p = dir ? this.fs.releasedir?.(ctx, ctx.nodeId, r.fh) : this.fs.release?.(ctx, ctx.nodeId, r.fh, ctx.flags);
        if (isThenable(p)) p.then(undefined, (err: unknown) => this.logger.error({ err }, 'release after failed open reply'));
      } catch (err) {
        this.logger.error({ err }, 'release after failed open reply');
      }
    }
  }

  read(ctx: Ctx, data: unknown): void {
    if (!(data instanceof Uint8Array)) return this.badReply(ctx, new TypeError('read must return a Buffer'));
    let b = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    if (b.length > ctx.size) b = b.subarray(0, ctx.size);
    this.sendData(ctx.unique, b, describeBytes);
  }

  readdir(ctx: Ctx, entries: DirEntry[]): void {
    if (!Array.isArray(entries)) return this.badReply(ctx, new TypeError('readdir must return an array'));
    const plus = ctx.plus;
    const limit = OutHeader.SIZE + ctx.size;
    let off: number = OutHeader.SIZE;
    let sent = 0;
    try {
      for (; sent < entries.length; sent++) {
        const next = encodeDirent(this.out, off, limit, entries[sent]!, plus, this.minor);
        if (next < 0) break;
        off = next;
      }
    } catch (err) {
      // Nothing was sent: every reference in the list goes back.
      this.badReply(ctx, err);
      if (plus) this.giveBackEntries(entries, 0, entries.length);
      return;
    }
    if (sent === 0 && entries.length > 0) {
      this.badReply(ctx, new RangeError(`first dirent does not fit in ${ctx.size} bytes`));
      if (plus) this.giveBackEntries(entries, 0, entries.length);
      return;
    }
    if (plus) this.giveBackEntries(entries, sent, entries.length); // did not fit
    const ok = this.send(ctx.unique, off - OutHeader.SIZE, (x: number[]) => `OK ${x[0]} entries${x[0]! < x[1]! ? ` (${x[1]! - x[0]!} did not fit)` : ''}`, [sent, entries.length]);
    if (!ok && plus) this.giveBackEntries(entries, 0, sent);
  }

  private giveBackEntries(entries: DirEntry[], from: number, to: number): void {
    for (let i = from; i < to; i++) {
      const d = entries[i];
      const e = d?.entry;
      if (e && e.nodeId > 0 && !isDot(d.name)) this.giveBack(e.nodeId);
    }
  }

  empty(ctx: Ctx): void {
    this.send(ctx.unique, 0, describeOk, undefined);
  }

  statfs(ctx: Ctx, s: StatfsReply): void {
    let n: number;
    try {
      n = encodeStatfsOut(this.out, OutHeader.SIZE, s, this.minor);
    } catch (err) {
      return this.badReply(ctx, err);
    }
    this.send(ctx.unique, n, (x: StatfsReply) => `OK {blocks${x.blocks} files${x.files} namelen${x.namelen}}`, s);
  }

  private sized(ctx: Ctx, data: Buffer): void {
    if (ctx.size === 0) {
      encodeGetxattrOut(this.out, OutHeader.SIZE, data.length);
      this.send(ctx.unique, 8, (x: number) => `OK {size ${x}}`, data.length);
    } else if (data.length > ctx.size) {
      this.sendError(ctx.unique, Errno.ERANGE);
    } else {
      this.sendData(ctx.unique, data, describeBytes);
    }
  }

  getxattr(ctx: Ctx, value: Buffer): void {
    if (!(value instanceof Uint8Array)) return this.badReply(ctx, new TypeError('getxattr must return a Buffer'));
    this.sized(ctx, Buffer.isBuffer(value) ? value : Buffer.from(value));
  }

  listxattr(ctx: Ctx, names: string[]): void {
    if (!Array.isArray(names)) return this.badReply(ctx, new TypeError('listxattr must return an array'));
    this.sized(ctx, names.length === 0 ? EMPTY : Buffer.from(names.map((n) => `${n}\0`).join(''), 'utf8'));
  }

  poll(ctx: Ctx, revents: number): void {
    const n = encodePollOut(this.out, OutHeader.SIZE, typeof revents === 'number' ? revents : 0);
    this.send(ctx.unique, n, (x: number) => `OK {revents 0x${x.toString(16)}}`, revents);
  }
}
