/**
 * The consumer kit: handlefs in-process, without root, /dev/fuse or /proc.
 *
 * createTestFilesystem() assembles the very container the service runs (assembleContainer), with
 * a FakeHost's sources, a MemoryStore and manual timers, and serves its filesystem with the real
 * FuseSession (the container's SessionFactory) over an in-memory channel; a FakeKernel plays the
 * kernel's side, so every answer is the one a mount gives.
 *
 * Two levels:
 * - node level (lookup, forget, getattr, open, read, readdir, ...): FUSE requests on node ids
 *   (node id == inode number), with the session's rules. References are counted as the kernel's:
 *   a lookup (and each READDIRPLUS entry) is one the caller gives back with forget().
 * - path level (lookupPath, stat, readFile, list, writeFile): system calls on paths relative to
 *   the mountpoint, with the kernel's path walk (ENOTDIR through a file, ENAMETOOLONG, "." and
 *   ".."), taking and giving back references as the kernel would once its cache let go.
 *   The kit has no dentry cache: every walk asks the filesystem.
 */
import type { Container } from 'inversify';
import type { InodeTable } from '../core/inode-table.js';
import { MemoryStore } from '../core/memory-store.js';
import { CORE } from '../core/tokens.js';
import { Errno, O_RDONLY, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from '../fuse/abi.js';
import type { SessionFactory } from '../fuse/module.js';
import { FUSE_TOKENS } from '../fuse/tokens.js';
import type { Attr, AttrReply, DirEntry, Entry, LowLevelFileSystem, StatfsReply } from '../fuse/types.js';
import { silentLogger } from '../log.js';
import { assembleContainer } from '../service/container.js';
import type { HandleObject } from '../tree/context.js';
import type { HandleTree, HandleTreeOptions } from '../tree/handle-fs.js';
import { BY_INO_DIR, ROOT_DIR, isStatic } from '../tree/layout.js';
import { ManualTimers, type TimerHandle, type Timers } from '../tree/timers.js';
import { TREE } from '../tree/tokens.js';
import type { Caller as ActionCaller } from '../tree/actions.js';
import type { ProcessEnding } from '../sources/types.js';
import { FsError } from './errors.js';
import { createFakeSourcesModule, FakeHost, type FakeHostOptions } from './fake-sources.js';
import { FakeKernel, type FakeKernelOptions, type OpenFile, type ReaddirOptions } from './fake-kernel.js';
import type { Invalidation, RecordingNotifier } from './recording-notifier.js';

/**
 * The connection's options (entryTimeout, attrTimeout, notify, logger, caller, readdirSize, readSize;
 * see FakeKernelOptions) and what the kit assembles around them.
 */
export interface TestFilesystemOptions extends FakeKernelOptions {
  /** The host to serve; default a new FakeHost(hostOptions) (pid 1 'init', the initial namespaces). */
  host?: FakeHost;
  /** Options of the FakeHost created when `host` is not given. */
  hostOptions?: FakeHostOptions;
  /** The inode store; default a new MemoryStore. Pass one with earlier rows to test a restart. */
  store?: MemoryStore;
  /** HandleTreeOptions: nsGraceMs (2000), sweepIntervalMs (10000; 0 = off), concurrency, ... */
  tree?: HandleTreeOptions;
}

/** What stat() gives: the FUSE attributes, with fs.Stats' type tests. */
export interface FileStat extends Attr {
  /** True for a handle file. */
  isFile(): boolean;
  /** True for a directory (the root, pid/, ns/, ns/<type>/, by-ino/). */
  isDirectory(): boolean;
  /** Always false: handlefs has no symlinks. */
  isSymbolicLink(): boolean;
}

/** Reference counts the core keeps for a node: kernel lookups, open files, pins, short-lived holds. */
export interface NodeCounts {
  /** Lookups the kernel would hold (LOOKUP, READDIRPLUS; FORGET takes them back). */
  lookups: number;
  /** Open files and directories. */
  opens: number;
  /** Library pins (pin()). */
  pins: number;
  /** Short-lived holds of code using the node right now (0 between calls). */
  holds: number;
}

/** Options of list(): plain READDIR or READDIRPLUS, and the bytes per request. */
export interface ListOptions {
  /** READDIRPLUS: each entry is a lookup the kernel would now hold, and the kit keeps it (forget() it). Default false: plain READDIR, nothing held. */
  plus?: boolean;
  /** Bytes per request. Default the kit's readdirSize. */
  size?: number;
}

/** Parses a handle's `Key:\tvalue` lines into an object. */
export function parseFields(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const i = line.indexOf(':\t');
    if (i < 0) continue;
    out[line.slice(0, i)] = line.slice(i + 2);
  }
  return out;
}

/** Linux's PATH_MAX: a path of this many bytes or more is ENAMETOOLONG. */
const PATH_MAX = 4096;

function fileStat(a: Attr): FileStat {
  const type = a.mode & S_IFMT;
  return {
    ...a,
    isFile: () => type === S_IFREG,
    isDirectory: () => type === S_IFDIR,
    isSymbolicLink: () => type === S_IFLNK,
  };
}

function isDir(e: Entry): boolean {
  return (e.attr.mode & S_IFMT) === S_IFDIR;
}

/**
 * Manual timers that also know when the next one is due, so that advance() can stop at each
 * due time and let what it started (a sweep) finish before the next one fires.
 */
class SteppingTimers implements Timers {
  private readonly due = new Set<{ at: number }>();

  constructor(readonly manual: ManualTimers) {}

  now(): number {
    return this.manual.now();
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const rec = { at: this.manual.now() + Math.max(0, ms) };
    this.due.add(rec);
    const h = this.manual.setTimeout(() => {
      this.due.delete(rec);
      fn();
    }, ms);
    return {
      cancel: () => {
        this.due.delete(rec);
        h.cancel();
      },
    };
  }

  nextDue(): number | undefined {
    let next: number | undefined;
    for (const r of this.due) if (next === undefined || r.at < next) next = r.at;
    return next;
  }
}

/**
 * handlefs in-process over a FakeHost. Create it with createTestFilesystem(); close() it at the
 * end of the test (`t.teardown(() => fs.close())`).
 */
export class TestFilesystem {
  /** The fake host: start/exit/reusePid processes, create/destroy/enter namespaces, its clock. */
  readonly host: FakeHost;
  /** The inversify container the service's assembleContainer built. */
  readonly container: Container;
  /** The handle tree (the LowLevelFileSystem served), for white-box tests. */
  readonly tree: HandleTree;
  /** The core's inode table. */
  readonly table: InodeTable<HandleObject>;
  /** The in-memory inode table store (records, high-water mark), for restart tests. */
  readonly store: MemoryStore;
  /** The tree's timers; advance() drives them (timers.advance(ms) runs them synchronously, without waiting for what they start). */
  readonly timers: ManualTimers;
  /** The kernel's side of the connection the requests go through (its `server` is the real FuseSession). */
  readonly session: FakeKernel;
  private readonly stepping: SteppingTimers;
  private closing: Promise<void> | null = null;

  constructor(options: TestFilesystemOptions = {}) {
    this.host = options.host ?? new FakeHost(options.hostOptions);
    this.store = options.store ?? new MemoryStore();
    this.timers = new ManualTimers(this.host.clock);
    this.stepping = new SteppingTimers(this.timers);
    const logger = options.logger ?? silentLogger();
    this.container = assembleContainer({
      logger,
      store: { instance: this.store },
      sources: createFakeSourcesModule(this.host, logger.child({ layer: 'sources' })),
      timers: this.stepping,
      ...(options.tree === undefined ? {} : { tree: options.tree }),
    });
    try {
      this.tree = this.container.get<HandleTree>(TREE.HandleTree);
      this.table = this.container.get<InodeTable<HandleObject>>(CORE.Table);
      const fs = this.container.get<LowLevelFileSystem>(FUSE_TOKENS.FileSystem);
      this.session = new FakeKernel(fs, {
        ...(options.entryTimeout === undefined ? {} : { entryTimeout: options.entryTimeout }),
        ...(options.attrTimeout === undefined ? {} : { attrTimeout: options.attrTimeout }),
        ...(options.notify === undefined ? {} : { notify: options.notify }),
        ...(options.caller === undefined ? {} : { caller: options.caller }),
        ...(options.readdirSize === undefined ? {} : { readdirSize: options.readdirSize }),
        ...(options.readSize === undefined ? {} : { readSize: options.readSize }),
      }, this.container.get<SessionFactory>(FUSE_TOKENS.SessionFactory));
    } catch (err) {
      this.container.unbindAll();
      throw err;
    }
  }

  /** What the filesystem told the (simulated) kernel to invalidate. */
  get notifier(): RecordingNotifier {
    return this.session.notifier;
  }

  // ---- node level: FUSE requests -------------------------------------------------------------

  /** LOOKUP `name` in directory `parent`: the entry, and one reference to give back with forget(). */
  lookup(parent: number, name: string): Promise<Entry> {
    return this.session.lookup(parent, name);
  }

  /** FORGET `nlookup` references of `node` (default 1). */
  forget(node: number, nlookup = 1): void {
    this.session.forget(node, nlookup);
  }

  /** GETATTR of a node: its attributes and how long the kernel may cache them. */
  getattr(node: number): Promise<AttrReply> {
    return this.session.getattr(node);
  }

  /** OPEN (EROFS for O_WRONLY, O_RDWR or O_TRUNC). Directories are opened with opendir(). */
  open(node: number, flags = O_RDONLY): Promise<OpenFile> {
    return this.session.open(node, flags);
  }

  /** OPENDIR of a directory node; read it with readdirPage, give it back with release. */
  opendir(node: number): Promise<OpenFile> {
    return this.session.opendir(node);
  }

  /** READ of an open file: at most `size` bytes (default 131072) at `offset` (default 0). */
  read(fh: number, offset = 0, size?: number): Promise<Buffer> {
    return this.session.read(fh, offset, size);
  }

  /** RELEASE (or RELEASEDIR) of an open handle. */
  release(fh: number): Promise<void> {
    return this.session.release(fh);
  }

  /**
   * Every entry of a directory, "." and ".." included, following cookies across requests of
   * `size` bytes. With `plus` (READDIRPLUS) each other entry is one reference, as the kernel would
   * hold it: give it back with forget(entry.entry.nodeId).
   */
  readdir(node: number, options: ReaddirOptions = {}): Promise<DirEntry[]> {
    return this.session.readdir(node, options);
  }

  /** One READDIR(PLUS) request on a handle from opendir(). */
  readdirPage(fh: number, offset: number, options: ReaddirOptions = {}): Promise<DirEntry[]> {
    return this.session.readdirPage(fh, offset, options);
  }

  /** READLINK: handlefs has no symbolic links, and answers ENOSYS like the session. */
  readlink(node: number): Promise<string> {
    return this.session.readlink(node);
  }

  /** STATFS: `files` is the number of inodes in the table. */
  statfs(): Promise<StatfsReply> {
    return this.session.statfs(ROOT_DIR);
  }

  /** ACCESS, as the session answers it. */
  access(node: number, mask: number): Promise<void> {
    return this.session.access(node, mask);
  }

  /** GETXATTR: handles have no extended attributes (ENODATA). */
  getxattr(node: number, name: string): Promise<Buffer> {
    return this.session.getxattr(node, name);
  }

  /** LISTXATTR: always an empty list. */
  listxattr(node: number): Promise<string[]> {
    return this.session.listxattr(node);
  }

  /** WRITE: EROFS, as the session answers every mutating request. */
  write(node: number, _data: string | Uint8Array, _offset = 0): Promise<never> {
    return this.session.mutate('write', node);
  }

  /** CREATE: EROFS. */
  create(parent: number, _name: string, _mode = 0o644): Promise<never> {
    return this.session.mutate('create', parent);
  }

  /** MKDIR: EROFS. */
  mkdir(parent: number, _name: string, _mode = 0o755): Promise<never> {
    return this.session.mutate('mkdir', parent);
  }

  /** MKNOD: EROFS. */
  mknod(parent: number, _name: string, _mode: number): Promise<never> {
    return this.session.mutate('mknod', parent);
  }

  /** UNLINK: EROFS. */
  unlink(parent: number, _name: string): Promise<never> {
    return this.session.mutate('unlink', parent);
  }

  /** RMDIR: EROFS. */
  rmdir(parent: number, _name: string): Promise<never> {
    return this.session.mutate('rmdir', parent);
  }

  /** RENAME: EROFS. */
  rename(parent: number, _name: string, _newParent: number, _newName: string): Promise<never> {
    return this.session.mutate('rename', parent);
  }

  /** SYMLINK: EROFS. */
  symlink(parent: number, _name: string, _target: string): Promise<never> {
    return this.session.mutate('symlink', parent);
  }

  /** LINK: EROFS. */
  link(node: number, _newParent: number, _newName: string): Promise<never> {
    return this.session.mutate('link', node);
  }

  /** SETATTR (chmod, chown, truncate, utimes): EROFS. */
  setattr(node: number, _changes: Partial<Pick<Attr, 'mode' | 'uid' | 'gid' | 'size' | 'atimeMs' | 'mtimeMs'>> = {}): Promise<never> {
    return this.session.mutate('setattr', node);
  }

  /** SETXATTR: EROFS. */
  setxattr(node: number, _name: string, _value: Uint8Array): Promise<never> {
    return this.session.mutate('setxattr', node);
  }

  /** REMOVEXATTR: EROFS. */
  removexattr(node: number, _name: string): Promise<never> {
    return this.session.mutate('removexattr', node);
  }

  // ---- acting on handles: poll, kill, wait -------------------------------------------------

  /**
   * POLL of an open handle (poll(2)/epoll with a waiter): a process handle answers POLLIN once the
   * process has exited (a zombie counts), 0 before; the exit then records
   * { op: 'pollWakeup', kh: fh } among the invalidations (FUSE_NOTIFY_POLL).
   */
  poll(fh: number, events?: number): Promise<number> {
    return this.session.poll(fh, events);
  }

  /**
   * `handlefs kill`: sends `signal` through the pidfd the service holds for exactly the handle's
   * process, judged as kill(2) would judge `caller` (default root). Refusals throw an ActionError
   * with code ESRCH (the process has exited; the pid may name another now), EPERM or EINVAL (a
   * namespace handle). On the fake host an uncaught fatal signal ends the process killed by it.
   */
  async kill(target: number | string, signal = 15, caller: Partial<ActionCaller> = {}): Promise<void> {
    const ino = typeof target === 'number' ? target : await this.ino(target);
    await this.tree.signal(ino, signal, { uid: 0, ruid: caller.uid ?? 0, pid: process.pid, ...caller });
  }

  /**
   * `handlefs wait`: resolves once the handle's process has ended, with how it ended
   * ({ state: 'exited', code } / 'killed', signal / 'unknown'). The wait holds the handle.
   */
  async wait(target: number | string, caller: Partial<ActionCaller> = {}): Promise<ProcessEnding> {
    const ino = typeof target === 'number' ? target : await this.ino(target);
    return this.tree.wait(ino, { uid: 0, ruid: caller.uid ?? 0, pid: process.pid, ...caller });
  }

  // ---- library pins ------------------------------------------------------------------------

  /**
   * Pins a handle (InodeTable.pin, the library's bind mount): it stays — and a namespace stays
   * held — whatever the kernel forgets, until unpin(). A node or a path; a handle nobody holds is
   * re-validated first (a dead one is ENOENT). Returns the node.
   */
  async pin(target: number | string): Promise<number> {
    if (typeof target === 'string') {
      const e = await this.lookupPath(target);
      try {
        return await this.pin(e.nodeId);
      } finally {
        this.forget(e.nodeId, 1);
      }
    }
    if (!this.session.connected) throw new FsError(Errno.ENOTCONN, 'pin');
    if (isStatic(target)) throw new FsError(Errno.EINVAL, 'pin');
    const d = this.table.dentry(target);
    if (d !== undefined) {
      this.table.pin(d);
      return target;
    }
    await this.lookup(BY_INO_DIR, String(target)).catch((e: FsError) => {
      throw new FsError(e.errno, 'pin');
    });
    try {
      this.table.pin(this.table.dentry(target)!);
    } finally {
      this.forget(target, 1);
    }
    return target;
  }

  /** Takes one pin back (EINVAL if the handle has none). Returns the node. */
  async unpin(target: number | string): Promise<number> {
    if (typeof target === 'string') {
      const e = await this.lookupPath(target);
      try {
        return await this.unpin(e.nodeId);
      } finally {
        this.forget(e.nodeId, 1);
      }
    }
    if (!this.session.connected) throw new FsError(Errno.ENOTCONN, 'unpin');
    const d = this.table.dentry(target);
    if (d === undefined || d.pins === 0) throw new FsError(Errno.EINVAL, 'unpin');
    this.table.unpin(d);
    return target;
  }

  /** The core's counts for a node, or undefined if no one references it (dormant or gone). */
  counts(node: number): NodeCounts | undefined {
    const d = this.table.dentry(node);
    return d === undefined ? undefined : { lookups: d.lookups, opens: d.opens, pins: d.pins, holds: d.holds };
  }

  // ---- path level: system calls -------------------------------------------------------------

  /**
   * Resolves a path relative to the mountpoint ('pid/42', 'ns/net/4026531840', 'by-ino/1030';
   * '' or '/' is the root) and keeps the reference to the last component, like a cached dentry
   * or a bind mount would: give it back with forget(entry.nodeId).
   */
  async lookupPath(path: string): Promise<Entry> {
    return (await this.walk(path, 'lookup')).entry;
  }

  /** stat(2): the attributes; the reference is given back. */
  async stat(path: string): Promise<FileStat> {
    const { entry } = await this.walk(path, 'stat');
    this.forget(entry.nodeId, 1);
    return fileStat(entry.attr);
  }

  /** The inode number stat(2) shows for a path. */
  async ino(path: string): Promise<number> {
    return (await this.stat(path)).ino;
  }

  /**
   * Reads a handle as `cat` does: for a path, lookup, open, read to the end, release, forget;
   * for a node id, open, read, release (a node the caller already holds).
   */
  async readFile(target: string | number): Promise<string> {
    if (typeof target === 'number') return this.readNode(target);
    const { entry } = await this.walk(target, 'open');
    try {
      if (isDir(entry)) {
        // open(2) of a directory is an OPENDIR; read(2) on it is EISDIR.
        const d = await this.session.opendir(entry.nodeId).catch((e: FsError) => {
          throw e.withPath('open', target);
        });
        await this.session.release(d.fh);
        throw new FsError(Errno.EISDIR, 'read', { path: target });
      }
      return await this.readNode(entry.nodeId, target);
    } finally {
      this.forget(entry.nodeId, 1);
    }
  }

  /** readFile() parsed into its `Key:\tvalue` fields. */
  async readFields(target: string | number): Promise<Record<string, string>> {
    return parseFields(await this.readFile(target));
  }

  /** A directory's entries without "." and "..", like fs.readdir with their inode numbers. */
  async list(path: string, options: ListOptions = {}): Promise<DirEntry[]> {
    const { entry } = await this.walk(path, 'scandir');
    try {
      if (!isDir(entry)) throw new FsError(Errno.ENOTDIR, 'scandir', { path });
      const all = await this.session.readdir(entry.nodeId, options).catch((e: FsError) => {
        throw e.withPath('scandir', path);
      });
      return all.filter((e) => e.name !== '.' && e.name !== '..');
    } finally {
      this.forget(entry.nodeId, 1);
    }
  }

  /**
   * open(2) with O_WRONLY | O_CREAT | O_TRUNC, as fs.writeFile does: EROFS for a handle or a new
   * name, EISDIR for a directory, and the path walk's errors (ENOENT for a missing parent, ...).
   */
  async writeFile(path: string, _data: string | Uint8Array = ''): Promise<never> {
    const { parent, name } = splitLast(path);
    const slash = /[^/]\/+$/.test(path);
    const dir = await this.walk(parent, 'open', path);
    try {
      if (!isDir(dir.entry)) throw new FsError(Errno.ENOTDIR, 'open', { path });
      // O_CREAT with a trailing slash is EISDIR before the name is even looked up (Linux's open_last_lookups).
      if (name === '' || slash) throw new FsError(Errno.EISDIR, 'open', { path });
      let found: Entry;
      try {
        found = await this.session.lookup(dir.entry.nodeId, name);
      } catch (e) {
        // A new name: O_CREAT on a read-only filesystem.
        if (e instanceof FsError && e.errno === Errno.ENOENT) throw new FsError(Errno.EROFS, 'open', { path });
        throw e instanceof FsError ? e.withPath('open', path) : e;
      }
      this.forget(found.nodeId, 1);
      throw new FsError(isDir(found) ? Errno.EISDIR : Errno.EROFS, 'open', { path });
    } finally {
      this.forget(dir.entry.nodeId, 1);
    }
  }

  // ---- invalidations, time, end ---------------------------------------------------------------

  /** Everything the filesystem told the kernel to invalidate so far (INVAL_ENTRY, INVAL_INODE, DELETE). */
  invalidations(): Invalidation[] {
    return [...this.notifier.notes];
  }

  /** invalidations() since the last take, and forgets them. */
  takeInvalidations(): Invalidation[] {
    return this.notifier.take();
  }

  /**
   * Moves the host's clock `ms` forward, running every timer (namespace grace periods, sweeps)
   * at its time and letting what it started finish before the next one.
   */
  async advance(ms: number): Promise<void> {
    if (!(ms >= 0) || !Number.isFinite(ms)) throw new RangeError(`advance: ms must be a finite number >= 0, got ${ms}`);
    const end = this.timers.now() + ms;
    await this.settle();
    for (let steps = 0; ; steps++) {
      const next = this.stepping.nextDue();
      if (next === undefined || next > end) break;
      if (steps > 100_000) throw new Error('advance: timers keep rescheduling themselves without time passing');
      this.timers.advance(Math.max(0, next - this.timers.now()));
      await this.settle();
    }
    const left = end - this.timers.now();
    if (left > 0) this.timers.advance(left);
    await this.settle();
  }

  /** Lets pending promise callbacks run (exit notifications, sweeps in progress). */
  async settle(): Promise<void> {
    for (let i = 0; i < 20; i++) await new Promise<void>((r) => setImmediate(r));
  }

  /** Ends the connection (the tree's destroy) and the container. Idempotent; later requests answer ENOTCONN. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.session.destroy();
      this.container.unbindAll();
    })();
    return this.closing;
  }

  /** True once close() was called: every request then answers ENOTCONN. */
  get closed(): boolean {
    return this.closing !== null;
  }

  // ---- internals ------------------------------------------------------------------------------

  /** open, read to the end, release. Errors keep their syscall ('open', 'read') and get the path, if any. */
  private async readNode(node: number, path?: string): Promise<string> {
    const withPath = (e: unknown): never => {
      throw e instanceof FsError && path !== undefined ? e.withPath(e.syscall, path) : e;
    };
    const f = await this.session.open(node, O_RDONLY).catch(withPath);
    try {
      const chunks: Buffer[] = [];
      let offset = 0;
      for (;;) {
        const b = await this.session.read(f.fh, offset).catch(withPath);
        if (b.length === 0) break;
        chunks.push(Buffer.from(b));
        offset += b.length;
      }
      return Buffer.concat(chunks).toString('utf8');
    } finally {
      await this.session.release(f.fh);
    }
  }

  /**
   * The kernel's path walk: each component is a LOOKUP in the directory reached so far; "." stays,
   * ".." goes up (resolved by the kernel itself); walking on from a non-directory, or a trailing
   * slash after one, is ENOTDIR. Every reference taken on the way is given back except the last
   * component's, which the caller owns.
   */
  private async walk(path: string, syscall: string, reportPath = path): Promise<{ entry: Entry }> {
    if (Buffer.byteLength(path, 'utf8') >= PATH_MAX) throw new FsError(Errno.ENAMETOOLONG, syscall, { path: reportPath });
    const parts = path.split('/');
    const dirs: number[] = [ROOT_DIR];
    let last: Entry | null = null;
    let onFile = false;
    const drop = (): void => {
      if (last !== null) this.forget(last.nodeId, 1);
      last = null;
    };
    for (const name of parts) {
      if (onFile) {
        // Anything after a non-directory ("x", ".", "..", a trailing slash): the kernel stops here.
        drop();
        throw new FsError(Errno.ENOTDIR, syscall, { path: reportPath });
      }
      if (name === '' || name === '.') continue;
      if (name === '..') {
        if (dirs.length > 1) dirs.pop();
        drop();
        continue;
      }
      let e: Entry;
      try {
        e = await this.session.lookup(dirs[dirs.length - 1]!, name);
      } catch (err) {
        drop();
        throw err instanceof FsError ? err.withPath(syscall, reportPath) : err;
      }
      drop();
      last = e;
      if (isDir(e)) dirs.push(e.nodeId);
      else onFile = true;
    }
    if (last === null) {
      // The root, or a path ending in "..": the directory itself (LOOKUP "." of a directory).
      last = await this.session.lookup(dirs[dirs.length - 1]!, '.').catch((err: FsError) => {
        throw err.withPath(syscall, reportPath);
      });
    }
    return { entry: last };
  }
}

function splitLast(path: string): { parent: string; name: string } {
  const trimmed = path.replace(/\/+$/, '');
  const i = trimmed.lastIndexOf('/');
  return i < 0 ? { parent: '', name: trimmed } : { parent: trimmed.slice(0, i), name: trimmed.slice(i + 1) };
}

/** handlefs over a FakeHost, in-process: the service's container with fake sources, a MemoryStore and manual timers. */
export function createTestFilesystem(options: TestFilesystemOptions = {}): TestFilesystem {
  return new TestFilesystem(options);
}
