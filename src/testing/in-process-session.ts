/**
 * The FUSE session's rules without a kernel: requests on node ids go to a LowLevelFileSystem
 * the way src/fuse/session.ts dispatches them, and come back as values or FsErrors carrying the
 * errno the mount would have answered.
 *
 * Kept from the session:
 * - OPEN with write access or O_TRUNC is EROFS (unless the filesystem allows write opens); every
 *   mutating request (WRITE, MKDIR, UNLINK, SETATTR, CREATE, ...) is EROFS; READ/READDIR/READLINK
 *   without a handler are ENOSYS; OPEN/OPENDIR without a handler give fh 0; STATFS, ACCESS,
 *   GETXATTR, LISTXATTR have the session's defaults.
 * - A FuseError answers its errno; any other exception answers EIO (kept as the error's cause).
 * - Replies are encoded with the real codec into a scratch buffer, so a reply the session could
 *   not send is EIO here too, and its references are given back (forget(node, 1)).
 * - READDIR(PLUS): only the entries that fit in the kernel's `size` are delivered; the
 *   references of READDIRPLUS entries that did not fit are given back, as the session does.
 * - init(conn, notifier) is called at construction, as after INIT; destroy() once at the end.
 */
import type { Logger } from 'pino';
import { DEFAULT_POLLMASK, Errno, FUSE_KERNEL_MINOR_VERSION, O_ACCMODE, O_RDONLY, O_TRUNC, Opcode, POLLIN, W_OK } from '../fuse/abi.js';
import { encodeAttrOut, encodeDirent, encodeEntryOut, encodeOpenOut, encodeStatfsOut } from '../fuse/codec.js';
import type {
  AttrReply,
  ConnectionInfo,
  DirEntry,
  Entry,
  LowLevelFileSystem,
  NotifySupport,
  OpenReply,
  RequestContext,
  StatfsReply,
} from '../fuse/types.js';
import { silentLogger } from '../log.js';
import { FsError, toFsError } from './errors.js';
import { connectionInfo, RecordingNotifier } from './recording-notifier.js';

/** The session's reply buffer less the out header: the most a READDIR reply can carry. */
const MAX_READDIR_SIZE = 256 * 1024 + 4096 - 16;
/** What the session answers to STATFS when the filesystem has no handler. */
const DEFAULT_STATFS: StatfsReply = { blocks: 0, bfree: 0, bavail: 0, files: 0, ffree: 0, bsize: 512, namelen: 255, frsize: 0 };

/** Who sends the requests: the uid, gid and pid FUSE reports with each. */
export interface Caller {
  /** The caller's uid (default 0). */
  uid: number;
  /** The caller's gid (default 0). */
  gid: number;
  /** The caller's pid (default this process). */
  pid: number;
}

/** Options of an InProcessSession: timeouts, notifications, logger, caller, request sizes. */
export interface InProcessSessionOptions {
  /** Entry timeout (s) the mount would have been configured with. Default 1. */
  entryTimeout?: number;
  /** Attribute timeout (s). Default 1. */
  attrTimeout?: number;
  /** Notifications the connection supports. Default all. */
  notify?: Partial<NotifySupport>;
  /** Where handler failures answered EIO and throwing forgets are logged. Default silent. */
  logger?: Logger;
  /** Who the requests come from (RequestContext uid/gid/pid). Default uid 0, gid 0, this process. */
  caller?: Partial<Caller>;
  /** Bytes a READDIR(PLUS) request asks for when the caller does not say. Default 4096 (a page, as the kernel asks). */
  readdirSize?: number;
  /** Bytes a READ asks for when the caller does not say. Default 131072. */
  readSize?: number;
}

/** An open file or directory of the session (the `fh` is the session's, like a descriptor). */
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
  /** Bytes per READDIR(PLUS) request. Default the session's readdirSize (4096). */
  size?: number;
}

interface Handle {
  readonly node: number;
  /** The filesystem's fh. */
  readonly fh: number;
  readonly dir: boolean;
  readonly flags: number;
}

class Ctx implements RequestContext {
  private ac: AbortController | undefined;
  constructor(
    readonly unique: number,
    readonly opcode: number,
    readonly nodeId: number,
    readonly uid: number,
    readonly gid: number,
    readonly pid: number,
  ) {}
  get signal(): AbortSignal {
    return (this.ac ??= new AbortController()).signal;
  }
}

function isDot(name: string): boolean {
  return name === '.' || name === '..';
}

/** Answers FUSE requests in process, with the rules and errno values of the mounted session, over any LowLevelFileSystem. */
export class InProcessSession {
  /** Records the invalidations the filesystem sends (what the kernel would be told). */
  readonly notifier: RecordingNotifier;
  /** The simulated INIT result: protocol, capabilities, timeouts. */
  readonly connection: ConnectionInfo;
  private readonly log: Logger;
  /** Who the next requests come from; assign to switch users (a test of what each caller sees). */
  caller: Caller;
  private readonly readdirSize: number;
  private readonly readSize: number;
  private readonly handles = new Map<number, Handle>();
  private readonly scratch = Buffer.alloc(4096);
  private dirScratch = Buffer.alloc(0);
  private nextHandle = 1;
  private unique = 1;
  private ended = false;
  private destroying: Promise<void> | null = null;

  constructor(
    /** The filesystem the requests go to (the handle tree, or any LowLevelFileSystem). */
    readonly fs: LowLevelFileSystem,
    options: InProcessSessionOptions = {},
  ) {
    this.log = options.logger ?? silentLogger();
    this.caller = { uid: 0, gid: 0, pid: process.pid, ...options.caller };
    this.readdirSize = options.readdirSize ?? 4096;
    this.readSize = options.readSize ?? 131072;
    this.connection = connectionInfo({
      ...(options.entryTimeout === undefined ? {} : { entryTimeout: options.entryTimeout }),
      ...(options.attrTimeout === undefined ? {} : { attrTimeout: options.attrTimeout }),
      ...(options.notify === undefined ? {} : { notify: options.notify }),
    });
    this.notifier = new RecordingNotifier(options.notify);
    fs.init?.(this.connection, this.notifier);
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
    const e = await this.call('lookup', Opcode.LOOKUP, parent, (ctx) => this.fs.lookup(ctx, parent, name));
    const positive = e !== null && typeof e === 'object' && e.nodeId > 0;
    try {
      encodeEntryOut(this.scratch, 0, e, FUSE_KERNEL_MINOR_VERSION);
    } catch (err) {
      if (positive) this.giveBack(e.nodeId);
      throw this.badReply('lookup', err);
    }
    if (!positive) throw new FsError(Errno.ENOENT, 'lookup');
    return e;
  }

  /** FORGET: the kernel drops `nlookup` references of `node`. Never fails (a throw is only logged, as by the session). */
  forget(node: number, nlookup = 1): void {
    if (this.ended) return;
    try {
      this.fs.forget(node, nlookup);
    } catch (err) {
      this.log.error({ err, nodeId: node, nlookup }, 'forget() threw');
    }
  }

  /** GETATTR of a node (by open file when fh is given). */
  async getattr(node: number, fh?: number): Promise<AttrReply> {
    const fsFh = fh === undefined ? undefined : this.handle(fh, 'getattr').fh;
    const r = await this.call('getattr', Opcode.GETATTR, node, (ctx) => this.fs.getattr(ctx, node, fsFh));
    try {
      encodeAttrOut(this.scratch, 0, r.attr, r.attrTimeout, FUSE_KERNEL_MINOR_VERSION);
    } catch (err) {
      throw this.badReply('getattr', err);
    }
    return r;
  }

  /** OPEN. Write access or O_TRUNC is EROFS before the filesystem is asked (unless it allows write opens). */
  async open(node: number, flags = O_RDONLY): Promise<OpenFile> {
    this.live('open');
    if (((flags & O_ACCMODE) !== O_RDONLY || (flags & O_TRUNC) !== 0) && !this.fs.allowWriteOpen) {
      throw new FsError(Errno.EROFS, 'open');
    }
    const open = this.fs.open;
    const r = open === undefined ? { fh: 0 } : await this.call('open', Opcode.OPEN, node, (ctx) => open.call(this.fs, ctx, node, flags));
    return this.opened(r, node, flags, false);
  }

  /** OPENDIR. */
  async opendir(node: number, flags = O_RDONLY): Promise<OpenFile> {
    this.live('opendir');
    const opendir = this.fs.opendir;
    const r = opendir === undefined ? { fh: 0 } : await this.call('opendir', Opcode.OPENDIR, node, (ctx) => opendir.call(this.fs, ctx, node, flags));
    return this.opened(r, node, flags, true);
  }

  /** READ of an open file. At most `size` bytes; fewer means end of file. */
  async read(fh: number, offset = 0, size = this.readSize): Promise<Buffer> {
    const h = this.handle(fh, 'read');
    if (h.dir) throw new FsError(Errno.EISDIR, 'read');
    const read = this.fs.read;
    if (read === undefined) throw new FsError(Errno.ENOSYS, 'read');
    const data: unknown = await this.call('read', Opcode.READ, h.node, (ctx) => read.call(this.fs, ctx, h.node, h.fh, offset, size));
    if (!(data instanceof Uint8Array)) throw this.badReply('read', new TypeError('read must return a Buffer'));
    const b = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    return b.length > size ? b.subarray(0, size) : b;
  }

  /**
   * One READDIR or READDIRPLUS request on an open directory: the entries after cookie `offset`
   * that fit in `size` bytes. References of READDIRPLUS entries that did not fit are given back.
   */
  async readdirPage(fh: number, offset: number, options: ReaddirOptions = {}): Promise<DirEntry[]> {
    const h = this.handle(fh, 'readdir');
    if (!h.dir) throw new FsError(Errno.ENOTDIR, 'readdir');
    const plus = options.plus ?? false;
    const size = Math.min(options.size ?? this.readdirSize, MAX_READDIR_SIZE);
    const readdir = this.fs.readdir;
    if (readdir === undefined) throw new FsError(Errno.ENOSYS, 'readdir');
    const op = plus ? Opcode.READDIRPLUS : Opcode.READDIR;
    const entries = await this.call('readdir', op, h.node, (ctx) => readdir.call(this.fs, ctx, h.node, h.fh, offset, size, plus));
    if (!Array.isArray(entries)) throw this.badReply('readdir', new TypeError('readdir must return an array'));
    if (this.dirScratch.length < size) this.dirScratch = Buffer.alloc(size);
    let off = 0;
    let sent = 0;
    try {
      for (; sent < entries.length; sent++) {
        const next = encodeDirent(this.dirScratch, off, size, entries[sent]!, plus, FUSE_KERNEL_MINOR_VERSION);
        if (next < 0) break;
        off = next;
      }
    } catch (err) {
      if (plus) this.giveBackEntries(entries, 0, entries.length);
      throw this.badReply('readdir', err);
    }
    if (sent === 0 && entries.length > 0) {
      if (plus) this.giveBackEntries(entries, 0, entries.length);
      throw this.badReply('readdir', new RangeError(`first dirent does not fit in ${size} bytes`));
    }
    if (plus) this.giveBackEntries(entries, sent, entries.length);
    return entries.slice(0, sent);
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

  /** FLUSH (as close(2) sends it) then RELEASE / RELEASEDIR. */
  async release(fh: number): Promise<void> {
    const h = this.handle(fh, 'release');
    this.handles.delete(fh);
    if (h.dir) {
      const releasedir = this.fs.releasedir;
      if (releasedir !== undefined) await this.call('releasedir', Opcode.RELEASEDIR, h.node, (ctx) => releasedir.call(this.fs, ctx, h.node, h.fh));
      return;
    }
    const flush = this.fs.flush;
    let flushError: FsError | undefined;
    if (flush !== undefined) {
      await this.call('flush', Opcode.FLUSH, h.node, (ctx) => flush.call(this.fs, ctx, h.node, h.fh, 0)).catch((e: FsError) => {
        flushError = e;
      });
    }
    const release = this.fs.release;
    if (release !== undefined) await this.call('release', Opcode.RELEASE, h.node, (ctx) => release.call(this.fs, ctx, h.node, h.fh, h.flags));
    if (flushError !== undefined) throw flushError;
  }

  /** READLINK; ENOSYS without a handler (as the session answers). */
  async readlink(node: number): Promise<string> {
    this.live('readlink');
    const readlink = this.fs.readlink;
    if (readlink === undefined) throw new FsError(Errno.ENOSYS, 'readlink');
    const r: unknown = await this.call('readlink', Opcode.READLINK, node, (ctx) => readlink.call(this.fs, ctx, node));
    if (typeof r === 'string') return r;
    if (Buffer.isBuffer(r)) return r.toString('utf8');
    throw this.badReply('readlink', new TypeError('readlink must return a string or Buffer'));
  }

  /** STATFS. */
  async statfs(node = 1): Promise<StatfsReply> {
    this.live('statfs');
    const statfs = this.fs.statfs;
    const r = statfs === undefined ? DEFAULT_STATFS : await this.call('statfs', Opcode.STATFS, node, (ctx) => statfs.call(this.fs, ctx, node));
    try {
      encodeStatfsOut(this.scratch, 0, r, FUSE_KERNEL_MINOR_VERSION);
    } catch (err) {
      throw this.badReply('statfs', err);
    }
    return r;
  }

  /** ACCESS; without a handler, EROFS for W_OK and allowed otherwise. */
  async access(node: number, mask: number): Promise<void> {
    this.live('access');
    const access = this.fs.access;
    if (access === undefined) {
      if ((mask & W_OK) !== 0) throw new FsError(Errno.EROFS, 'access');
      return;
    }
    await this.call('access', Opcode.ACCESS, node, (ctx) => access.call(this.fs, ctx, node, mask));
  }

  /** GETXATTR; ENOSYS without a handler (the session's answer; a mount's caller sees EOPNOTSUPP). */
  async getxattr(node: number, name: string): Promise<Buffer> {
    this.live('getxattr');
    const getxattr = this.fs.getxattr;
    if (getxattr === undefined) throw new FsError(Errno.ENOSYS, 'getxattr');
    return this.call('getxattr', Opcode.GETXATTR, node, (ctx) => getxattr.call(this.fs, ctx, node, name));
  }

  /** LISTXATTR; ENOSYS without a handler, as GETXATTR. */
  async listxattr(node: number): Promise<string[]> {
    this.live('listxattr');
    const listxattr = this.fs.listxattr;
    if (listxattr === undefined) throw new FsError(Errno.ENOSYS, 'listxattr');
    return this.call('listxattr', Opcode.LISTXATTR, node, (ctx) => listxattr.call(this.fs, ctx, node));
  }

  /** Any mutating request (WRITE, MKDIR, UNLINK, SETATTR, CREATE, RENAME, ...): EROFS, as the session answers. */
  mutate(syscall: string): Promise<never> {
    this.live(syscall);
    return Promise.reject(new FsError(Errno.EROFS, syscall));
  }

  /** The connection ends: DESTROY (the filesystem's destroy(), once); later requests answer ENOTCONN. */
  destroy(): Promise<void> {
    if (this.destroying !== null) return this.destroying;
    this.ended = true;
    this.handles.clear();
    this.destroying = (async () => {
      try {
        await this.fs.destroy?.();
      } catch (err) {
        this.log.error({ err }, 'destroy() failed');
      }
    })();
    return this.destroying;
  }

  // ---- helpers ------------------------------------------------------------------------------

  private live(syscall: string): void {
    if (this.ended) throw new FsError(Errno.ENOTCONN, syscall);
  }

  private ctx(opcode: number, nodeId: number): Ctx {
    return new Ctx(this.unique++, opcode, nodeId, this.caller.uid, this.caller.gid, this.caller.pid);
  }

  /** Runs a handler as the session does: a value or a promise; FuseError → errno; anything else → EIO. */
  private async call<T>(syscall: string, opcode: number, nodeId: number, fn: (ctx: RequestContext) => T | Promise<T>): Promise<T> {
    this.live(syscall);
    try {
      return await fn(this.ctx(opcode, nodeId));
    } catch (err) {
      const e = toFsError(err, syscall);
      if (e.errno === Errno.EIO && e.cause !== undefined) {
        this.log.error({ err, op: syscall, nodeId }, 'FUSE handler failed; answering EIO');
      }
      throw e;
    }
  }

  private opened(r: OpenReply, node: number, flags: number, dir: boolean): OpenFile {
    try {
      encodeOpenOut(this.scratch, 0, r);
    } catch (err) {
      throw this.badReply(dir ? 'opendir' : 'open', err);
    }
    const fh = this.nextHandle++;
    this.handles.set(fh, { node, fh: r.fh, dir, flags });
    return { ...r, fh, node, dir, flags };
  }

  /**
   * POLL of an open file, as the kernel sends it for poll(2)/epoll with a waiter: the ready events,
   * and the file's poll handle (kh), which the filesystem wakes through notifier.pollWakeup(kh)
   * (recorded as { op: 'pollWakeup', kh }). kh is the session's fh. A filesystem without poll is
   * always ready, as the kernel assumes.
   */
  async poll(fh: number, events = POLLIN): Promise<number> {
    const h = this.handle(fh, 'poll');
    const poll = this.fs.poll;
    if (poll === undefined) return DEFAULT_POLLMASK;
    return this.call('poll', Opcode.POLL, h.node, (ctx) => poll.call(this.fs, ctx, h.node, h.fh, events, fh));
  }

  private handle(fh: number, syscall: string): Handle {
    this.live(syscall);
    const h = this.handles.get(fh);
    if (h === undefined) throw new FsError(Errno.EBADF, syscall);
    return h;
  }

  private badReply(syscall: string, err: unknown): FsError {
    this.log.error({ err, op: syscall }, 'FUSE handler returned an invalid reply; answering EIO');
    return new FsError(Errno.EIO, syscall, { cause: err });
  }

  private giveBack(nodeId: number): void {
    this.forget(nodeId, 1);
  }

  private giveBackEntries(entries: DirEntry[], from: number, to: number): void {
    for (let i = from; i < to; i++) {
      const d = entries[i];
      const e = d?.entry;
      if (e && e.nodeId > 0 && !isDot(d.name)) this.giveBack(e.nodeId);
    }
  }
}
