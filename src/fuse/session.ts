/**
 * One FUSE connection: INIT negotiation, the read loop, dispatch to the LowLevelFileSystem,
 * replies, INTERRUPT, FORGET/BATCH_FORGET, notifications, DESTROY and shutdown.
 *
 * Threading model: everything runs on the event loop. Requests arrive synchronously from the
 * channel (one read = one request); a handler that returns a plain value is answered before the
 * next request is looked at (no microtask, no allocation beyond the request's own objects); one
 * that returns a Promise is answered when it settles, while other requests go on. Each reply is
 * one write. Notifications are written off-loop (see device.ts).
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Logger } from 'pino';
import {
  DEFAULT_POLLMASK,
  Errno,
  FUSE_EXPIRE_ONLY,
  FUSE_POLL_SCHEDULE_NOTIFY,
  FUSE_GETATTR_FH,
  FUSE_KERNEL_MINOR_VERSION,
  GetattrIn,
  FUSE_KERNEL_VERSION,
  InHeader,
  InitFlags,
  InitFlags2,
  MUTATING_OPCODES,
  NotifyCode,
  NO_REPLY_OPCODES,
  O_ACCMODE,
  O_RDONLY,
  O_TRUNC,
  Opcode,
  OutHeader,
  W_OK,
  describeInitFlags,
  errnoName,
  opcodeName,
} from './abi.js';
import {
  FuseDecodeError,
  type FuseRequest,
  type InitReply,
  decodeName,
  decodeRequest,
  encodeAttrOut,
  encodeDirent,
  encodeEntryOut,
  encodeErrorReply,
  encodeGetxattrOut,
  encodeInitOut,
  encodeNotifyBare,
  encodeNotifyDelete,
  encodeNotifyPollWakeup,
  encodeNotifyInvalEntry,
  encodeNotifyInvalInode,
  encodeOpenOut,
  encodeOutHeader,
  encodePollOut,
  encodeStatfsOut,
  readU64,
  readUnique,
  readView,
} from './codec.js';
import { RepeatedErrorLog } from '../util/repeated-error-log.js';
import type { ChannelSink, FuseChannel } from './device.js';
import {
  type AttrReply,
  type ConnectionInfo,
  type DirEntry,
  type Entry,
  FuseError,
  type LowLevelFileSystem,
  type Notifier,
  NotifyNotSupportedError,
  type NotifySupport,
  type OpenReply,
  type RequestContext,
  type StatfsReply,
} from './types.js';

export interface SessionOptions {
  /** Default entry timeout (s) reported in ConnectionInfo for the layer above. Default 1. */
  entryTimeout?: number;
  /** Default attribute timeout (s) reported in ConnectionInfo. Default 1. */
  attrTimeout?: number;
  /** READDIRPLUS: 'auto' (kernel decides per directory), 'always', or 'off'. Default 'auto'. */
  readdirplus?: 'auto' | 'always' | 'off';
  /** Ask for FUSE_EXPORT_SUPPORT: the layer above answers LOOKUP of "." and "..". Default true. */
  exportSupport?: boolean;
  /** Page-cache invalidation: 'auto' (on mtime/size change) or 'explicit' (only by notification). */
  invalData?: 'auto' | 'explicit';
  /** max_write announced in INIT (bytes, >= 4096). Default 4096: nothing is ever written. */
  maxWrite?: number;
  /** Stop cleanly on SIGINT/SIGTERM while running. Default false. */
  handleSignals?: boolean;
  /** Log every request and reply at debug level even if the logger's level is higher. */
  debug?: boolean;
  /** Called by stop() to unmount; the kernel then ends the connection (device read → ENODEV). */
  unmount?: () => Promise<void>;
  /** How long stop() waits for the connection to end after unmount before closing the device. */
  stopTimeoutMs?: number;
  /**
   * Take over a connection another process initialised (its INIT as it negotiated it): no INIT
   * will come. Before reading anything the session invalidates every cached name
   * (FUSE_NOTIFY_INC_EPOCH, 7.44) and has the kernel resend what the predecessor read but never
   * answered (FUSE_NOTIFY_RESEND, when the kernel offered FUSE_HAS_RESEND).
   */
  resume?: ConnectionInfo;
}

/** Told how long each request took, from its arrival to its reply (seconds): metrics. */
export type RequestObserver = (opcode: number, seconds: number) => void;

export interface SessionStats {
  requests: number;
  replies: number;
  /** Replies whose write failed (ENOENT: interrupted; ENODEV: connection gone). */
  failedReplies: number;
  /** References handed back with forget(nodeId, 1) because their reply was not delivered. */
  givenBack: number;
  /** Requests that could not be decoded. */
  malformed: number;
  forgets: number;
}

const enum Reply {
  Entry,
  Attr,
  Readlink,
  Open,
  Opendir,
  Read,
  Readdir,
  Empty,
  Statfs,
  Getxattr,
  Listxattr,
  Poll,
  Destroy,
}

/** The context handed to handlers. The AbortController is created only if someone asks. */
class Ctx implements RequestContext {
  interrupted = false;
  /** Reply kind and size limit / flags, for the asynchronous completion. */
  kind: Reply = Reply.Empty;
  size = 0;
  plus = false;
  flags = 0;
  waiters: Array<() => void> | undefined = undefined;
  private ac: AbortController | undefined = undefined;

  constructor(
    readonly unique: number,
    readonly opcode: number,
    readonly nodeId: number,
    readonly uid: number,
    readonly gid: number,
    readonly pid: number,
  ) {}

  get signal(): AbortSignal {
    if (this.ac === undefined) {
      this.ac = new AbortController();
      if (this.interrupted) this.ac.abort(new FuseError(Errno.EINTR, 'interrupted'));
    }
    return this.ac.signal;
  }

  interrupt(): void {
    if (this.interrupted) return;
    this.interrupted = true;
    this.ac?.abort(new FuseError(Errno.EINTR, 'interrupted'));
  }
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v instanceof Promise || (v !== null && typeof v === 'object' && typeof (v as { then?: unknown }).then === 'function');
}

const describeEntry = (e: Entry): string => `OK {n${e.nodeId} g${e.generation}}`;
const describeAttr = (r: AttrReply): string => `OK {i${r.attr.ino} m${r.attr.mode.toString(8)} s${r.attr.size}}`;
const describeBytes = (b: Buffer): string => `OK ${b.length} bytes`;
const describeOk = (): string => 'OK';

function isDot(name: string): boolean {
  return name === '.' || name === '..';
}

const DEFAULT_STATFS: StatfsReply = {
  blocks: 0, bfree: 0, bavail: 0, files: 0, ffree: 0, bsize: 512, namelen: 255, frsize: 0,
};
const EMPTY = Buffer.alloc(0);
/** Replies up to this size are copied into the reply buffer; larger data is written with writev. */
const COPY_LIMIT = 64 * 1024;
const OUT_BUFFER_SIZE = 256 * 1024 + 4096;

export class FuseSession {
  /** How the channel reads requests ('native', 'uv-pipe', 'threadpool'), when it says. */
  get readMechanism(): string | undefined {
    return this.channel.mechanism;
  }

  readonly stats: SessionStats = { requests: 0, replies: 0, failedReplies: 0, givenBack: 0, malformed: 0, forgets: 0 };
  readonly notifier: Notifier;
  /**
   * Resolves with the negotiated ConnectionInfo once INIT has been answered (and fs.init() run);
   * rejects if the session ends before that.
   */
  readonly ready: Promise<ConnectionInfo>;
  private resolveReady!: (c: ConnectionInfo) => void;
  private rejectReady!: (err: Error) => void;

  private readonly logger: Logger;
  /** Handler failures that repeat while their cause lasts (EMFILE, a full disk): one line per episode and interval. */
  private readonly failures: RepeatedErrorLog;
  private readonly out = Buffer.alloc(OUT_BUFFER_SIZE);
  private readonly opts: Required<Omit<SessionOptions, 'unmount' | 'resume'>> & Pick<SessionOptions, 'unmount' | 'resume'>;
  private conn: ConnectionInfo | undefined;
  private minor = FUSE_KERNEL_MINOR_VERSION;
  private initDone = false;
  private destroyed = false;
  private state: 'new' | 'running' | 'stopping' | 'ended' = 'new';
  private dbg = false;
  private readonly inflight = new Map<number, Ctx>();
  /** Highest unique of a request (not INTERRUPT) read so far. */
  private maxUnique = 0;
  private runPromise: Promise<void> | undefined;
  private resolveRun!: () => void;
  private rejectRun!: (err: Error) => void;
  private signalHandler: ((sig: NodeJS.Signals) => void) | undefined;
  private stopPromise: Promise<void> | undefined;
  private finishing = false;

  constructor(
    private readonly fs: LowLevelFileSystem,
    private readonly channel: FuseChannel,
    logger: Logger,
    options: SessionOptions = {},
  ) {
    this.opts = {
      entryTimeout: options.entryTimeout ?? 1,
      attrTimeout: options.attrTimeout ?? 1,
      readdirplus: options.readdirplus ?? 'auto',
      exportSupport: options.exportSupport ?? true,
      invalData: options.invalData ?? 'auto',
      maxWrite: Math.max(4096, options.maxWrite ?? 4096),
      handleSignals: options.handleSignals ?? false,
      debug: options.debug ?? false,
      stopTimeoutMs: options.stopTimeoutMs ?? 3000,
      unmount: options.unmount,
      resume: options.resume,
    };
    this.logger = this.opts.debug ? logger.child({}, { level: 'debug' }) : logger;
    this.failures = new RepeatedErrorLog(this.logger);
    this.notifier = new SessionNotifier(this);
    this.ready = new Promise<ConnectionInfo>((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    this.ready.catch(() => undefined); // observed by whoever awaits it; never an unhandled rejection
    if (channel.bufferSize < this.opts.maxWrite + 4096 || channel.bufferSize < 8192) {
      throw new RangeError(`channel buffer ${channel.bufferSize} is too small for max_write ${this.opts.maxWrite}`);
    }
  }

  /** What INIT negotiated; undefined before INIT. */
  get connection(): ConnectionInfo | undefined {
    return this.conn;
  }

  get running(): boolean {
    return this.state === 'running' || this.state === 'stopping';
  }

  /**
   * Start serving (idempotent). Resolves when the session ended normally (unmount, DESTROY, stop());
   * rejects if the device failed with anything else.
   */
  run(): Promise<void> {
    if (this.runPromise) return this.runPromise;
    this.runPromise = new Promise<void>((resolve, reject) => {
      this.resolveRun = resolve;
      this.rejectRun = reject;
    });
    this.state = 'running';
    if (this.opts.handleSignals) {
      this.signalHandler = (sig) => {
        if (this.state === 'stopping') {
          this.logger.warn({ signal: sig }, 'second signal while stopping: closing the FUSE device');
          this.channel.close();
          return;
        }
        void this.stop(sig).catch((err: unknown) => this.logger.error({ err }, 'stop failed'));
      };
      process.on('SIGINT', this.signalHandler);
      process.on('SIGTERM', this.signalHandler);
    }
    const sink: ChannelSink = {
      onData: (buf, len) => this.onData(buf, len),
      onEnd: (err) => {
        void this.finish(err);
      },
    };
    if (this.opts.resume !== undefined) this.resumeConnection(this.opts.resume);
    this.channel.start(sink);
    return this.runPromise;
  }

  /**
   * Serves a connection a predecessor initialised: adopts its INIT, then (before the first read)
   * asks the kernel to drop every cached name and to resend the requests the predecessor had read.
   */
  private resumeConnection(conn: ConnectionInfo): void {
    this.conn = Object.freeze({ ...conn, capabilities: Object.freeze({ ...conn.capabilities }) });
    this.minor = conn.minor;
    this.initDone = true;
    const sent: string[] = [];
    if (conn.minor >= 44 && conn.kernelMinor >= 44 && this.writeBare(NotifyCode.INC_EPOCH, 'INC_EPOCH')) sent.push('INC_EPOCH');
    if ((conn.kernelFlags2 & InitFlags2.HAS_RESEND) !== 0 && this.writeBare(NotifyCode.RESEND, 'RESEND')) sent.push('RESEND');
    this.logger.info({ protocol: `${conn.major}.${conn.minor}`, notified: sent }, 'FUSE connection resumed');
    try {
      this.fs.init?.(this.conn, this.notifier);
    } catch (err) {
      this.logger.error({ err }, 'init() of the filesystem failed; stopping');
      this.rejectReady(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    this.resolveReady(this.conn);
  }

  /** Writes a notification without a body, synchronously (nothing in it waits on inode locks). */
  private writeBare(code: number, what: string): boolean {
    try {
      const b = encodeNotifyBare(code);
      this.channel.write(b, b.length);
      return true;
    } catch (err) {
      this.logger.warn({ err, notification: what }, 'FUSE notification refused by the kernel');
      return false;
    }
  }

  /**
   * Hands the connection over: stops reading (the device stays open and the mount stays) and
   * resolves once every request read so far has been answered. A successor then takes over.
   */
  async detach(): Promise<void> {
    this.channel.pause?.();
    while (this.inflight.size > 0 && this.state === 'running') await new Promise((r) => setTimeout(r, 2));
  }

  /** Unmount (if a mount was given) and wait until the session has ended. */
  stop(reason = 'stop requested'): Promise<void> {
    if (this.stopPromise) return this.stopPromise;
    if (this.state === 'new') {
      this.state = 'ended';
      this.rejectReady(new Error('FUSE session stopped before it ran'));
      this.channel.close();
      this.stopPromise = Promise.resolve();
      return this.stopPromise;
    }
    this.stopPromise = this.doStop(reason);
    return this.stopPromise;
  }

  private async doStop(reason: string): Promise<void> {
    const run = this.runPromise!.catch(() => undefined);
    if (this.state === 'ended') return run;
    this.state = 'stopping';
    this.logger.info({ reason }, 'stopping FUSE session');
    if (this.opts.unmount) {
      try {
        await this.opts.unmount();
      } catch (err) {
        this.logger.error({ err }, 'unmount failed; closing the FUSE device');
        this.channel.close();
      }
    } else {
      this.channel.close();
    }
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      run.then(() => false),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(true), this.opts.stopTimeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      this.logger.warn('the kernel did not end the connection after unmount; closing the FUSE device');
      this.channel.close();
      await run;
    }
  }

  private async finish(err?: NodeJS.ErrnoException): Promise<void> {
    if (this.finishing) return;
    this.finishing = true;
    this.state = 'ended';
    if (this.signalHandler) {
      process.off('SIGINT', this.signalHandler);
      process.off('SIGTERM', this.signalHandler);
      this.signalHandler = undefined;
    }
    for (const ctx of this.inflight.values()) ctx.interrupt();
    const normal = err === undefined || err.code === 'ENODEV' || err.code === 'ECONNABORTED' || err.code === 'EOF';
    if (!this.initDone) this.rejectReady(new Error(`FUSE session ended before INIT (${err?.code ?? 'closed'})`));
    if (normal) this.logger.info({ reason: err?.code ?? 'closed' }, 'FUSE session ended');
    else this.logger.error({ err }, 'FUSE device failed; session ended');
    if (this.initDone && !this.destroyed) {
      this.destroyed = true;
      try {
        await this.fs.destroy?.();
      } catch (e) {
        this.logger.error({ err: e }, 'destroy() failed');
      }
    }
    this.channel.close();
    if (this.opts.unmount) {
      // Unmount on every kind of end (an aborted connection leaves a stale mount otherwise).
      try {
        await this.opts.unmount();
      } catch (e) {
        this.logger.error({ err: e }, 'unmount after the session ended failed');
      }
    }
    // Wake notifications waiting for requests that will never be answered now.
    for (const ctx of this.inflight.values()) this.wake(ctx);
    this.inflight.clear();
    if (normal) this.resolveRun();
    else this.rejectRun(err!);
  }

  // -------------------------------------------------------------------------------------------
  // Reading and dispatch
  // -------------------------------------------------------------------------------------------

  private onData(buf: Buffer, len: number): void {
    let off = 0;
    while (off < len) {
      const avail = len - off;
      if (avail < InHeader.SIZE) {
        this.stats.malformed++;
        this.logger.warn({ bytes: avail }, 'FUSE request too short for a header; dropped');
        return;
      }
      const reqLen = buf.readUInt32LE(off + InHeader.len);
      if (reqLen < InHeader.SIZE || reqLen > avail) {
        // Framing is lost: answer what we can identify and drop the rest of this read.
        this.stats.malformed++;
        const unique = readUnique(buf, off + InHeader.unique);
        const opcode = buf.readUInt32LE(off + InHeader.opcode);
        this.logger.warn({ unique, opcode: opcodeName(opcode), len: reqLen, bytes: avail }, 'FUSE request length does not match the bytes read');
        if (unique !== 0 && !NO_REPLY_OPCODES.has(opcode)) this.sendError(unique, Errno.EIO);
        return;
      }
      this.handle(buf, off, off + reqLen);
      off += reqLen;
    }
  }

  /** Set with observeRequests(); null keeps the request path free of timing. */
  private observer: RequestObserver | null = null;
  /** Arrival time of the request being dispatched (only while an observer is set). */
  private arrivedAt = 0;
  /** Whether dispatching the current request left it to finish later. */
  private deferred = false;

  /** Times every request from arrival to reply (and FORGETs, which have none, to their handling). */
  observeRequests(observer: RequestObserver | null): void {
    this.observer = observer;
  }

  private handle(buf: Buffer, start: number, end: number): void {
    const observer = this.observer;
    if (observer === null) return this.dispatch(buf, start, end);
    const opcode = buf.readUInt32LE(start + InHeader.opcode);
    this.arrivedAt = performance.now();
    this.deferred = false;
    try {
      this.dispatch(buf, start, end);
    } finally {
      if (!this.deferred) observer(opcode, (performance.now() - this.arrivedAt) / 1000);
    }
  }

  private dispatch(buf: Buffer, start: number, end: number): void {
    this.stats.requests++;
    this.dbg = this.logger.isLevelEnabled('debug');
    if (!this.dbg && this.initDone && !this.destroyed && this.fastPath(buf, start, end)) return;
    let req: FuseRequest;
    try {
      req = decodeRequest(buf, start, end);
    } catch (err) {
      this.stats.malformed++;
      const opcode = buf.readUInt32LE(start + InHeader.opcode);
      const e = err instanceof FuseDecodeError ? err : new FuseDecodeError(String(err), Errno.EIO);
      this.logger.warn({ opcode: opcodeName(opcode), err: e.message }, 'malformed FUSE request');
      if (e.unique !== undefined && e.unique !== 0 && !NO_REPLY_OPCODES.has(opcode)) this.sendError(e.unique, e.errno);
      return;
    }
    const h = req.h;
    if (this.dbg) this.logger.debug(`rx ${h.unique}: ${describeRequest(req)}`);
    if (req.kind !== 'INTERRUPT' && h.unique > this.maxUnique) this.maxUnique = h.unique;

    if (!this.initDone && req.kind !== 'INIT') {
      if (!NO_REPLY_OPCODES.has(h.opcode)) this.sendError(h.unique, Errno.EIO);
      return;
    }
    if (this.destroyed && req.kind !== 'FORGET' && req.kind !== 'BATCH_FORGET' && req.kind !== 'INTERRUPT') {
      this.sendError(h.unique, Errno.ENODEV);
      return;
    }

    const fs = this.fs;
    switch (req.kind) {
      case 'LOOKUP': {
        const ctx = this.ctx(req);
        let r: Entry | Promise<Entry>;
        try {
          r = fs.lookup(ctx, h.nodeId, req.name);
        } catch (e) {
          this.fail(ctx, e);
          return;
        }
        if (isThenable(r)) this.later(ctx, r, Reply.Entry);
        else this.replyEntry(ctx, r);
        return;
      }
      case 'GETATTR': {
        const ctx = this.ctx(req);
        let r: AttrReply | Promise<AttrReply>;
        try {
          r = fs.getattr(ctx, h.nodeId, req.fh);
        } catch (e) {
          this.fail(ctx, e);
          return;
        }
        if (isThenable(r)) this.later(ctx, r, Reply.Attr);
        else this.replyAttr(ctx, r);
        return;
      }
      case 'FORGET':
        this.forget(h.nodeId, req.nlookup);
        return;
      case 'BATCH_FORGET': {
        if (req.declaredCount !== req.items.length) {
          this.logger.warn({ declared: req.declaredCount, held: req.items.length }, 'BATCH_FORGET count exceeds its payload; clamped');
        }
        for (const it of req.items) this.forget(it.nodeId, it.nlookup);
        return;
      }
      case 'INIT':
        this.doInit(req);
        return;
      case 'INTERRUPT':
        this.doInterrupt(req.h.unique, req.target);
        return;
      case 'DESTROY':
        this.doDestroy(req);
        return;
      case 'READLINK': {
        const ctx = this.ctx(req);
        if (!fs.readlink) return this.fail(ctx, new FuseError(Errno.ENOSYS));
        return this.call(ctx, Reply.Readlink, () => fs.readlink!(ctx, h.nodeId));
      }
      case 'OPEN': {
        const ctx = this.ctx(req);
        ctx.flags = req.flags;
        if (((req.flags & O_ACCMODE) !== O_RDONLY || (req.flags & O_TRUNC) !== 0) && !fs.allowWriteOpen) {
          return this.fail(ctx, new FuseError(Errno.EROFS));
        }
        if (!fs.open) return this.replyOpen(ctx, { fh: 0 }, false);
        return this.call(ctx, Reply.Open, () => fs.open!(ctx, h.nodeId, req.flags));
      }
      case 'OPENDIR': {
        const ctx = this.ctx(req);
        ctx.flags = req.flags;
        if (!fs.opendir) return this.replyOpen(ctx, { fh: 0 }, true);
        return this.call(ctx, Reply.Opendir, () => fs.opendir!(ctx, h.nodeId, req.flags));
      }
      case 'READ': {
        const ctx = this.ctx(req);
        const r = req.read;
        ctx.size = r.size;
        if (!fs.read) return this.fail(ctx, new FuseError(Errno.ENOSYS));
        return this.call(ctx, Reply.Read, () => fs.read!(ctx, h.nodeId, r.fh, r.offset, r.size));
      }
      case 'READDIR':
      case 'READDIRPLUS': {
        const ctx = this.ctx(req);
        const r = req.read;
        const plus = req.kind === 'READDIRPLUS';
        ctx.size = Math.min(r.size, this.out.length - OutHeader.SIZE);
        ctx.plus = plus;
        if (!fs.readdir) return this.fail(ctx, new FuseError(Errno.ENOSYS));
        return this.call(ctx, Reply.Readdir, () => fs.readdir!(ctx, h.nodeId, r.fh, r.offset, ctx.size, plus));
      }
      case 'RELEASE': {
        const ctx = this.ctx(req);
        if (!fs.release) return this.replyEmpty(ctx);
        return this.call(ctx, Reply.Empty, () => fs.release!(ctx, h.nodeId, req.fh, req.flags));
      }
      case 'RELEASEDIR': {
        const ctx = this.ctx(req);
        if (!fs.releasedir) return this.replyEmpty(ctx);
        return this.call(ctx, Reply.Empty, () => fs.releasedir!(ctx, h.nodeId, req.fh));
      }
      case 'FLUSH': {
        const ctx = this.ctx(req);
        if (!fs.flush) return this.replyEmpty(ctx);
        return this.call(ctx, Reply.Empty, () => fs.flush!(ctx, h.nodeId, req.fh, req.lockOwner));
      }
      case 'STATFS': {
        const ctx = this.ctx(req);
        if (!fs.statfs) return this.replyStatfs(ctx, DEFAULT_STATFS);
        return this.call(ctx, Reply.Statfs, () => fs.statfs!(ctx, h.nodeId));
      }
      case 'ACCESS': {
        const ctx = this.ctx(req);
        if (!fs.access) {
          if ((req.mask & W_OK) !== 0) return this.fail(ctx, new FuseError(Errno.EROFS));
          return this.replyEmpty(ctx);
        }
        return this.call(ctx, Reply.Empty, () => fs.access!(ctx, h.nodeId, req.mask));
      }
      case 'GETXATTR': {
        const ctx = this.ctx(req);
        ctx.size = req.size;
        // ENOSYS makes the kernel stop asking (fc->no_getxattr; callers get EOPNOTSUPP): ENODATA
        // would bring one GETXATTR per entry of every `ls -l`.
        if (!fs.getxattr) return this.fail(ctx, new FuseError(Errno.ENOSYS));
        return this.call(ctx, Reply.Getxattr, () => fs.getxattr!(ctx, h.nodeId, req.name));
      }
      case 'LISTXATTR': {
        const ctx = this.ctx(req);
        ctx.size = req.size;
        if (!fs.listxattr) return this.fail(ctx, new FuseError(Errno.ENOSYS));
        return this.call(ctx, Reply.Listxattr, () => fs.listxattr!(ctx, h.nodeId));
      }
      case 'POLL': {
        const ctx = this.ctx(req);
        if (!fs.poll) return this.replyPoll(ctx, DEFAULT_POLLMASK);
        const kh = (req.pollFlags & FUSE_POLL_SCHEDULE_NOTIFY) !== 0 ? req.kh : undefined;
        return this.call(ctx, Reply.Poll, () => fs.poll!(ctx, h.nodeId, req.fh, req.events, kh));
      }
      case 'OTHER': {
        if (h.opcode === Opcode.NOTIFY_REPLY) return; // we never send RETRIEVE; nothing to answer
        if (MUTATING_OPCODES.has(h.opcode)) this.sendError(h.unique, Errno.EROFS);
        else this.sendError(h.unique, Errno.ENOSYS);
        return;
      }
    }
  }

  /**
   * LOOKUP and GETATTR (the stat path) decoded in place, without the request objects. Returns false
   * (having done nothing) for anything else, or anything unusual, which then takes the general path.
   */
  private fastPath(buf: Buffer, start: number, end: number): boolean {
    const dv = readView(buf);
    const opcode = dv.getUint32(start + InHeader.opcode, true);
    if ((opcode !== Opcode.LOOKUP && opcode !== Opcode.GETATTR) || dv.getUint16(start + InHeader.total_extlen, true) !== 0) {
      return false;
    }
    const unique = readUnique(buf, start + InHeader.unique);
    const nodeId = readU64(buf, start + InHeader.nodeid);
    if (opcode === Opcode.LOOKUP) {
      let name: string;
      try {
        name = decodeName(buf, start + InHeader.SIZE, end, unique);
      } catch {
        return false; // the general path answers and logs it
      }
      if (unique > this.maxUnique) this.maxUnique = unique;
      const ctx = new Ctx(unique, opcode, nodeId, dv.getUint32(start + InHeader.uid, true), dv.getUint32(start + InHeader.gid, true), dv.getUint32(start + InHeader.pid, true));
      let r: Entry | Promise<Entry>;
      try {
        r = this.fs.lookup(ctx, nodeId, name);
      } catch (e) {
        this.fail(ctx, e);
        return true;
      }
      if (isThenable(r)) this.later(ctx, r, Reply.Entry);
      else this.replyEntry(ctx, r);
      return true;
    }
    const b = start + InHeader.SIZE;
    let fh: number | undefined;
    if (end - b >= GetattrIn.SIZE && (dv.getUint32(b + GetattrIn.getattr_flags, true) & FUSE_GETATTR_FH) !== 0) {
      fh = readU64(buf, b + GetattrIn.fh);
    }
    if (unique > this.maxUnique) this.maxUnique = unique;
    const ctx = new Ctx(unique, opcode, nodeId, dv.getUint32(start + InHeader.uid, true), dv.getUint32(start + InHeader.gid, true), dv.getUint32(start + InHeader.pid, true));
    let r: AttrReply | Promise<AttrReply>;
    try {
      r = this.fs.getattr(ctx, nodeId, fh);
    } catch (e) {
      this.fail(ctx, e);
      return true;
    }
    if (isThenable(r)) this.later(ctx, r, Reply.Attr);
    else this.replyAttr(ctx, r);
    return true;
  }

  private ctx(req: FuseRequest): Ctx {
    const h = req.h;
    return new Ctx(h.unique, h.opcode, h.nodeId, h.uid, h.gid, h.pid);
  }

  /** Calls a handler; answers now if it returned a value, later if it returned a Promise. */
  private call(ctx: Ctx, kind: Reply, fn: () => unknown): void {
    let r: unknown;
    try {
      r = fn();
    } catch (e) {
      this.fail(ctx, e);
      return;
    }
    if (isThenable(r)) this.later(ctx, r, kind);
    else this.complete(ctx, kind, r);
  }

  private later(ctx: Ctx, p: PromiseLike<unknown>, kind: Reply): void {
    ctx.kind = kind;
    this.inflight.set(ctx.unique, ctx);
    const observer = this.observer;
    const arrivedAt = this.arrivedAt;
    this.deferred = true;
    p.then(
      (v) => {
        this.untrack(ctx);
        this.complete(ctx, ctx.kind, v);
        observer?.(ctx.opcode, (performance.now() - arrivedAt) / 1000);
      },
      (e: unknown) => {
        this.untrack(ctx);
        this.fail(ctx, e);
        observer?.(ctx.opcode, (performance.now() - arrivedAt) / 1000);
      },
    );
  }

  private untrack(ctx: Ctx): void {
    this.inflight.delete(ctx.unique);
  }

  private wake(ctx: Ctx): void {
    const w = ctx.waiters;
    if (w) {
      ctx.waiters = undefined;
      for (const f of w) f();
    }
  }

  private complete(ctx: Ctx, kind: Reply, v: unknown): void {
    this.dbg = this.logger.isLevelEnabled('debug');
    try {
      switch (kind) {
        case Reply.Entry:
          return this.replyEntry(ctx, v as Entry);
        case Reply.Attr:
          return this.replyAttr(ctx, v as AttrReply);
        case Reply.Readlink:
          return this.replyReadlink(ctx, v as string | Buffer);
        case Reply.Open:
          return this.replyOpen(ctx, v as OpenReply, false);
        case Reply.Opendir:
          return this.replyOpen(ctx, v as OpenReply, true);
        case Reply.Read:
          return this.replyRead(ctx, v);
        case Reply.Readdir:
          return this.replyReaddir(ctx, v as DirEntry[]);
        case Reply.Empty:
          return this.replyEmpty(ctx);
        case Reply.Statfs:
          return this.replyStatfs(ctx, v as StatfsReply);
        case Reply.Getxattr:
          return this.replyGetxattr(ctx, v as Buffer);
        case Reply.Listxattr:
          return this.replyListxattr(ctx, v as string[]);
        case Reply.Poll:
          return this.replyPoll(ctx, v as number);
        case Reply.Destroy:
          return this.replyEmpty(ctx);
      }
    } finally {
      this.wake(ctx);
    }
  }

  /** Answers a thrown/rejected handler: FuseError → its errno; anything else → EIO + log. */
  private fail(ctx: Ctx, e: unknown): void {
    let errno: number;
    if (e instanceof FuseError) errno = e.errno;
    else if (ctx.interrupted && e instanceof Error && e.name === 'AbortError') errno = Errno.EINTR;
    else {
      errno = Errno.EIO;
      // Keyed by opcode and error class, not by node: a cause that fails every request logs once.
      const code = (e as { code?: unknown } | null)?.code;
      const name = e instanceof Error ? e.name : typeof e;
      this.failures.error(`${opcodeName(ctx.opcode)}:${name}:${typeof code === 'string' ? code : ''}`, e, `FUSE ${opcodeName(ctx.opcode)} failed; answering EIO`);
    }
    this.sendError(ctx.unique, errno);
    this.wake(ctx);
  }

  /** Encoding failed because the layer above returned something that cannot be sent. */
  private badReply(ctx: Ctx, err: unknown): void {
    this.logger.error({ err, op: opcodeName(ctx.opcode), unique: ctx.unique, nodeId: ctx.nodeId }, 'FUSE handler returned an invalid reply; answering EIO');
    this.sendError(ctx.unique, Errno.EIO);
  }

  // -------------------------------------------------------------------------------------------
  // Writing
  // -------------------------------------------------------------------------------------------

  /**
   * Writes out[0, 16 + bodyLen) as the reply to `unique`. Returns whether it was delivered.
   * `describe(arg)` makes the debug line; it is only called when debug logging is on.
   */
  private send<T>(unique: number, bodyLen: number, describe: (arg: T) => string, arg: T): boolean {
    const len = OutHeader.SIZE + bodyLen;
    encodeOutHeader(this.out, 0, len, 0, unique);
    return this.write(unique, this.out, len, undefined, describe, arg);
  }

  private sendError(unique: number, errno: number): boolean {
    encodeErrorReply(this.out, 0, unique, errno);
    return this.write(unique, this.out, OutHeader.SIZE, undefined, errnoName, errno);
  }

  /** Header in out[0,16) + `data` (copied when small, else written with writev). */
  private sendData(unique: number, data: Buffer, describe: (arg: Buffer) => string): boolean {
    const len = OutHeader.SIZE + data.length;
    encodeOutHeader(this.out, 0, len, 0, unique);
    if (data.length <= COPY_LIMIT) {
      data.copy(this.out, OutHeader.SIZE);
      return this.write(unique, this.out, len, undefined, describe, data);
    }
    return this.write(unique, this.out, OutHeader.SIZE, data, describe, data);
  }

  private write<T>(unique: number, buf: Buffer, len: number, tail: Buffer | undefined, describe: (arg: T) => string, arg: T): boolean {
    if (this.state === 'ended' || this.channel.closed) {
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
  private giveBack(nodeId: number): void {
    this.stats.givenBack++;
    if (this.dbg) this.logger.debug(`give back n${nodeId} x1 (reply not delivered)`);
    this.forget(nodeId, 1);
  }

  private forget(nodeId: number, nlookup: number): void {
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

  private replyEntry(ctx: Ctx, e: Entry): void {
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

  private replyAttr(ctx: Ctx, r: AttrReply): void {
    let n: number;
    try {
      n = encodeAttrOut(this.out, OutHeader.SIZE, r.attr, r.attrTimeout, this.minor);
    } catch (err) {
      return this.badReply(ctx, err);
    }
    this.send(ctx.unique, n, describeAttr, r);
  }

  private replyReadlink(ctx: Ctx, target: string | Buffer): void {
    let data: Buffer;
    if (typeof target === 'string') data = Buffer.from(target, 'utf8');
    else if (Buffer.isBuffer(target)) data = target;
    else return this.badReply(ctx, new TypeError('readlink must return a string or Buffer'));
    this.sendData(ctx.unique, data, (d) => `OK ${JSON.stringify(d.toString('utf8'))}`);
  }

  private replyOpen(ctx: Ctx, r: OpenReply, dir: boolean): void {
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

  private replyRead(ctx: Ctx, data: unknown): void {
    if (!(data instanceof Uint8Array)) return this.badReply(ctx, new TypeError('read must return a Buffer'));
    let b = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    if (b.length > ctx.size) b = b.subarray(0, ctx.size);
    this.sendData(ctx.unique, b, describeBytes);
  }

  private replyReaddir(ctx: Ctx, entries: DirEntry[]): void {
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

  private replyEmpty(ctx: Ctx): void {
    this.send(ctx.unique, 0, describeOk, undefined);
  }

  private replyStatfs(ctx: Ctx, s: StatfsReply): void {
    let n: number;
    try {
      n = encodeStatfsOut(this.out, OutHeader.SIZE, s, this.minor);
    } catch (err) {
      return this.badReply(ctx, err);
    }
    this.send(ctx.unique, n, (x: StatfsReply) => `OK {blocks${x.blocks} files${x.files} namelen${x.namelen}}`, s);
  }

  private sizedReply(ctx: Ctx, data: Buffer): void {
    if (ctx.size === 0) {
      encodeGetxattrOut(this.out, OutHeader.SIZE, data.length);
      this.send(ctx.unique, 8, (x: number) => `OK {size ${x}}`, data.length);
    } else if (data.length > ctx.size) {
      this.sendError(ctx.unique, Errno.ERANGE);
    } else {
      this.sendData(ctx.unique, data, describeBytes);
    }
  }

  private replyGetxattr(ctx: Ctx, value: Buffer): void {
    if (!(value instanceof Uint8Array)) return this.badReply(ctx, new TypeError('getxattr must return a Buffer'));
    this.sizedReply(ctx, Buffer.isBuffer(value) ? value : Buffer.from(value));
  }

  private replyListxattr(ctx: Ctx, names: string[]): void {
    if (!Array.isArray(names)) return this.badReply(ctx, new TypeError('listxattr must return an array'));
    this.sizedReply(ctx, names.length === 0 ? EMPTY : Buffer.from(names.map((n) => `${n}\0`).join(''), 'utf8'));
  }

  private replyPoll(ctx: Ctx, revents: number): void {
    const n = encodePollOut(this.out, OutHeader.SIZE, typeof revents === 'number' ? revents : 0);
    this.send(ctx.unique, n, (x: number) => `OK {revents 0x${x.toString(16)}}`, revents);
  }

  // -------------------------------------------------------------------------------------------
  // INIT, INTERRUPT, DESTROY
  // -------------------------------------------------------------------------------------------

  private doInit(req: Extract<FuseRequest, { kind: 'INIT' }>): void {
    const k = req.init;
    const unique = req.h.unique;
    if (this.initDone) {
      this.logger.warn('second INIT on an initialised connection');
      this.sendError(unique, Errno.EIO);
      return;
    }
    const reply: InitReply = {
      major: FUSE_KERNEL_VERSION,
      minor: FUSE_KERNEL_MINOR_VERSION,
      maxReadahead: 0,
      flags: 0,
      flags2: 0,
      maxBackground: 0,
      congestionThreshold: 0,
      maxWrite: 0,
      timeGran: 0,
      maxPages: 0,
    };
    if (k.major < FUSE_KERNEL_VERSION) {
      this.logger.error({ kernel: `${k.major}.${k.minor}` }, 'unsupported FUSE protocol version');
      this.sendError(unique, Errno.EPROTO);
      return;
    }
    if (k.major > FUSE_KERNEL_VERSION) {
      // Answer with our major only; the kernel sends a new INIT with 7.x.
      this.logger.info({ kernel: `${k.major}.${k.minor}` }, 'kernel speaks a newer FUSE major; asking for 7');
      const n = encodeInitOut(this.out, OutHeader.SIZE, reply, FUSE_KERNEL_MINOR_VERSION);
      this.send(unique, n, () => `OK ${FUSE_KERNEL_VERSION}.${FUSE_KERNEL_MINOR_VERSION} (major fallback)`, undefined);
      return;
    }
    const minor = Math.min(k.minor, FUSE_KERNEL_MINOR_VERSION);
    const o = this.opts;
    let want =
      InitFlags.ASYNC_READ |
      InitFlags.PARALLEL_DIROPS |
      (o.exportSupport ? InitFlags.EXPORT_SUPPORT : 0) |
      (o.readdirplus !== 'off' ? InitFlags.DO_READDIRPLUS : 0) |
      (o.readdirplus === 'auto' ? InitFlags.READDIRPLUS_AUTO : 0) |
      (o.invalData === 'auto' ? InitFlags.AUTO_INVAL_DATA : InitFlags.EXPLICIT_INVAL_DATA);
    want >>>= 0;
    const kernelFlags = k.flags >>> 0;
    const ext = (kernelFlags & InitFlags.INIT_EXT) !== 0;
    const kernelFlags2 = ext ? k.flags2 >>> 0 : 0;
    let flags = (want & kernelFlags) >>> 0;
    const want2 = InitFlags2.DIRECT_IO_ALLOW_MMAP | (o.exportSupport ? 0 : InitFlags2.NO_EXPORT_SUPPORT);
    const flags2 = (want2 & kernelFlags2) >>> 0;
    if (flags2 !== 0) flags = (flags | InitFlags.INIT_EXT) >>> 0;

    reply.minor = minor;
    reply.maxReadahead = k.maxReadahead;
    reply.flags = flags;
    reply.flags2 = flags2;
    reply.maxWrite = o.maxWrite;
    reply.timeGran = 1;
    const n = encodeInitOut(this.out, OutHeader.SIZE, reply, k.minor);

    this.minor = minor;
    const has = (f: number): boolean => (flags & f) !== 0;
    this.conn = Object.freeze({
      major: FUSE_KERNEL_VERSION,
      minor,
      kernelMajor: k.major,
      kernelMinor: k.minor,
      kernelFlags,
      kernelFlags2,
      flags,
      flags2,
      maxReadahead: k.maxReadahead,
      maxWrite: o.maxWrite,
      entryTimeout: o.entryTimeout,
      attrTimeout: o.attrTimeout,
      capabilities: Object.freeze({
        readdirplus: has(InitFlags.DO_READDIRPLUS),
        readdirplusAuto: has(InitFlags.READDIRPLUS_AUTO),
        exportSupport: has(InitFlags.EXPORT_SUPPORT),
        parallelDirops: has(InitFlags.PARALLEL_DIROPS),
        asyncRead: has(InitFlags.ASYNC_READ),
        autoInvalData: has(InitFlags.AUTO_INVAL_DATA),
        explicitInvalData: has(InitFlags.EXPLICIT_INVAL_DATA),
        directIoAllowMmap: (flags2 & InitFlags2.DIRECT_IO_ALLOW_MMAP) !== 0,
        notifyInvalInode: minor >= 12,
        notifyInvalEntry: minor >= 12,
        notifyDelete: minor >= 18,
        notifyExpireOnly: (kernelFlags2 & InitFlags2.HAS_EXPIRE_ONLY) !== 0,
      }),
    });
    const ok = this.send(unique, n, () => `OK ${FUSE_KERNEL_VERSION}.${minor} [${describeInitFlags(flags, flags2).join(' ')}]`, undefined);
    if (!ok) {
      this.logger.error('could not answer INIT');
      return;
    }
    this.initDone = true;
    this.logger.info(
      {
        protocol: `${FUSE_KERNEL_VERSION}.${minor}`,
        kernel: `${k.major}.${k.minor}`,
        flags: describeInitFlags(flags, flags2),
        maxReadahead: k.maxReadahead,
        maxWrite: o.maxWrite,
      },
      'FUSE connection initialised',
    );
    try {
      this.fs.init?.(this.conn, this.notifier);
    } catch (err) {
      this.logger.error({ err }, 'init() of the filesystem failed; stopping');
      this.rejectReady(err instanceof Error ? err : new Error(String(err)));
      void this.stop('init failed');
      return;
    }
    this.resolveReady(this.conn);
  }

  private doInterrupt(unique: number, target: number): void {
    const ctx = this.inflight.get(target);
    if (ctx) {
      if (this.dbg) this.logger.debug(`INTERRUPT ${target}: aborting the handler's signal`);
      ctx.interrupt();
      return;
    }
    if (target > this.maxUnique) {
      // Not read yet (cannot happen with one reader, but the kernel's rule is: answer EAGAIN and it
      // will send the INTERRUPT again).
      this.sendError(unique, Errno.EAGAIN);
      return;
    }
    if (this.dbg) this.logger.debug(`INTERRUPT ${target}: already answered; ignored`);
  }

  private doDestroy(req: FuseRequest): void {
    const ctx = this.ctx(req);
    this.destroyed = true;
    const done = (): void => {
      this.replyEmpty(ctx);
      this.logger.info('DESTROY received; session ends');
    };
    let r: unknown;
    try {
      r = this.fs.destroy?.();
    } catch (err) {
      this.logger.error({ err }, 'destroy() failed');
    }
    if (isThenable(r)) {
      r.then(done, (err: unknown) => {
        this.logger.error({ err }, 'destroy() failed');
        done();
      });
    } else done();
  }

  // -------------------------------------------------------------------------------------------
  // Notifications
  // -------------------------------------------------------------------------------------------

  /** @internal */
  notifySupport(): NotifySupport {
    const c = this.conn?.capabilities;
    return {
      invalInode: !!c?.notifyInvalInode,
      invalEntry: !!c?.notifyInvalEntry,
      delete: !!c?.notifyDelete,
      expireOnly: !!c?.notifyExpireOnly,
    };
  }

  /** @internal Checks that a notification may be sent; throws NotifyNotSupportedError. */
  checkNotify(what: string, supported: (c: ConnectionInfo['capabilities']) => boolean, need: string): void {
    if (!this.initDone || !this.conn) throw new NotifyNotSupportedError(what, 'INIT has not been negotiated yet');
    if (!supported(this.conn.capabilities)) {
      throw new NotifyNotSupportedError(what, `${need} (negotiated 7.${this.conn.minor})`);
    }
  }

  /** @internal Writes a notification after in-flight requests on `nodes` are answered. */
  async notify(buf: Buffer, nodes: number[], what: string): Promise<boolean> {
    // After the reply being produced right now (if called from inside a handler).
    await nextTurn();
    const pending: Array<Promise<void>> = [];
    for (const ctx of this.inflight.values()) {
      if (nodes.includes(ctx.nodeId)) {
        pending.push(
          new Promise<void>((r) => {
            (ctx.waiters ??= []).push(r);
          }),
        );
      }
    }
    if (pending.length > 0) await Promise.all(pending);
    if (this.state === 'ended' || this.destroyed || this.channel.closed) return false;
    try {
      await this.channel.writeNotify(buf);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        if (this.logger.isLevelEnabled('debug')) this.logger.debug(`notify ${what}: not cached (ENOENT)`);
        return true;
      }
      if (code === 'ENODEV' || code === 'ECONNABORTED' || code === 'EBADF') return false;
      this.logger.warn({ err, notification: what }, 'FUSE notification refused by the kernel');
      return false;
    }
    if (this.logger.isLevelEnabled('debug')) this.logger.debug(`notify ${what}: delivered`);
    return true;
  }
}

class SessionNotifier implements Notifier {
  constructor(private readonly s: FuseSession) {}

  get supports(): NotifySupport {
    return this.s.notifySupport();
  }

  invalEntry(parent: number, name: string): Promise<boolean> {
    this.s.checkNotify('INVAL_ENTRY', (c) => c.notifyInvalEntry, 'needs protocol 7.12');
    const buf = encodeNotifyInvalEntry(parent, name, 0);
    return this.s.notify(buf, [parent], `INVAL_ENTRY n${parent} ${JSON.stringify(name)}`);
  }

  expireEntry(parent: number, name: string): Promise<boolean> {
    this.s.checkNotify('INVAL_ENTRY(EXPIRE_ONLY)', (c) => c.notifyExpireOnly, 'the kernel did not offer FUSE_HAS_EXPIRE_ONLY');
    const buf = encodeNotifyInvalEntry(parent, name, FUSE_EXPIRE_ONLY);
    return this.s.notify(buf, [parent], `EXPIRE_ENTRY n${parent} ${JSON.stringify(name)}`);
  }

  invalInode(nodeId: number, off = 0, len = 0): Promise<boolean> {
    this.s.checkNotify('INVAL_INODE', (c) => c.notifyInvalInode, 'needs protocol 7.12');
    const buf = encodeNotifyInvalInode(nodeId, off, len);
    return this.s.notify(buf, [nodeId], `INVAL_INODE n${nodeId} ${off}+${len}`);
  }

  delete(parent: number, child: number, name: string): Promise<boolean> {
    this.s.checkNotify('DELETE', (c) => c.notifyDelete, 'needs protocol 7.18');
    const buf = encodeNotifyDelete(parent, child, name);
    return this.s.notify(buf, [parent, child], `DELETE n${parent} n${child} ${JSON.stringify(name)}`);
  }

  pollWakeup(kh: number): Promise<boolean> {
    this.s.checkNotify('POLL', () => true, 'needs protocol 7.11');
    return this.s.notify(encodeNotifyPollWakeup(kh), [], `POLL kh${kh}`);
  }
}

/** One-line description of a request for debug logs: `LOOKUP n1 ["x"]`. */
export function describeRequest(req: FuseRequest): string {
  const h = req.h;
  const op = opcodeName(h.opcode);
  switch (req.kind) {
    case 'LOOKUP':
      return `${op} n${h.nodeId} [${JSON.stringify(req.name)}]`;
    case 'GETATTR':
      return `${op} n${h.nodeId}${req.fh !== undefined ? ` fh${req.fh}` : ''}`;
    case 'FORGET':
      return `${op} n${h.nodeId} x${req.nlookup}`;
    case 'BATCH_FORGET': {
      const shown = req.items.slice(0, 8).map((i) => `n${i.nodeId}x${i.nlookup}`);
      if (req.items.length > 8) shown.push(`+${req.items.length - 8}`);
      return `${op} ${req.items.length} [${shown.join(' ')}]`;
    }
    case 'INIT':
      return `${op} ${req.init.major}.${req.init.minor} ra${req.init.maxReadahead} [${describeInitFlags(req.init.flags, req.init.flags2).join(' ')}]`;
    case 'OPEN':
    case 'OPENDIR':
      return `${op} n${h.nodeId} flags 0x${req.flags.toString(16)}`;
    case 'READ':
    case 'READDIR':
    case 'READDIRPLUS':
      return `${op} n${h.nodeId} fh${req.read.fh} off${req.read.offset} size${req.read.size}`;
    case 'RELEASE':
    case 'RELEASEDIR':
    case 'FLUSH':
      return `${op} n${h.nodeId} fh${req.fh}`;
    case 'GETXATTR':
      return `${op} n${h.nodeId} [${JSON.stringify(req.name)}] size${req.size}`;
    case 'LISTXATTR':
      return `${op} n${h.nodeId} size${req.size}`;
    case 'ACCESS':
      return `${op} n${h.nodeId} mask${req.mask}`;
    case 'INTERRUPT':
      return `${op} u${req.target}`;
    case 'POLL':
      return `${op} n${h.nodeId} fh${req.fh} events 0x${req.events.toString(16)}`;
    case 'OTHER':
      return `${op} n${h.nodeId} (${req.bodyLength} bytes)`;
    default:
      return `${op} n${h.nodeId}`;
  }
}
