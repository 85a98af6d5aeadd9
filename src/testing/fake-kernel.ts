/**
 * The kernel's side of one FUSE connection, in memory. Requests on node ids are encoded as the
 * kernel encodes them, pushed through a MemoryChannel into the real FuseSession, and its replies
 * are decoded back into values, or into FsErrors carrying the errno a mount's caller gets.
 *
 * None of the session's rules is repeated here (EROFS gates, defaults, READDIR sizes, references
 * given back): the session in src/fuse answers, so the kit's results are a mount's by construction.
 * What is here is the kernel's own part: numbering requests, the open-file table (a descriptor →
 * the server's fh), EBADF/EISDIR/ENOTDIR on descriptors, and ENOTCONN once the connection is gone.
 */
import type { Logger } from 'pino';
import { Errno, FUSE_POLL_SCHEDULE_NOTIFY, O_RDONLY, Opcode, OutHeader, POLLIN } from '../fuse/abi.js';
import type { FuseChannel } from '../fuse/device.js';
import { FuseSession, type SessionOptions } from '../fuse/session.js';
import {
  FuseError,
  type AttrReply,
  type ConnectionInfo,
  type DirEntry,
  type Entry,
  type LowLevelFileSystem,
  type Notifier,
  type NotifySupport,
  type OpenReply,
  type RequestContext,
  type StatfsReply,
} from '../fuse/types.js';
import { silentLogger } from '../log.js';
import { FsError } from './errors.js';
import {
  KERNEL_FLAGS2_745,
  KERNEL_FLAGS_745,
  decodeAttrOut,
  decodeDirents,
  decodeEntryOut,
  decodeOpenReply,
  decodeOutHeader,
  decodePollOut,
  decodeStatfsOut,
  encodeRequest,
  requestBody,
} from './kernel-codec.js';
import { MemoryChannel } from './memory-channel.js';
import { ALL_NOTIFICATIONS, RecordingNotifier } from './recording-notifier.js';

/** Who sends the requests: the uid, gid and pid FUSE reports with each. */
export interface Caller {
  /** The caller's uid (default 0). */
  uid: number;
  /** The caller's gid (default 0). */
  gid: number;
  /** The caller's pid (default this process). */
  pid: number;
}

/** Options of a FakeKernel: timeouts, notifications, logger, caller, request sizes. */
export interface FakeKernelOptions {
  /** Entry timeout (s) the mount would have been configured with. Default 1. */
  entryTimeout?: number;
  /** Attribute timeout (s). Default 1. */
  attrTimeout?: number;
  /** Notifications the connection supports. Default all. */
  notify?: Partial<NotifySupport>;
  /** The session's logger (handler failures answered EIO, throwing forgets). Default silent. */
  logger?: Logger;
  /** Who the requests come from (RequestContext uid/gid/pid). Default uid 0, gid 0, this process. */
  caller?: Partial<Caller>;
  /** Bytes a READDIR(PLUS) request asks for when the caller does not say. Default 4096 (a page, as the kernel asks). */
  readdirSize?: number;
  /** Bytes a READ asks for when the caller does not say. Default 131072. */
  readSize?: number;
}

/** An open file or directory (the `fh` is the kernel's, like a descriptor; the server's is kept inside). */
export interface OpenFile extends OpenReply {
  /** The node it was opened on. */
  readonly node: number;
  /** True for OPENDIR handles. */
  readonly dir: boolean;
  /** The open(2) flags. */
  readonly flags: number;
}

/** Options of readdir and readdirPage: READDIRPLUS or READDIR, and the bytes per request. */
export interface ReaddirOptions {
  /** READDIRPLUS: every entry but "." and ".." is one lookup the caller now holds (forget() it). Default false. */
  plus?: boolean;
  /** Bytes per READDIR(PLUS) request. Default the kernel's readdirSize (4096). */
  size?: number;
}

/** Builds the session a FakeKernel talks to: the container's SessionFactory, or FuseSession's constructor. */
export type SessionMaker = (fs: LowLevelFileSystem, channel: FuseChannel, options: SessionOptions) => FuseSession;

interface Handle {
  readonly node: number;
  /** The server's fh. */
  readonly fh: number;
  readonly dir: boolean;
  readonly flags: number;
}

interface Pending {
  readonly syscall: string;
  resolve(body: Buffer): void;
  reject(err: FsError): void;
}

/** Linux's XATTR_SIZE_MAX: the buffer getxattr(2) and listxattr(2) may ask for. */
const XATTR_SIZE_MAX = 65536;

/** The request each mutating call sends (the session answers every one of them EROFS). */
const MUTATIONS: Readonly<Record<string, number>> = {
  write: Opcode.WRITE,
  create: Opcode.CREATE,
  mkdir: Opcode.MKDIR,
  mknod: Opcode.MKNOD,
  unlink: Opcode.UNLINK,
  rmdir: Opcode.RMDIR,
  rename: Opcode.RENAME,
  symlink: Opcode.SYMLINK,
  link: Opcode.LINK,
  setattr: Opcode.SETATTR,
  setxattr: Opcode.SETXATTR,
  removexattr: Opcode.REMOVEXATTR,
};

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && typeof v === 'object' && typeof (v as { then?: unknown }).then === 'function';
}

/** The connection's capabilities, less the notifications this (test) connection is told to lack. */
function narrowed(conn: ConnectionInfo, n: NotifySupport): ConnectionInfo {
  const c = conn.capabilities;
  return Object.freeze({
    ...conn,
    capabilities: Object.freeze({
      ...c,
      notifyInvalInode: c.notifyInvalInode && n.invalInode,
      notifyInvalEntry: c.notifyInvalEntry && n.invalEntry,
      notifyDelete: c.notifyDelete && n.delete,
      notifyExpireOnly: c.notifyExpireOnly && n.expireOnly,
    }),
  });
}

/** The kernel's side of a FUSE connection to the real FuseSession, in process, over any LowLevelFileSystem. */
export class FakeKernel {
  /** Records the invalidations the filesystem sends (what the kernel is told), then lets the session send them. */
  readonly notifier: RecordingNotifier;
  /** The real FUSE session the requests go to. */
  readonly server: FuseSession;
  /** Who the next requests come from; assign to switch users (a test of what each caller sees). */
  caller: Caller;
  private conn: ConnectionInfo;
  private readonly channel: MemoryChannel;
  private readonly readdirSize: number;
  private readonly readSize: number;
  private readonly pending = new Map<number, Pending>();
  /** Exceptions behind EIO answers, by request: kept as the FsError's cause. */
  private readonly failures = new Map<number, unknown>();
  private readonly handles = new Map<number, Handle>();
  /** The filesystem answered FLUSH with ENOSYS: close(2) no longer sends it (fc->no_flush). */
  private noFlush = false;
  private nextHandle = 1;
  private unique = 0;
  private ended = false;
  private destroying: Promise<void> | null = null;
  private readonly ran: Promise<void>;

  constructor(
    /** The filesystem the session serves (the handle tree, or any LowLevelFileSystem). */
    readonly fs: LowLevelFileSystem,
    options: FakeKernelOptions = {},
    makeSession?: SessionMaker,
  ) {
    this.caller = { uid: 0, gid: 0, pid: process.pid, ...options.caller };
    this.readdirSize = options.readdirSize ?? 4096;
    this.readSize = options.readSize ?? 131072;
    const support: NotifySupport = { ...ALL_NOTIFICATIONS, ...options.notify };
    let recorder: RecordingNotifier | undefined;
    let conn: ConnectionInfo | undefined;
    let initError: unknown;
    // What the session calls: the filesystem, seen through two windows. init() gets the recording
    // notifier (forwarding to the session's); a handler's exception is kept as the EIO's cause.
    const served = new Proxy(fs, {
      get: (target, prop) => {
        const v: unknown = Reflect.get(target, prop, target);
        if (typeof v !== 'function') return v;
        const method = v as (...args: unknown[]) => unknown;
        if (prop === 'init') {
          return (c: ConnectionInfo, n: Notifier) => {
            conn = narrowed(c, support);
            recorder = new RecordingNotifier(options.notify, n);
            try {
              return method.call(target, conn, recorder);
            } catch (err) {
              initError = err;
              throw err;
            }
          };
        }
        if (prop === 'forget' || prop === 'destroy') return method.bind(target);
        return (ctx: RequestContext, ...rest: unknown[]) => this.watch(ctx, () => method.call(target, ctx, ...rest));
      },
    });
    this.channel = new MemoryChannel({ record: false, kernel: { reply: (b) => this.onReply(b), notification: () => undefined } });
    const sessionOptions: SessionOptions = {
      ...(options.entryTimeout === undefined ? {} : { entryTimeout: options.entryTimeout }),
      ...(options.attrTimeout === undefined ? {} : { attrTimeout: options.attrTimeout }),
    };
    this.server = makeSession ? makeSession(served, this.channel, sessionOptions) : new FuseSession(served, this.channel, options.logger ?? silentLogger(), sessionOptions);
    this.ran = this.server.run();
    this.ran.catch(() => undefined);
    // INIT as a 6.18 kernel sends it: the session answers it, and runs fs.init, in this very turn.
    void this.request(Opcode.INIT, 0, requestBody.init({ flags: KERNEL_FLAGS_745, flags2: KERNEL_FLAGS2_745 }), 'init').catch(() => undefined);
    if (initError !== undefined) throw initError;
    this.conn = conn ?? this.server.connection!;
    this.notifier = recorder ?? new RecordingNotifier(options.notify);
  }

  /** What INIT negotiated, as the filesystem was told it. */
  get connection(): ConnectionInfo {
    return this.conn;
  }

  /** False once destroy() ran: every request then answers ENOTCONN, like a mount whose server is gone. */
  get connected(): boolean {
    return !this.ended;
  }

  /** Handles open now. */
  get openHandles(): number {
    return this.handles.size;
  }

  // ---- requests -----------------------------------------------------------------------------

  /** LOOKUP. A positive entry is one reference the caller holds (give it back with forget). A negative entry answers ENOENT, as the caller of the syscall sees it. */
  async lookup(parent: number, name: string): Promise<Entry> {
    // The kernel never sends an empty name: an empty path is ENOENT before any lookup.
    if (name === '') throw new FsError(this.ended ? Errno.ENOTCONN : Errno.ENOENT, 'lookup');
    const e = decodeEntryOut(await this.request(Opcode.LOOKUP, parent, requestBody.lookup(name), 'lookup'), 0);
    if (e.nodeId === 0) throw new FsError(Errno.ENOENT, 'lookup');
    return e;
  }

  /** FORGET: the kernel drops `nlookup` references of `node`. Never fails; nothing is sent once the connection is gone. */
  forget(node: number, nlookup = 1): void {
    if (this.ended) return;
    this.channel.push(encodeRequest({ opcode: Opcode.FORGET, unique: (this.unique += 2), nodeId: node, ...this.caller }, requestBody.forget(nlookup)));
  }

  /** GETATTR of a node (by open file when fh is given). */
  async getattr(node: number, fh?: number): Promise<AttrReply> {
    const serverFh = fh === undefined ? undefined : this.handle(fh, 'getattr').fh;
    return decodeAttrOut(await this.request(Opcode.GETATTR, node, requestBody.getattr(serverFh), 'getattr'), 0);
  }

  /** OPEN. Write access or O_TRUNC is EROFS before the filesystem is asked (unless it allows write opens). */
  async open(node: number, flags = O_RDONLY): Promise<OpenFile> {
    return this.opened(await this.request(Opcode.OPEN, node, requestBody.open(flags), 'open'), node, flags, false);
  }

  /** OPENDIR. */
  async opendir(node: number, flags = O_RDONLY): Promise<OpenFile> {
    return this.opened(await this.request(Opcode.OPENDIR, node, requestBody.open(flags), 'opendir'), node, flags, true);
  }

  /** READ of an open file. At most `size` bytes; fewer means end of file. */
  async read(fh: number, offset = 0, size = this.readSize): Promise<Buffer> {
    const h = this.handle(fh, 'read');
    if (h.dir) throw new FsError(Errno.EISDIR, 'read');
    return this.request(Opcode.READ, h.node, requestBody.read({ fh: h.fh, offset, size }), 'read');
  }

  /**
   * One READDIR or READDIRPLUS request on an open directory: the entries after cookie `offset`
   * that fit in `size` bytes (the session gives back the references of those that did not).
   */
  async readdirPage(fh: number, offset: number, options: ReaddirOptions = {}): Promise<DirEntry[]> {
    const h = this.handle(fh, 'readdir');
    if (!h.dir) throw new FsError(Errno.ENOTDIR, 'readdir');
    const plus = options.plus ?? false;
    const op = plus ? Opcode.READDIRPLUS : Opcode.READDIR;
    const body = await this.request(op, h.node, requestBody.read({ fh: h.fh, offset, size: options.size ?? this.readdirSize }), 'readdir');
    return decodeDirents(body, 0, body.length, plus).map((d) => {
      // The wire carries DT_* (st_mode >> 12); a READDIRPLUS entry of node 0 is a name only.
      const out: DirEntry = { name: d.name, ino: d.ino, type: d.type << 12, offset: d.offset };
      if (d.entry !== undefined && d.entry.nodeId !== 0) out.entry = d.entry;
      return out;
    });
  }

  /**
   * Every entry of a directory: OPENDIR, READDIR(PLUS) from cookie 0 following each reply's last
   * cookie until an empty reply, RELEASEDIR. With `plus`, each entry but "." and ".." is a
   * reference the caller holds, as the kernel would (give them back with forget()).
   */
  async readdir(node: number, options: ReaddirOptions = {}): Promise<DirEntry[]> {
    const dir = await this.opendir(node);
    const all: DirEntry[] = [];
    try {
      let offset = 0;
      for (;;) {
        const batch = await this.readdirPage(dir.fh, offset, options);
        if (batch.length === 0) break;
        all.push(...batch);
        offset = batch[batch.length - 1]!.offset;
      }
    } finally {
      await this.release(dir.fh);
    }
    return all;
  }

  /** FLUSH (as close(2) sends it) then RELEASE; RELEASEDIR for a directory. */
  async release(fh: number): Promise<void> {
    const h = this.handle(fh, 'release');
    this.handles.delete(fh);
    if (h.dir) {
      await this.request(Opcode.RELEASEDIR, h.node, requestBody.release(h.fh, h.flags), 'releasedir');
      return;
    }
    let flushError: FsError | undefined;
    if (!this.noFlush) {
      await this.request(Opcode.FLUSH, h.node, requestBody.flush(h.fh), 'flush').catch((e: FsError) => {
        // As the kernel does: ENOSYS means the filesystem has no flush; never sent again.
        if (e.errno === Errno.ENOSYS) this.noFlush = true;
        else flushError = e;
      });
    }
    await this.request(Opcode.RELEASE, h.node, requestBody.release(h.fh, h.flags), 'release');
    if (flushError !== undefined) throw flushError;
  }

  /** READLINK (ENOSYS from a filesystem without it). */
  async readlink(node: number): Promise<string> {
    return (await this.request(Opcode.READLINK, node, Buffer.alloc(0), 'readlink')).toString('utf8');
  }

  /** STATFS. */
  async statfs(node = 1): Promise<StatfsReply> {
    return decodeStatfsOut(await this.request(Opcode.STATFS, node, Buffer.alloc(0), 'statfs'), 0);
  }

  /** ACCESS. */
  async access(node: number, mask: number): Promise<void> {
    await this.request(Opcode.ACCESS, node, requestBody.access(mask), 'access');
  }

  /** GETXATTR with the largest buffer getxattr(2) may pass (ENOSYS from a filesystem without it; a mount's caller sees EOPNOTSUPP). */
  async getxattr(node: number, name: string): Promise<Buffer> {
    return this.request(Opcode.GETXATTR, node, requestBody.getxattr(XATTR_SIZE_MAX, name), 'getxattr');
  }

  /** LISTXATTR, as getxattr. */
  async listxattr(node: number): Promise<string[]> {
    const body = await this.request(Opcode.LISTXATTR, node, requestBody.listxattr(XATTR_SIZE_MAX), 'listxattr');
    return body.length === 0 ? [] : body.toString('utf8').split('\0').slice(0, -1);
  }

  /** A mutating request (`syscall`: write, mkdir, unlink, setattr, create, rename, ...) on `node`: the session answers EROFS. */
  async mutate(syscall: string, node = 1): Promise<never> {
    const opcode = MUTATIONS[syscall];
    if (opcode === undefined) throw new TypeError(`mutate: no FUSE request for "${syscall}"`);
    await this.request(opcode, node, Buffer.alloc(0), syscall);
    throw new Error(`${syscall} succeeded on a read-only filesystem`);
  }

  /**
   * POLL of an open file, as the kernel sends it for poll(2)/epoll with a waiter: the ready events,
   * and the file's poll handle (kh), which the filesystem wakes through notifier.pollWakeup(kh)
   * (recorded as { op: 'pollWakeup', kh }). kh is the kernel's fh. A filesystem without poll is
   * always ready, as the kernel assumes.
   */
  async poll(fh: number, events = POLLIN): Promise<number> {
    const h = this.handle(fh, 'poll');
    return decodePollOut(await this.request(Opcode.POLL, h.node, requestBody.poll(h.fh, fh, FUSE_POLL_SCHEDULE_NOTIFY, events), 'poll'), 0);
  }

  /** The connection ends: DESTROY (the filesystem's destroy(), once), then the device closes; later requests answer ENOTCONN. */
  destroy(): Promise<void> {
    if (this.destroying !== null) return this.destroying;
    const destroyed = this.request(Opcode.DESTROY, 0, Buffer.alloc(0), 'destroy');
    this.ended = true;
    this.handles.clear();
    this.destroying = (async () => {
      await destroyed.catch(() => undefined);
      this.channel.end();
      await this.ran;
      // Requests still unanswered when the connection went: the kernel fails them.
      for (const p of this.pending.values()) p.reject(new FsError(Errno.ENOTCONN, p.syscall));
      this.pending.clear();
    })();
    return this.destroying;
  }

  // ---- the wire -----------------------------------------------------------------------------

  /** Sends one request; its reply body, or an FsError with the reply's errno. */
  private request(opcode: number, nodeId: number, body: Buffer, syscall: string): Promise<Buffer> {
    if (this.ended) return Promise.reject(new FsError(Errno.ENOTCONN, syscall));
    const unique = (this.unique += 2);
    const { uid, gid, pid } = this.caller;
    return new Promise<Buffer>((resolve, reject) => {
      this.pending.set(unique, { syscall, resolve, reject });
      this.channel.push(encodeRequest({ opcode, unique, nodeId, uid, gid, pid }, body));
    });
  }

  private onReply(buf: Buffer): void {
    const h = decodeOutHeader(buf);
    const p = this.pending.get(h.unique);
    const cause = this.failures.get(h.unique);
    this.failures.delete(h.unique);
    if (p === undefined) return;
    this.pending.delete(h.unique);
    if (h.errno === 0) p.resolve(buf.subarray(OutHeader.SIZE));
    else p.reject(new FsError(h.errno, p.syscall, h.errno === Errno.EIO && cause !== undefined ? { cause } : {}));
  }

  /** Runs a handler for the session, noting an exception that is not a FuseError (answered EIO). */
  private watch(ctx: RequestContext, handler: () => unknown): unknown {
    const note = (err: unknown): never => {
      if (!(err instanceof FuseError) && ctx !== null && typeof ctx === 'object' && typeof ctx.unique === 'number') this.failures.set(ctx.unique, err);
      throw err;
    };
    let r: unknown;
    try {
      r = handler();
    } catch (err) {
      note(err);
    }
    return isThenable(r) ? r.then(undefined, note) : r;
  }

  private opened(body: Buffer, node: number, flags: number, dir: boolean): OpenFile {
    const reply = decodeOpenReply(body, 0);
    const fh = this.nextHandle++;
    this.handles.set(fh, { node, fh: reply.fh, dir, flags });
    return { ...reply, fh, node, dir, flags };
  }

  private handle(fh: number, syscall: string): Handle {
    if (this.ended) throw new FsError(Errno.ENOTCONN, syscall);
    const h = this.handles.get(fh);
    if (h === undefined) throw new FsError(Errno.EBADF, syscall);
    return h;
  }
}
