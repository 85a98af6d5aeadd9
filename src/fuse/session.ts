/**
 * One FUSE connection's lifecycle and the requests in flight on it: run, stop, detach (hand-over),
 * resume (take-over), the read loop and dispatch, INTERRUPT, DESTROY. What differs per opcode is a
 * row of the opcode table (opcodes.ts); INIT is negotiated by init.ts, replies are written by
 * replies.ts, notifications sent by session-notifier.ts.
 *
 * Threading model: everything runs on the event loop. Requests arrive synchronously from the
 * channel (one read = one request); a handler that returns a plain value is answered before the
 * next request is looked at (no microtask, no allocation beyond the request's own objects); one
 * that returns a Promise is answered when it settles, while other requests go on. Each reply is
 * one write. Notifications are written off-loop (see device.ts).
 */
import type { Logger } from 'pino';
import {
  Errno,
  FUSE_KERNEL_MINOR_VERSION,
  FUSE_KERNEL_VERSION,
  InHeader,
  InitFlags2,
  NotifyCode,
  NO_REPLY_OPCODES,
  Opcode,
  OutHeader,
  describeInitFlags,
  opcodeName,
} from './abi.js';
import {
  FuseDecodeError,
  decodeInHeader,
  encodeInitOut,
  encodeNotifyBare,
  readU64,
  readUnique,
  readView,
  type InitRequest,
  type RequestHeader,
} from './codec.js';
import { RepeatedErrorLog } from '../util/repeated-error-log.js';
import type { ChannelSink, FuseChannel } from './device.js';
import { negotiateInit, type InitWishes } from './init.js';
import { describeRequest, fastRow, isFsRow, opcodeRow, type FsRow, type SessionOps } from './opcodes.js';
import { Replies, type ReplyFn } from './replies.js';
import { Ctx, isThenable } from './request-context.js';
import { SessionNotifier } from './session-notifier.js';
import { FuseError, type ConnectionInfo, type LowLevelFileSystem, type Notifier } from './types.js';

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
  /** Encodes and writes every reply; gives back references a reply could not deliver. */
  private readonly replies: Replies;
  /** What INIT asks of the kernel (the options that concern it). */
  private readonly wishes: InitWishes;
  private readonly opts: Required<Omit<SessionOptions, 'unmount' | 'resume'>> & Pick<SessionOptions, 'unmount' | 'resume'>;
  private conn: ConnectionInfo | undefined;
  private initDone = false;
  private destroyed = false;
  private state: 'new' | 'running' | 'stopping' | 'ended' = 'new';
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
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
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
    const o = this.opts;
    this.wishes = { entryTimeout: o.entryTimeout, attrTimeout: o.attrTimeout, readdirplus: o.readdirplus, exportSupport: o.exportSupport, invalData: o.invalData, maxWrite: o.maxWrite };
    this.logger = this.opts.debug ? logger.child({}, { level: 'debug' }) : logger;
    this.failures = new RepeatedErrorLog(this.logger);
    this.replies = new Replies(fs, channel, this.logger, this.stats, () => this.state === 'ended');
    this.notifier = new SessionNotifier({
      get connection() {
        return self.conn;
      },
      get initialised() {
        return self.initDone;
      },
      get open() {
        return !(self.state === 'ended' || self.destroyed);
      },
      channel,
      logger: this.logger,
      answered: (nodes) => this.answered(nodes),
    });
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
    this.replies.minor = conn.minor;
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
    for (const ctx of this.inflight.values()) ctx.wake();
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
        if (unique !== 0 && !NO_REPLY_OPCODES.has(opcode)) this.replies.sendError(unique, Errno.EIO);
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
    const dbg = this.logger.isLevelEnabled('debug');
    this.replies.dbg = dbg;
    if (!dbg && this.initDone && !this.destroyed && this.fastPath(buf, start, end)) return;
    let h: RequestHeader;
    let row;
    let args: unknown;
    try {
      h = decodeInHeader(buf, start, end);
      row = opcodeRow(h.opcode);
      args = row.decode(buf, start + InHeader.SIZE, start + h.len - h.extLen, h.unique, h.opcode);
    } catch (err) {
      this.stats.malformed++;
      const opcode = buf.readUInt32LE(start + InHeader.opcode);
      const e = err instanceof FuseDecodeError ? err : new FuseDecodeError(String(err), Errno.EIO);
      this.logger.warn({ opcode: opcodeName(opcode), err: e.message }, 'malformed FUSE request');
      if (e.unique !== undefined && e.unique !== 0 && !NO_REPLY_OPCODES.has(opcode)) this.replies.sendError(e.unique, e.errno);
      return;
    }
    if (dbg) this.logger.debug(`rx ${h.unique}: ${describeRequest(h, row, args)}`);
    if (h.opcode !== Opcode.INTERRUPT && h.unique > this.maxUnique) this.maxUnique = h.unique;

    if (isFsRow(row)) {
      if (!this.initDone) return void this.refuse(h, Errno.EIO);
      if (this.destroyed) return void this.replies.sendError(h.unique, Errno.ENODEV);
      this.serve(row, new Ctx(h.unique, h.opcode, h.nodeId, h.uid, h.gid, h.pid), args);
      return;
    }
    if (!this.initDone && row.beforeInit !== true) return void this.refuse(h, Errno.EIO);
    if (this.destroyed && row.afterDestroy !== true) return void this.replies.sendError(h.unique, Errno.ENODEV);
    row.session(this.ops, h, args);
  }

  /**
   * The stat path (rows marked fast: LOOKUP, GETATTR) read from the buffer without a header object.
   * Returns false (having done nothing) for anything else, or anything unusual, which then takes
   * the general path.
   */
  private fastPath(buf: Buffer, start: number, end: number): boolean {
    const dv = readView(buf);
    const opcode = dv.getUint32(start + InHeader.opcode, true);
    const row = fastRow(opcode);
    if (row === undefined || dv.getUint16(start + InHeader.total_extlen, true) !== 0) return false;
    const unique = readUnique(buf, start + InHeader.unique);
    let args: unknown;
    try {
      args = row.decode(buf, start + InHeader.SIZE, end, unique, opcode);
    } catch {
      return false; // the general path answers and logs it
    }
    if (unique > this.maxUnique) this.maxUnique = unique;
    const ctx = new Ctx(unique, opcode, readU64(buf, start + InHeader.nodeid), dv.getUint32(start + InHeader.uid, true), dv.getUint32(start + InHeader.gid, true), dv.getUint32(start + InHeader.pid, true));
    this.serve(row, ctx, args);
    return true;
  }

  /** Calls the row's handler; answers now if it returned a value, later if it returned a Promise. */
  private serve(row: FsRow<unknown, unknown>, ctx: Ctx, args: unknown): void {
    let r: unknown;
    try {
      r = row.call(this.fs, ctx, args);
    } catch (e) {
      this.fail(ctx, e);
      return;
    }
    // Answered now: nothing can wait for a request that was never in flight.
    if (!isThenable(r)) row.reply(this.replies, ctx, r);
    else this.later(ctx, r, row.reply);
  }

  private later(ctx: Ctx, p: PromiseLike<unknown>, reply: ReplyFn<never>): void {
    this.inflight.set(ctx.unique, ctx);
    const observer = this.observer;
    const arrivedAt = this.arrivedAt;
    this.deferred = true;
    p.then(
      (v) => {
        this.inflight.delete(ctx.unique);
        this.complete(ctx, reply, v);
        observer?.(ctx.opcode, (performance.now() - arrivedAt) / 1000);
      },
      (e: unknown) => {
        this.inflight.delete(ctx.unique);
        this.fail(ctx, e);
        observer?.(ctx.opcode, (performance.now() - arrivedAt) / 1000);
      },
    );
  }

  private complete(ctx: Ctx, reply: ReplyFn<never>, v: unknown): void {
    this.replies.dbg = this.logger.isLevelEnabled('debug');
    try {
      reply(this.replies, ctx, v as never);
    } finally {
      ctx.wake();
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
    this.replies.sendError(ctx.unique, errno);
    ctx.wake();
  }

  /** Answers `errno`, unless the opcode takes no reply. */
  private refuse(h: RequestHeader, errno: number): void {
    if (!NO_REPLY_OPCODES.has(h.opcode)) this.replies.sendError(h.unique, errno);
  }

  /** Resolves once the requests in flight on any of `nodes` are answered (for notifications). */
  private answered(nodes: readonly number[]): Promise<void> | undefined {
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
    return pending.length > 0 ? Promise.all(pending).then(() => undefined) : undefined;
  }

  // -------------------------------------------------------------------------------------------
  // The requests the session answers itself: INIT, INTERRUPT, DESTROY, FORGET
  // -------------------------------------------------------------------------------------------

  /** What the opcode table's session rows call. */
  private readonly ops: SessionOps = {
    init: (unique, init) => this.doInit(unique, init),
    interrupt: (unique, target) => this.doInterrupt(unique, target),
    destroy: (h) => this.doDestroy(h),
    forget: (nodeId, nlookup) => this.replies.forget(nodeId, nlookup),
    refuse: (h, errno) => this.refuse(h, errno),
    warn: (fields, message) => this.logger.warn(fields, message),
  };

  private doInit(unique: number, k: InitRequest): void {
    if (this.initDone) {
      this.logger.warn('second INIT on an initialised connection');
      this.replies.sendError(unique, Errno.EIO);
      return;
    }
    const o = this.opts;
    const outcome = negotiateInit(k, this.wishes);
    if (outcome.kind === 'refuse') {
      this.logger.error({ kernel: `${k.major}.${k.minor}` }, 'unsupported FUSE protocol version');
      this.replies.sendError(unique, outcome.errno);
      return;
    }
    const out = this.replies.out;
    const n = encodeInitOut(out, OutHeader.SIZE, outcome.reply, outcome.replyMinor);
    if (outcome.kind === 'retry') {
      // Answer with our major only; the kernel sends a new INIT with 7.x.
      this.logger.info({ kernel: `${k.major}.${k.minor}` }, 'kernel speaks a newer FUSE major; asking for 7');
      this.replies.send(unique, n, () => `OK ${FUSE_KERNEL_VERSION}.${FUSE_KERNEL_MINOR_VERSION} (major fallback)`, undefined);
      return;
    }
    const conn = outcome.conn;
    const { flags, flags2, minor } = conn;
    this.replies.minor = minor;
    this.conn = conn;
    const ok = this.replies.send(unique, n, () => `OK ${FUSE_KERNEL_VERSION}.${minor} [${describeInitFlags(flags, flags2).join(' ')}]`, undefined);
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
      this.fs.init?.(conn, this.notifier);
    } catch (err) {
      this.logger.error({ err }, 'init() of the filesystem failed; stopping');
      this.rejectReady(err instanceof Error ? err : new Error(String(err)));
      void this.stop('init failed');
      return;
    }
    this.resolveReady(conn);
  }

  private doInterrupt(unique: number, target: number): void {
    const ctx = this.inflight.get(target);
    if (ctx) {
      if (this.replies.dbg) this.logger.debug(`INTERRUPT ${target}: aborting the handler's signal`);
      ctx.interrupt();
      return;
    }
    if (target > this.maxUnique) {
      // Not read yet (cannot happen with one reader, but the kernel's rule is: answer EAGAIN and it
      // will send the INTERRUPT again).
      this.replies.sendError(unique, Errno.EAGAIN);
      return;
    }
    if (this.replies.dbg) this.logger.debug(`INTERRUPT ${target}: already answered; ignored`);
  }

  private doDestroy(h: RequestHeader): void {
    const ctx = new Ctx(h.unique, h.opcode, h.nodeId, h.uid, h.gid, h.pid);
    this.destroyed = true;
    const done = (): void => {
      this.replies.empty(ctx);
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
}
