/**
 * The handle filesystem: the LowLevelFileSystem the FUSE session serves. It joins the host
 * sources (what exists) with the core's table (which number it has) and answers every request
 * with node id == inode number.
 *
 * Rules kept here (docs/tree.md explains them):
 * - A number reaches the kernel (entry, d_ino, a handle's text) only once its own row is durable:
 *   `table.durableOf()` of the numbers a reply shows is awaited before it (a number committed long
 *   ago waits for nobody); if it fails the lookup is given back and the request answers EIO.
 * - LOOKUP and GETATTR of a handle that needs nothing read or committed answer in the same turn,
 *   without a Promise.
 * - Every positive entry is exactly one lookup in the table (LOOKUP, each READDIRPLUS entry);
 *   FORGET takes back what it names. Static directories are not counted.
 * - Invalidations are never awaited inside a handler; the Invalidator fires and forgets.
 */
import { RepeatedErrorLog } from '../util/repeated-error-log.js';
import type { Logger } from 'pino';
import type { Dentry, Inode } from '../core/inode.js';
import type { InodeTable, TableEvents } from '../core/inode-table.js';
import type { InodeRecord } from '../core/store.js';
import { Errno, S_IFDIR, S_IFREG } from '../fuse/abi.js';
import {
  FuseError,
  type Attr,
  type AttrReply,
  type ConnectionInfo,
  type DirEntry,
  type Entry,
  type LowLevelFileSystem,
  type Notifier,
  type OpenReply,
  type RequestContext,
  type StatfsReply,
} from '../fuse/types.js';
import type { HostIds, NamespaceSource, ProcessSource } from '../sources/types.js';
import { putAll, type HandleObject, type TreeContext } from './context.js';
import { mapLimit } from '../util/map-limit.js';
import { Invalidator } from './invalidation.js';
import {
  BY_INO_DIR,
  direntSize,
  isStatic,
  nameTooLong,
  parseInoName,
  ROOT_DIR,
  STATIC_GENERATION,
  STATIC_NODES,
  staticChild,
  staticPath,
} from './layout.js';
import { ActionError, type Caller as ActionCaller, type EnterTarget } from './actions.js';
import type { HandleKind } from './kind.js';
import { INCARNATIONS, KindTable } from './kinds.js';
import { NAMESPACE_KIND, NsObject, nsIncarnation, type HeldNamespace, type NamespaceHandles } from './namespace-handles.js';
import { PROCESS_KIND, type IncarnationReader, type ProcessHandles } from './process-handles.js';
import { AccessPolicy, isPrivileged, type Caller, type HidePid } from './access.js';
import { decodeProcessRecord, type ProcessRecord } from './process-record.js';
import { realTimers, type TimerHandle, type Timers } from './timers.js';
import { FIRST_DYNAMIC_INO, MAX_INO, type Ino, type Key } from '../core/numbers.js';
import type { Clock, NsType, ProcessEnding } from '../sources/types.js';

export type { HeldNamespace } from './namespace-handles.js';

/** Options of the handle tree: timeouts, namespace grace period, sweeps, concurrency. */
export interface HandleTreeOptions {
  /** Entry timeout (s) in replies; default: what the mount was configured with (ConnectionInfo), else 1. */
  entryTimeout?: number;
  /** Attribute timeout (s); default as entryTimeout. */
  attrTimeout?: number;
  /** Idle time (ms) before the kernel is asked to drop a namespace handle's names. Default 2000. */
  nsGraceMs?: number;
  /** Interval (ms) of the dormant-inode sweep; 0 disables it. Default 10000. */
  sweepIntervalMs?: number;
  /** /proc reads or namespace opens a listing or sweep runs at once. Default 16. */
  concurrency?: number;
  /** Cheap incarnation read for the sweep. Default: ProcessSource.read. */
  readIncarnation?: IncarnationReader;
  /**
   * The first file handle number this tree hands out. A successor (after a crash or restart of
   * the serving process) starts above every number its predecessors used, so a handle the kernel
   * still holds from one of them is never mistaken for one of its own. Default 1.
   */
  firstFh?: number;
  /**
   * The tree serves a connection a predecessor began: the kernel refers to nodes and file handles
   * this process never gave out; they are adopted (docs/architecture.md, "Surviving restarts").
   */
  resumed?: boolean;
  /** Which handles of others a non-root caller sees (`-o hidepid=`, as procfs). Default 'off'. */
  hidepid?: HidePid;
  /** Open handles (files and directories) one non-root uid may have at once; more is EMFILE. Default 1024. */
  maxOpenPerUser?: number;
  /** Namespace handles one non-root uid may have open at once; more is EMFILE. Default 64. */
  maxNamespaceOpensPerUser?: number;
  /** How long (ms) a non-root caller's open keeps a namespace held. Default 600000 (10 min). */
  userNamespaceHoldMs?: number;
}

export interface HandleTreeDeps {
  table: InodeTable<HandleObject>;
  processSource: ProcessSource;
  namespaceSource: NamespaceSource;
  hostIds: HostIds;
  logger: Logger;
  /** Timers (and the clock they read); default real, unref()ed timers over `clock`. */
  timers?: Timers;
  clock?: Clock;
  options?: HandleTreeOptions;
}

interface FileState {
  readonly kind: 'file';
  readonly dentry: Dentry<HandleObject>;
  /** Who opened it: what the text shows is judged by the opener's credentials. */
  readonly caller: Caller;
  /** The open still counts in the dentry's opens (a non-root namespace open stops counting after its hold time). */
  counted: boolean;
  /** Ends a non-root namespace open's hold time. */
  holdTimer: TimerHandle | null;
  data: Buffer;
  /** The snapshot was rendered at OPEN and not read yet: a read at offset 0 uses it as is. */
  fresh: boolean;
  /** The object was already dead when the snapshot was taken. */
  dead: boolean;
  /** The kernel's poll handle of this file, once it polled with waiters. */
  kh?: number;
}

interface DirState {
  readonly kind: 'dir';
  readonly ino: Ino;
  readonly uid: number;
  /** Keys (pids, inums) or inode numbers (by-ino/) listed at offset 0, for the rest of the listing. */
  keys: Array<Key | Ino> | null;
  /**
   * Handles of the next reply, registered ahead (read, numbered, watched, held) while the
   * current one was filled, so that their rows commit while the kernel takes the current reply
   * and the next reply waits for no fsync. Absent for a READDIR without OPENDIR.
   */
  ahead?: Map<number, Dentry<HandleObject>>;
  /** Released (or the tree stopped): nothing more is registered ahead for it. */
  closed?: boolean;
}

const R_OK = 4;
const W_OK = 2;
const X_OK = 1;
const S_DIR = S_IFDIR | 0o555;
/** Handles resolved per batch while filling a listing. */
const LIST_BATCH = 64;
/** Handles registered ahead of the reply being filled (about one more reply's worth). */
const LIST_AHEAD = 64;

function fail(errno: number, message?: string): never {
  throw new FuseError(errno, message);
}

/** The bytes of `data` a READ at `offset` of `size` gets (none past the end). */
function slice(data: Buffer, offset: number, size: number): Buffer {
  return offset >= data.length ? Buffer.alloc(0) : data.subarray(offset, Math.min(data.length, offset + size));
}

/** The handle filesystem: pid/, ns/<type>/, by-ino/ over the inode table and the sources, serving FUSE requests. */
export class HandleTree implements LowLevelFileSystem {
  readonly table: InodeTable<HandleObject>;
  /** The kinds of handles (kinds.ts): every per-kind decision goes through them. */
  readonly kinds: KindTable;
  /** The process kind (its read counts, for tests). */
  readonly processes: ProcessHandles;
  /** The namespace kind: the keeper's held namespaces are about it alone. */
  readonly namespaces: NamespaceHandles;
  readonly invalidator: Invalidator;
  readonly events: TableEvents<HandleObject>;

  private readonly ctx: TreeContext;
  private readonly log: Logger;
  /** A failing store fails every lookup: one full line per episode, then counts. */
  private readonly storeErrors: RepeatedErrorLog;
  private readonly timers: Timers;
  private readonly hostIds: HostIds;
  private readonly processSource: ProcessSource;
  private readonly namespaceSource: NamespaceSource;
  private readonly options: HandleTreeOptions;
  private readonly sweepIntervalMs: number;
  private entryTimeout = 1;
  private attrTimeout = 1;
  private readonly startMs: number;
  private readonly files = new Map<number, FileState | DirState>();
  private nextFh = 1;
  private sweepTimer: TimerHandle | null = null;
  /** Who may see what (hidepid, ptrace-style access to namespaces). */
  readonly policy: AccessPolicy;
  /** Open files and directories per non-root uid, and namespace files among them. */
  private readonly opensByUid = new Map<number, number>();
  private readonly nsOpensByUid = new Map<number, number>();
  private readonly maxOpenPerUser: number;
  private readonly maxNsOpensPerUser: number;
  private readonly userNsHoldMs: number;
  private sweeping: Promise<void> | null = null;
  private restored = false;
  private stopped = false;
  /** Open files and directories (a caller's descriptors cost memory here until released). */
  get openHandles(): number {
    return this.files.size;
  }
  /** Sweeps run and inodes they found dead (for tests and stats). */
  readonly sweepStats = { runs: 0, dead: 0 };
  /** Nodes adopted from a predecessor, whose first FORGET is clamped to what this tree counted. */
  private readonly adopted = new Set<Ino>();
  /** Nodes and file handles adopted from a predecessor (for status and tests). */
  readonly adoptStats = { nodes: 0, files: 0, forgetsClamped: 0 };
  /**
   * Open files of namespace handles a predecessor counted (the keeper kept the count), not yet
   * matched to a file here, by node: each keeps the hold until its RELEASE (or its first READ
   * turns it into a file of this process). Counted, clamped at zero, never trusted beyond that.
   */
  private readonly adoptedOpens = new Map<number, number>();
  /** Tells the keeper what a successor needs that the kernel will not repeat (poll waiters, open counts). */
  handOff: HandOffObserver | null = null;

  constructor(deps: HandleTreeDeps) {
    this.table = deps.table;
    this.log = deps.logger;
    this.hostIds = deps.hostIds;
    this.processSource = deps.processSource;
    this.namespaceSource = deps.namespaceSource;
    this.options = deps.options ?? {};
    this.timers = deps.timers ?? realTimers(deps.clock);
    this.startMs = this.timers.now();
    this.sweepIntervalMs = this.options.sweepIntervalMs ?? 10_000;
    this.nextFh = this.options.firstFh ?? 1;
    if (this.options.entryTimeout !== undefined) this.entryTimeout = this.options.entryTimeout;
    if (this.options.attrTimeout !== undefined) this.attrTimeout = this.options.attrTimeout;
    const scope = deps.processSource.identityScope();
    if (this.table.scope !== scope) {
      throw new Error(`the inode table's scope "${this.table.scope}" is not the process source's identity scope "${scope}": incarnations are relative to it`);
    }
    for (const [kind, order] of Object.entries(INCARNATIONS)) {
      if (this.table.orderOf(kind) !== order) {
        throw new Error(`the inode table compares ${kind} incarnations as "${this.table.orderOf(kind)}", the tree needs "${order}" (build it with incarnations: INCARNATIONS)`);
      }
    }
    this.invalidator = new Invalidator(this.log);
    this.storeErrors = new RepeatedErrorLog(this.log);
    this.policy = new AccessPolicy(this.processSource, this.timers, { hidepid: this.options.hidepid ?? 'off' });
    this.ctx = {
      table: this.table,
      log: this.log,
      timers: this.timers,
      inval: this.invalidator,
      hostIds: this.hostIds,
      policy: this.policy,
      concurrency: this.options.concurrency ?? 16,
    };
    this.maxOpenPerUser = this.options.maxOpenPerUser ?? 1024;
    this.maxNsOpensPerUser = this.options.maxNamespaceOpensPerUser ?? 64;
    this.userNsHoldMs = this.options.userNamespaceHoldMs ?? 600_000;
    this.kinds = new KindTable({ ctx: this.ctx, processSource: this.processSource, namespaceSource: this.namespaceSource, options: this.options });
    this.processes = this.kinds.named<ProcessHandles>(PROCESS_KIND);
    this.namespaces = this.kinds.named<NamespaceHandles>(NAMESPACE_KIND);
    this.events = {
      created: (d) => this.onCreated(d),
      released: (d) => this.onReleased(d),
      dead: (inode) => this.onDead(inode),
      dropped: (inode) => this.onDropped(inode),
    };
    this.table.listen(this.events);
  }

  // ---- lifetime ----

  /**
   * Loads rows stored by earlier runs (once). Rows of another boot, of kinds or keys this tree
   * never makes, and namespaces without a kernel id are pruned; the rest are dormant until
   * looked up or swept.
   */
  restore(records: Iterable<InodeRecord>): { kept: number; pruned: number } {
    if (this.restored) throw new Error('HandleTree.restore() may run once');
    this.restored = true;
    const resumed = this.options.resumed === true;
    const recorded = new Map<Ino, { rec: ProcessRecord; text: string }>();
    const stale: Ino[] = [];
    const result = this.table.restore(records, (r) => {
      if (r.ino < FIRST_DYNAMIC_INO || !(this.kinds.of(r)?.keeps(r) ?? false)) return false;
      if (r.kind !== PROCESS_KIND) return true;
      const rec = decodeProcessRecord(r.state);
      if (resumed && rec !== undefined) recorded.set(r.ino, { rec, text: r.state! });
      // An ended process's row lives only while a kernel may reference its handle: a new mount's does not.
      if (rec?.ended !== undefined) return resumed ? 'dead' : false;
      if (!resumed && r.state !== undefined && r.state !== null) stale.push(r.ino);
      return true;
    });
    if (resumed) this.adoptRecorded(recorded);
    // A new mount's kernel references none of them: their records go, or a later successor
    // would adopt every one as referenced (and hold a pidfd for each).
    for (const ino of stale) {
      const inode = this.table.inode(ino);
      if (inode !== undefined) this.table.record(inode, null);
    }
    // Committed now, not with the next new number: a crash before it would bring them back.
    if (stale.length > 0) this.table.durable()?.catch((err: unknown) => this.log.warn({ err }, 'the records of the previous mount could not be cleared'));
    return result;
  }

  /**
   * A successor takes over the process handles its predecessor recorded as referenced by the
   * kernel (bind mounts, open files, cached names), each as one lookup until the kernel's FORGET
   * (clamped): a live one is re-validated as it is engaged (its pidfd reopened from the pidfs
   * inode number); one that ended, before or while nobody served, stays served as dead with what
   * was last known and how it ended, until the kernel forgets it.
   */
  private adoptRecorded(recorded: ReadonlyMap<Ino, { rec: ProcessRecord; text: string }>): void {
    for (const [ino, { rec, text }] of recorded) {
      const inode = this.table.inode(ino);
      if (inode === undefined) continue;
      const o = this.processes.objectOfRecord(inode, rec);
      const d = this.table.instantiateRestored(ino, o);
      if (d === undefined) continue;
      o.recorded = text; // rewritten only if it changes (engaged afresh, or ended)
      this.adopted.add(ino);
      this.adoptStats.nodes++;
      this.table.addLookups(d, 1);
      this.table.put(d);
    }
  }

  init(conn: ConnectionInfo, notifier: Notifier): void {
    if (this.options.entryTimeout === undefined) this.entryTimeout = conn.entryTimeout;
    if (this.options.attrTimeout === undefined) this.attrTimeout = conn.attrTimeout;
    this.invalidator.attach(notifier);
    this.stopped = false;
    this.startSweeping();
  }

  /** Starts the periodic sweep (init() does; tests without a session may call it). */
  startSweeping(): void {
    if (this.sweepIntervalMs <= 0 || this.sweepTimer !== null) return;
    this.scheduleSweep(0);
  }

  destroy(): void {
    this.stopped = true;
    // The kernel's references end with the connection or pass to a successor (a handover): either
    // way the rows stay as they are, records of handles the kernel refers to included.
    this.table.stopWriting();
    this.sweepTimer?.cancel();
    this.sweepTimer = null;
    this.invalidator.attach(null);
    // The connection is gone: the kernel dropped every lookup and closed every file implicitly.
    for (const [ino, n] of this.adoptedOpens) {
      const d = this.table.dentry(ino);
      for (let i = 0; d !== undefined && i < n; i++) this.table.close(d);
    }
    this.adoptedOpens.clear();
    for (const st of this.files.values()) {
      if (st.kind !== 'file') {
        this.dropAhead(st);
        continue;
      }
      st.holdTimer?.cancel();
      if (st.counted) this.table.close(st.dentry);
    }
    this.files.clear();
    this.opensByUid.clear();
    this.nsOpensByUid.clear();
    for (const inode of [...this.table.inodes()]) {
      const d = inode.dentry;
      if (d !== null && d.lookups > 0) this.table.forget(d.ino, d.lookups);
    }
    for (const inode of this.table.inodes()) {
      const o = inode.object;
      if (o !== undefined) this.kinds.of(inode)?.dropped(o);
    }
  }

  /** Runs one sweep now (tests; the timer calls it). */
  sweep(): Promise<void> {
    if (this.sweeping !== null) return this.sweeping;
    this.sweeping = this.doSweep().finally(() => {
      this.sweeping = null;
    });
    return this.sweeping;
  }

  private scheduleSweep(ms: number): void {
    this.sweepTimer = this.timers.setTimeout(() => {
      this.sweepTimer = null;
      void this.sweep().finally(() => {
        if (!this.stopped && this.sweepTimer === null) this.scheduleSweep(this.sweepIntervalMs);
      });
    }, ms);
  }

  private async doSweep(): Promise<void> {
    const dormant = new Map<HandleKind, Inode<HandleObject>[]>();
    for (const kind of this.kinds.all()) dormant.set(kind, []);
    for (const inode of this.table.inodes()) {
      if (this.table.isDead(inode)) continue;
      const kind = this.kinds.of(inode);
      if (kind !== undefined && !kind.trusted(inode)) dormant.get(kind)!.push(inode);
    }
    this.sweepStats.runs++;
    for (const [kind, inodes] of dormant) {
      try {
        this.sweepStats.dead += await kind.sweep(inodes);
      } catch (err) {
        this.log.warn({ err }, `sweep of ${kind.name} handles failed`);
      }
    }
  }

  // ---- table events ----

  private onCreated(d: Dentry<HandleObject>): void {
    const o = d.inode.object;
    if (o !== undefined) o.ino = d.ino;
    // Dentries the tree references itself are engaged on the spot; this catches the others
    // (a library pin through InodeTable.pin) once the caller has added its reference.
    queueMicrotask(() => {
      if (!d.released && d.referenced) this.engage(d, false);
    });
  }

  private onReleased(d: Dentry<HandleObject>): void {
    const o = d.inode.object;
    if (o !== undefined) this.kinds.of(d.inode)?.released(o);
  }

  private onDead(inode: Inode<HandleObject>): void {
    const kind = this.kinds.of(inode);
    kind?.dead(inode);
    if (inode.dentry === null) return; // the kernel cannot hold a node it has no lookup of
    const dir = kind?.dirOf(inode);
    if (dir !== undefined) this.invalidator.entry(dir, String(inode.key));
    this.invalidator.entry(BY_INO_DIR, String(inode.ino));
    this.invalidator.inode(inode.ino);
  }

  private onDropped(inode: Inode<HandleObject>): void {
    const o = inode.object;
    if (o !== undefined) this.kinds.of(inode)?.dropped(o);
  }

  /** The kind of a dentry's inode: every dentry is of a kind this tree makes. */
  private kindOf(d: Dentry<HandleObject>): HandleKind {
    return this.kinds.of(d.inode)!;
  }

  /** Starts what a referenced handle needs (exit watch, namespace hold); `byRoot`: a use by root, which restarts a namespace's grace. */
  private engage(d: Dentry<HandleObject>, byRoot: boolean): void {
    this.kindOf(d).engage(d, byRoot);
  }

  /** Whether the handle is listed and resolves for the caller (hidepid=invisible). */
  private async visible(ctx: Caller, d: Dentry<HandleObject>): Promise<boolean> {
    if (this.policy.hidepid !== 'invisible' || isPrivileged(ctx)) return true;
    return this.kindOf(d).visible(ctx, d.object);
  }

  /** The entry timeout of a handle: 0 under hidepid=invisible, so every path walk asks again as its caller. */
  private handleEntryTimeout(): number {
    return this.policy.hidepid === 'invisible' ? 0 : this.entryTimeout;
  }

  // ---- entries and attributes ----

  private staticAttr(ino: Ino): Attr {
    const n = STATIC_NODES.get(ino)!;
    return {
      ino,
      mode: S_DIR,
      nlink: 2 + n.children.length,
      uid: 0,
      gid: 0,
      size: 0,
      blocks: 0,
      atimeMs: this.startMs,
      mtimeMs: this.startMs,
      ctimeMs: this.startMs,
    };
  }

  private staticEntry(ino: Ino): Entry {
    return {
      nodeId: ino,
      generation: STATIC_GENERATION,
      attr: this.staticAttr(ino),
      entryTimeout: this.entryTimeout,
      attrTimeout: this.attrTimeout,
    };
  }

  /** Attributes of a handle: mode, owner and times are its kind's (mirroring /proc), the rest the tree's. */
  attrOf(inode: Inode<HandleObject>): Attr {
    const a = this.kinds.of(inode)?.attr(inode);
    const t = a?.timeMs ?? this.startMs;
    return { ino: inode.ino, mode: a?.mode ?? S_IFREG, nlink: 1, uid: a?.uid ?? 0, gid: a?.gid ?? 0, size: 0, blocks: 0, atimeMs: t, mtimeMs: t, ctimeMs: t };
  }

  entryOf(d: Dentry<HandleObject>): Entry {
    return {
      nodeId: d.ino,
      generation: d.inode.generation,
      attr: this.attrOf(d.inode),
      entryTimeout: this.handleEntryTimeout(),
      attrTimeout: this.attrTimeout,
    };
  }

  /**
   * undefined when the rows of `inos` are durable; else a promise that resolves once they are,
   * and rejects with EIO if they cannot be made so (the write-ahead rule).
   */
  private durable(inos: Ino | Iterable<Ino>): Promise<void> | undefined {
    const p = this.table.durableOf(inos);
    if (p === undefined) return undefined;
    return p.then(
      () => this.storeErrors.resolved('flush', 'inode numbers are made durable again'),
      (err: unknown) => {
        this.storeErrors.error('flush', err, 'inode numbers could not be made durable; not revealing them');
        fail(Errno.EIO, 'inode store flush failed');
      },
    );
  }

  /**
   * Turns a held dentry into one kernel lookup and answers with its entry once its number is
   * durable: at once (no Promise) when nothing must be checked, read or committed. A handle the
   * caller may not see (hidepid=invisible) is given back and answers `hiddenErrno`.
   */
  private reveal(ctx: Caller, d: Dentry<HandleObject>, hiddenErrno: number = Errno.ENOENT): Entry | Promise<Entry> {
    if (this.policy.hidepid !== 'invisible' || isPrivileged(ctx)) return this.revealShown(ctx, d);
    return this.visible(ctx, d).then(
      (shown) => {
        if (!shown || d.released) {
          if (!d.released) this.table.put(d);
          fail(hiddenErrno);
        }
        return this.revealShown(ctx, d);
      },
      (err: unknown) => {
        this.table.put(d);
        throw err;
      },
    );
  }

  private revealShown(ctx: Caller, d: Dentry<HandleObject>): Entry | Promise<Entry> {
    this.table.addLookups(d, 1);
    this.table.put(d);
    this.engage(d, isPrivileged(ctx));
    const p = this.durable(d.ino);
    if (p === undefined) return this.entryOf(d);
    return p.then(
      () => this.entryOf(d),
      (err: unknown) => {
        this.table.forget(d.ino, 1);
        throw err;
      },
    );
  }

  private revealOrEnoent(ctx: Caller, p: Promise<Dentry<HandleObject> | null>): Promise<Entry> {
    return p.then((d) => {
      if (d === null) fail(Errno.ENOENT);
      return this.reveal(ctx, d);
    });
  }

  // ---- LOOKUP / FORGET / GETATTR ----

  lookup(ctx: RequestContext, parent: Ino, name: string): Entry | Promise<Entry> {
    if (nameTooLong(name)) fail(Errno.ENAMETOOLONG);
    if (name === '.' || name === '..') return this.lookupDot(ctx, parent, name);
    if (!isStatic(parent)) fail(this.table.inode(parent) !== undefined ? Errno.ENOTDIR : Errno.ENOENT);
    if (!STATIC_NODES.has(parent)) fail(Errno.ENOENT);
    const kind = this.kinds.forDir(parent);
    if (kind !== undefined) {
      const key = kind.parseName(name);
      if (key === undefined) fail(Errno.ENOENT);
      const known = kind.acquireTrustedIn(parent, key);
      return known !== null ? this.reveal(ctx, known) : this.revealOrEnoent(ctx, kind.acquireIn(parent, key));
    }
    if (parent === BY_INO_DIR) {
      const ino = parseInoName(name);
      if (ino === undefined) fail(Errno.ENOENT);
      return this.lookupIno(ctx, ino, Errno.ENOENT);
    }
    const child = staticChild(parent, name);
    if (child === undefined) fail(Errno.ENOENT);
    return this.staticEntry(child.ino);
  }

  /** "." and ".." (FUSE_EXPORT_SUPPORT: the kernel decodes a file handle with LOOKUP "." on its node id). */
  private lookupDot(ctx: Caller, parent: Ino, name: '.' | '..'): Entry | Promise<Entry> {
    const st = STATIC_NODES.get(parent);
    if (st !== undefined) return this.staticEntry(name === '.' ? parent : st.parent);
    if (isStatic(parent)) fail(Errno.ESTALE);
    if (name === '..') fail(this.table.inode(parent) !== undefined ? Errno.ENOTDIR : Errno.ESTALE);
    return this.lookupIno(ctx, parent, Errno.ESTALE);
  }

  /** A handle by its number: a dead one is gone (errno); a dormant one is re-validated first. */
  private lookupIno(ctx: Caller, ino: Ino, errno: number): Entry | Promise<Entry> {
    const inode = this.table.inode(ino);
    if (inode === undefined || this.table.isDead(inode)) fail(errno);
    const known = this.kinds.of(inode)?.acquireKnown(inode) ?? null;
    if (known !== null) return this.reveal(ctx, known, errno);
    return this.acquireIno(ino).then((d) => {
      if (d === null) fail(errno);
      return this.reveal(ctx, d, errno);
    });
  }

  private async acquireIno(ino: Ino): Promise<Dentry<HandleObject> | null> {
    const inode = this.table.inode(ino);
    if (inode === undefined || this.table.isDead(inode)) return null;
    return (await this.kinds.of(inode)?.acquireInode(inode)) ?? null;
  }

  forget(nodeId: Ino, nlookup: number): void {
    if (isStatic(nodeId)) return;
    if (this.options.resumed) {
      // The kernel's FORGET carries its whole count, including lookups a predecessor gave.
      const d = this.table.dentry(nodeId);
      if (d === undefined) return; // never adopted here: nothing counted, nothing to take back
      if (this.adopted.delete(nodeId) && nlookup > d.lookups) {
        this.adoptStats.forgetsClamped++;
        nlookup = d.lookups;
      }
    }
    this.table.forget(nodeId, nlookup);
  }

  /**
   * The dentry of a node the kernel refers to. After a restart the kernel still holds nodes a
   * predecessor revealed: such a node is re-validated (a process or namespace that is gone gives
   * undefined), its exit watch re-armed, and it is counted as one lookup until the kernel's FORGET.
   */
  private async adopt(nodeId: Ino): Promise<Dentry<HandleObject> | undefined> {
    const d = this.table.dentry(nodeId);
    if (d !== undefined || !this.options.resumed) return d;
    const a = await this.acquireIno(nodeId);
    if (a === null) return undefined;
    if (!this.adopted.has(nodeId)) {
      this.adopted.add(nodeId);
      this.adoptStats.nodes++;
      this.table.addLookups(a, 1);
    }
    this.table.put(a);
    this.engage(a, false);
    return a.released ? undefined : a;
  }

  getattr(ctx: RequestContext, nodeId: Ino): AttrReply | Promise<AttrReply> {
    if (STATIC_NODES.has(nodeId)) return { attr: this.staticAttr(nodeId), attrTimeout: this.attrTimeout };
    const inode = this.table.inode(nodeId);
    if (inode === undefined) fail(Errno.ENOENT);
    if (inode.dentry === null && this.options.resumed) {
      return this.adopt(nodeId).then((d) => {
        if (d === undefined) fail(Errno.ESTALE);
        return { attr: this.attrOf(d.inode), attrTimeout: this.attrTimeout };
      });
    }
    if (inode.object === undefined) fail(Errno.ESTALE);
    const root = isPrivileged(ctx);
    if (inode.dentry !== null && root) this.kinds.of(inode)?.used(inode.object);
    const reply = { attr: this.attrOf(inode), attrTimeout: this.attrTimeout };
    if (this.policy.hidepid !== 'invisible' || root || inode.dentry === null) return reply;
    // A name another user looked up may be in the kernel's cache: judge this caller too.
    return this.visible(ctx, inode.dentry).then((shown) => (shown ? reply : fail(Errno.ENOENT)));
  }

  /**
   * Inodes: used = handles in the table, free = numbers the allocator can still hand out (up to
   * 2^53 - 1), total = both. A full-looking filesystem (ffree 0) alarms disk monitors for nothing.
   */
  statfs(): StatfsReply {
    const c = this.table.counters();
    const last = c.lastAllocated > 0 ? c.lastAllocated : Math.max(c.highWater - 1, FIRST_DYNAMIC_INO - 1);
    const ffree = Math.max(0, MAX_INO - last);
    return {
      blocks: 0,
      bfree: 0,
      bavail: 0,
      files: c.inodes + ffree,
      ffree,
      bsize: 4096,
      namelen: 255,
      frsize: 4096,
    };
  }

  // ---- files ----

  async open(ctx: RequestContext, nodeId: Ino, _flags = 0): Promise<OpenReply> {
    if (STATIC_NODES.has(nodeId)) fail(Errno.EISDIR);
    const d = this.table.dentry(nodeId) ?? (await this.adopt(nodeId));
    if (d === undefined) fail(this.table.inode(nodeId) !== undefined ? Errno.ESTALE : Errno.ENOENT);
    const caller: Caller = { uid: ctx.uid, gid: ctx.gid, pid: ctx.pid };
    const root = isPrivileged(caller);
    const kind = this.kindOf(d);
    const holding = kind.holdsOnOpen;
    this.table.get(d); // the checks below may wait: keep the dentry meanwhile
    try {
      await this.checkOpen(caller, d);
    } finally {
      this.table.put(d);
    }
    if (d.released) fail(Errno.ESTALE);
    if (!root) this.countOpen(caller.uid, holding);
    this.opened(d, 1);
    let data: Buffer;
    let dead = false;
    try {
      await kind.opened(d, root);
      dead = this.table.isDead(d.inode);
      data = await this.render(d, caller);
    } catch (err) {
      this.opened(d, -1);
      if (!root) this.uncountOpen(caller.uid, holding);
      throw err;
    }
    const fh = this.nextFh++;
    const st: FileState = { kind: 'file', dentry: d, caller, counted: true, holdTimer: null, data, fresh: true, dead };
    if (holding && !root) {
      // A user's descriptor keeps a namespace held for a bounded time only (docs/tree.md).
      st.holdTimer = this.timers.setTimeout(() => {
        st.holdTimer = null;
        if (this.files.get(fh) !== st || !st.counted) return;
        st.counted = false;
        this.opened(d, -1);
        if (!d.released) kind.engage(d, false); // judge the hold again after the grace
      }, this.userNsHoldMs);
    }
    this.files.set(fh, st);
    return { fh, directIo: true };
  }

  /** EACCES (ENOENT where hidepid=invisible hides it) when /proc would not let the caller read this. */
  private async checkOpen(caller: Caller, d: Dentry<HandleObject>): Promise<void> {
    if (isPrivileged(caller)) return;
    const o = d.object;
    const hiddenErrno = this.policy.hidepid === 'invisible' ? Errno.ENOENT : Errno.EACCES;
    if (!(await this.kindOf(d).mayOpen(caller, o))) fail(hiddenErrno);
  }

  /** Takes one of the opens adopted for `nodeId` (adoptHeld), if any is left. */
  private takeAdoptedOpen(nodeId: number): boolean {
    const n = this.adoptedOpens.get(nodeId) ?? 0;
    if (n <= 0) return false;
    if (n === 1) this.adoptedOpens.delete(nodeId);
    else this.adoptedOpens.set(nodeId, n - 1);
    return true;
  }

  /**
   * One open file more (+1) or less (-1) on the dentry. A namespace handle's count goes to the
   * keeper too: a successor keeps the namespace held while files a predecessor saw opened may
   * still be open (docs/architecture.md, "Surviving restarts").
   */
  private opened(d: Dentry<HandleObject>, delta: 1 | -1): void {
    if (delta > 0) this.table.open(d);
    else this.table.close(d);
    const o = d.object;
    if (o instanceof NsObject) this.handOff?.namespaceOpens(o.type, o.inum, d.opens);
  }

  /** Counts a non-root open against its uid's limits (EMFILE beyond them). */
  /** `holding`: an open of a kind that holds a host object for its opener (holdsOnOpen), limited apart. */
  private countOpen(uid: number, holding: boolean, adopted = false): void {
    const all = this.opensByUid.get(uid) ?? 0;
    const ns = this.nsOpensByUid.get(uid) ?? 0;
    if (!adopted && (all >= this.maxOpenPerUser || (holding && ns >= this.maxNsOpensPerUser))) {
      this.log.debug({ uid, open: all, namespaces: ns }, 'per-user open limit reached');
      fail(Errno.EMFILE, 'too many handlefs files open for this user');
    }
    this.opensByUid.set(uid, all + 1);
    if (holding) this.nsOpensByUid.set(uid, ns + 1);
  }

  private uncountOpen(uid: number, holding: boolean): void {
    const dec = (m: Map<number, number>) => {
      const n = (m.get(uid) ?? 0) - 1;
      if (n > 0) m.set(uid, n);
      else m.delete(uid);
    };
    dec(this.opensByUid);
    if (holding) dec(this.nsOpensByUid);
  }

  /** Answered synchronously from the open file's text unless it must be rendered (or adopted) first. */
  read(ctx: RequestContext, nodeId: Ino, fh: number, offset: number, size: number): Buffer | Promise<Buffer> {
    const st = this.files.get(fh);
    if (st !== undefined) return this.readOpen(st, offset, size);
    return this.adoptFile(nodeId, fh, { uid: ctx.uid, gid: ctx.gid, pid: ctx.pid }).then((a) => this.readOpen(a, offset, size));
  }

  private readOpen(st: FileState | DirState | undefined, offset: number, size: number): Buffer | Promise<Buffer> {
    if (st === undefined || st.kind !== 'file') fail(Errno.EBADF);
    if (st.counted && isPrivileged(st.caller)) this.kindOf(st.dentry).used(st.dentry.object);
    // A read from the start renders again, like /proc; so does the first one if the object died
    // since OPEN rendered it (a descriptor of an exited process then reads its dead state).
    if (offset === 0 && (!st.fresh || (!st.dead && this.table.isDead(st.dentry.inode)))) {
      st.dead = this.table.isDead(st.dentry.inode);
      return this.render(st.dentry, st.caller).then((data) => {
        st.data = data;
        st.fresh = false;
        return slice(st.data, offset, size);
      });
    }
    st.fresh = false;
    return slice(st.data, offset, size);
  }

  /** A file a predecessor opened (a restart): adopted as open here, its text rendered afresh. */
  private async adoptFile(nodeId: Ino, fh: number, caller: Caller): Promise<FileState | undefined> {
    if (!this.options.resumed || STATIC_NODES.has(nodeId)) return undefined;
    const d = await this.adopt(nodeId);
    if (d === undefined) return undefined;
    const raced = this.files.get(fh);
    if (raced !== undefined) return raced.kind === 'file' ? raced : undefined;
    // One of the opens the predecessor counted (kept by the keeper) is this file: it moves here.
    const took = this.takeAdoptedOpen(nodeId);
    if (!took) this.opened(d, 1);
    const undo = (): void => {
      if (took) this.adoptedOpens.set(nodeId, (this.adoptedOpens.get(nodeId) ?? 0) + 1);
      else this.opened(d, -1);
    };
    let data: Buffer;
    try {
      data = await this.render(d, caller);
    } catch (err) {
      undo();
      throw err;
    }
    const again = this.files.get(fh);
    if (again !== undefined) {
      undo();
      return again.kind === 'file' ? again : undefined;
    }
    // Not fresh: a read at offset 0 renders again, one further on reads this snapshot.
    // The opener is unknown (a predecessor checked it): what the text shows is judged by the reader.
    const st: FileState = { kind: 'file', dentry: d, caller, counted: true, holdTimer: null, data, fresh: false, dead: this.table.isDead(d.inode) };
    this.files.set(fh, st);
    if (!isPrivileged(caller)) this.countOpen(caller.uid, this.kindOf(d).holdsOnOpen, true); // release uncounts it
    this.adoptStats.files++;
    return st;
  }

  release(_ctx: RequestContext, nodeId: Ino, fh: number): void {
    const st = this.files.get(fh);
    if (st === undefined && this.takeAdoptedOpen(nodeId)) {
      // A file a predecessor opened, never read here: one of the opens the keeper kept ends.
      const d = this.table.dentry(nodeId);
      if (d !== undefined) this.opened(d, -1);
      return;
    }
    if (st === undefined || st.kind !== 'file') return;
    this.files.delete(fh);
    st.holdTimer?.cancel();
    const kind = this.kindOf(st.dentry);
    if (st.kh !== undefined) kind.forgetPoller(st.dentry.inode, st.kh);
    const root = isPrivileged(st.caller);
    if (!root) this.uncountOpen(st.caller.uid, kind.holdsOnOpen);
    if (root) kind.used(st.dentry.object);
    if (st.counted) this.opened(st.dentry, -1);
    if (kind.holdsOnOpen && !root && !st.dentry.released) kind.engage(st.dentry, false);
  }

  /** access(2): writes are EROFS, execution EACCES; reading as open would judge it. */
  async access(ctx: RequestContext, nodeId: Ino, mask: number): Promise<void> {
    if ((mask & W_OK) !== 0) fail(Errno.EROFS);
    if (STATIC_NODES.has(nodeId)) return;
    const d = this.table.dentry(nodeId);
    if (d === undefined) fail(this.table.inode(nodeId) !== undefined ? Errno.ESTALE : Errno.ENOENT);
    if ((mask & X_OK) !== 0) fail(Errno.EACCES);
    if ((mask & R_OK) === 0) return;
    this.table.get(d);
    try {
      await this.checkOpen({ uid: ctx.uid, gid: ctx.gid, pid: ctx.pid }, d);
    } finally {
      this.table.put(d);
    }
  }

  /**
   * Ready events of an open handle, from its kind's actions: a process handle is readable once the
   * process has exited (the pidfd contract); `kh` is woken (FUSE_NOTIFY_POLL) at the exit.
   * The check and the registration run in one synchronous step, so the exit cannot slip between.
   * A file a predecessor opened (a restart) is adopted first.
   */
  poll(ctx: RequestContext, nodeId: Ino, fh: number, _events: number, kh?: number): number | Promise<number> {
    const st = this.files.get(fh);
    if (st === undefined) return this.adoptFile(nodeId, fh, { uid: ctx.uid, gid: ctx.gid, pid: ctx.pid }).then((a) => (a === undefined ? fail(Errno.EBADF) : this.pollFile(a, kh)));
    if (st.kind !== 'file') fail(Errno.EBADF);
    return this.pollFile(st, kh);
  }

  private pollFile(st: FileState, kh: number | undefined): number {
    const inode = st.dentry.inode;
    const kind = this.kinds.of(inode);
    if (kind === undefined) fail(Errno.EBADF);
    if (kh !== undefined) st.kh = kh;
    const ready = kind.poll(inode, kh);
    // A waiter a successor must wake (the keeper wakes it at a takeover: it then polls anew).
    if (ready === 0 && kh !== undefined) this.handOff?.polled(kh);
    return ready;
  }

  // ---- actions by handle number (the service's control socket) ----

  /**
   * Runs `fn` on the handle numbered `ino` with a hold on it (so its pidfd or namespace hold stays
   * while `fn` runs, waits included). A live handle is re-validated first; a dead one is still
   * found while the kernel references it (its ending can be read, signals are refused).
   */
  async withHandle<T>(ino: Ino, fn: (inode: Inode<HandleObject>, kind: HandleKind) => T | Promise<T>): Promise<T> {
    const inode = this.table.inode(ino);
    const kind = inode === undefined ? undefined : this.kinds.of(inode);
    if (inode === undefined || inode.object === undefined || kind === undefined) throw new ActionError('ENOENT', `no handle numbered ${ino}`);
    let d: Dentry<HandleObject> | null;
    if (this.table.isDead(inode)) d = inode.dentry === null ? null : this.table.get(inode.dentry);
    else {
      d = await this.acquireIno(ino);
      if (d === null && !this.table.isDead(inode)) throw new ActionError('ENOENT', `the object of handle ${ino} is gone`);
      // The service's own use (like a library pin): the namespace grace restarts as for root.
      if (d !== null) this.engage(d, true);
    }
    try {
      return await fn(inode, kind);
    } finally {
      if (d !== null) this.table.put(d);
    }
  }

  /** The namespaces to enter for handle `ino` (a namespace, or all of a process's). */
  enterTargets(ino: Ino): Promise<EnterTarget[]> {
    return this.withHandle(ino, (inode, a) => a.enter(inode));
  }

  /** The namespace to bind-mount for handle `ino`; refused for a process handle. */
  bindTarget(ino: Ino): Promise<EnterTarget> {
    return this.withHandle(ino, (inode, a) => a.bind(inode));
  }

  signal(ino: Ino, signal: number, caller: ActionCaller): Promise<void> {
    return this.withHandle(ino, (inode, a) => a.signal(inode, signal, caller));
  }

  wait(ino: Ino, caller: ActionCaller, signal?: AbortSignal): Promise<ProcessEnding> {
    return this.withHandle(ino, (inode, a) => a.wait(inode, caller, signal));
  }

  /**
   * After a crash: takes over the namespaces the predecessor held (the keeper kept them alive).
   * Each is adopted as a node the kernel may hold and goes through the usual grace policy from
   * here: one with a bind mount of its handle (`bound`: inode numbers) is held as root's, as the
   * predecessor held it; so is one whose handle had open files (`opens`, as the predecessor told
   * the keeper), until the kernel's RELEASEs close them; the others are let go after the grace
   * unless root uses them meanwhile (nothing says the kernel still refers to them). Returns those
   * it could not adopt.
   */
  async adoptHeld<T extends { type: string; inum: number; nsId: string | null; opens?: number }>(held: readonly T[], bound: ReadonlySet<Ino>): Promise<T[]> {
    const missed: T[] = [];
    await mapLimit([...held], this.ctx.concurrency, async (h) => {
      const inode = this.namespaces.current(h.inum);
      const o = this.namespaces.objectOf(inode);
      if (inode === undefined || inode.incarnation !== nsIncarnation(h.nsId) || (o !== undefined && o.type !== h.type)) {
        missed.push(h);
        return;
      }
      const d = await this.adopt(inode.ino).catch(() => undefined);
      // A hold a kernel request opened first may have been closed since (its grace ended): the
      // keeper's copy is still there until this decision, so it is opened again.
      const taken = d === undefined ? undefined : this.namespaces.objectOf(d.inode);
      if (d === undefined || taken === undefined || !(await this.namespaces.ensureHold(taken).catch(() => false))) {
        missed.push(h);
        return;
      }
      // Files the predecessor saw opened (the keeper kept the count) may still be open: held
      // as root's until the kernel's RELEASEs say they are closed.
      const opens = Math.min(h.opens ?? 0, 1 << 20);
      if (opens > 0 && !this.adoptedOpens.has(inode.ino)) {
        for (let i = 0; i < opens; i++) this.table.open(d);
        this.adoptedOpens.set(inode.ino, opens);
      }
      if (bound.has(inode.ino) || opens > 0) this.namespaces.engage(d, true);
    });
    return missed;
  }

  /** Namespaces handlefs holds open now, with what references each handle (for status). */
  heldNamespaces(): HeldNamespace[] {
    return this.namespaces.held();
  }

  /**
   * What the handle listing shows of an inode besides its counts: its kind's description (null
   * while its object is unknown, after a restart) and the paths that name it.
   */
  describe(inode: Inode<HandleObject>): { name: string | null; held: boolean | null; paths: string[] } {
    const kind = this.kinds.of(inode);
    const o = inode.object;
    const d = o === undefined ? undefined : kind?.describe(o);
    const paths = [`${staticPath(BY_INO_DIR)}/${inode.ino}`];
    const dir = kind?.dirOf(inode);
    if (dir !== undefined) paths.push(`${staticPath(dir)}/${inode.key}`);
    return { name: d?.name ?? null, held: d?.held ?? null, paths };
  }

  /** The handle number a path inside the mount names (`/ns/net/<inum>`, `/pid/<pid>`, `/by-ino/<n>`), if known. */
  inoOfPath(rel: string): Ino | undefined {
    const parts = rel.split('/').filter((x) => x !== '');
    const name = parts.pop();
    let dir: Ino = ROOT_DIR;
    for (const part of parts) {
      const child = staticChild(dir, part);
      if (child === undefined) return undefined;
      dir = child.ino;
    }
    if (name === undefined) return undefined;
    if (dir === BY_INO_DIR) return parseInoName(name);
    const kind = this.kinds.forDir(dir);
    const key = kind?.parseName(name);
    return key === undefined ? undefined : kind!.current(key)?.ino;
  }

  /** The handle's text, as of now. Numbers it shows are durable before it returns. */
  private async render(d: Dentry<HandleObject>, caller: Caller): Promise<Buffer> {
    const holds: Dentry<HandleObject>[] = [];
    try {
      const text = await this.kindOf(d).render(d, caller, holds);
      await this.durable([d.ino, ...holds.map((h) => h.ino)]);
      return Buffer.from(text, 'utf8');
    } finally {
      putAll(this.table, holds);
    }
  }

  // ---- directories ----

  opendir(ctx: RequestContext, nodeId: Ino, _flags = 0): OpenReply {
    if (!STATIC_NODES.has(nodeId)) fail(this.table.inode(nodeId) !== undefined ? Errno.ENOTDIR : Errno.ENOENT);
    if (!isPrivileged(ctx)) this.countOpen(ctx.uid, false);
    const fh = this.nextFh++;
    this.files.set(fh, { kind: 'dir', ino: nodeId, uid: ctx.uid, keys: null, ahead: new Map() });
    return { fh };
  }

  releasedir(_ctx: RequestContext, _nodeId: Ino, fh: number): void {
    const st = this.files.get(fh);
    if (st === undefined || st.kind !== 'dir') return;
    this.files.delete(fh);
    this.dropAhead(st);
    if (st.uid !== 0) this.uncountOpen(st.uid, false);
  }

  /** Gives back the holds of handles registered ahead for a listing (it ended, or starts over). */
  private dropAhead(st: DirState): void {
    st.closed = true;
    this.putAhead(st);
  }

  /** Gives back the holds of what was registered ahead (the listing may go on). */
  private putAhead(st: DirState): void {
    if (st.ahead === undefined || st.ahead.size === 0) return;
    putAll(this.table, [...st.ahead.values()]);
    st.ahead.clear();
  }

  async readdir(ctx: RequestContext, nodeId: Ino, fh: number, offset: number, size: number, plus: boolean): Promise<DirEntry[]> {
    const node = STATIC_NODES.get(nodeId);
    if (node === undefined) fail(this.table.inode(nodeId) !== undefined ? Errno.ENOTDIR : Errno.ENOENT);
    const known = this.files.get(fh);
    const st: DirState = known !== undefined && known.kind === 'dir' && known.ino === nodeId ? known : { kind: 'dir', ino: nodeId, uid: ctx.uid, keys: null };
    const show = await this.listFilter(ctx);
    const root = isPrivileged(ctx);
    const out: DirEntry[] = [];
    const budget = { left: size };
    const take = (name: string): boolean => {
      const n = direntSize(name, plus);
      if (n > budget.left) return false;
      budget.left -= n;
      return true;
    };
    // "." = cookie 1, ".." = cookie 2 everywhere.
    if (offset < 1) {
      if (!take('.')) return out;
      out.push({ name: '.', ino: nodeId, type: S_IFDIR, offset: 1 });
    }
    if (offset < 2) {
      if (!take('..')) return out;
      out.push({ name: '..', ino: node.parent, type: S_IFDIR, offset: 2 });
    }
    if (node.children.length > 0) {
      // Static children: cookies 3, 4, ...
      for (let i = 0; i < node.children.length; i++) {
        const cookie = 3 + i;
        if (cookie <= offset) continue;
        const c = node.children[i]!;
        const child = STATIC_NODES.get(c)!;
        if (!take(child.name)) break;
        out.push({ name: child.name, ino: c, type: S_IFDIR, offset: cookie, ...(plus ? { entry: this.staticEntry(c) } : {}) });
      }
      return out;
    }
    if (offset === 0 || st.keys === null) {
      this.putAhead(st);
      st.keys = await this.listKeys(nodeId);
    }
    const keys = st.keys;
    if (nodeId === BY_INO_DIR) {
      // Cookie = the number itself (>= 1024, so never 1 or 2).
      return this.fill(st, out, budget, keys, offset, (k) => k, plus, (ino) => this.acquireIno(ino), show, root);
    }
    // Cookie = key + 2: a listing resumes after the last key it showed, whoever came and went.
    const kind = this.kinds.forDir(nodeId)!;
    return this.fill(st, out, budget, keys, offset, (k) => k + 2, plus, (key) => kind.acquireIn(nodeId, key), show, root);
  }

  /** Which handles a listing shows the caller: all, or (hidepid=invisible) those it may inspect. */
  private async listFilter(ctx: Caller): Promise<(d: Dentry<HandleObject>) => boolean> {
    if (this.policy.hidepid !== 'invisible' || isPrivileged(ctx)) return () => true;
    const kinds = [...this.kinds.all()];
    const filters = new Map(await Promise.all(kinds.map(async (k) => [k.name, await k.listFilter(ctx)] as const)));
    return (d) => filters.get(d.inode.kind)?.(d.object) ?? false;
  }

  /** What a handle directory lists, ascending. */
  private async listKeys(dir: Ino): Promise<Array<Key | Ino>> {
    if (dir === BY_INO_DIR) {
      const inos: Ino[] = [];
      for (const inode of this.table.inodes()) if (!this.table.isDead(inode)) inos.push(inode.ino);
      return inos.sort((a, b) => a - b);
    }
    return this.kinds.forDir(dir)!.list(dir);
  }

  /**
   * Adds handle entries after cookie `offset`, resolving only as many as can fit in the reply.
   * Plain READDIR: each entry's number is instantiated (held, then put) so d_ino agrees with
   * stat. READDIRPLUS: each entry is one lookup. Numbers are durable before this returns.
   * Then the handles of the next reply are registered ahead (see DirState.ahead); nothing of
   * theirs is revealed here: each number reaches the kernel only in a reply that checks its row.
   */
  private async fill(
    st: DirState,
    out: DirEntry[],
    budget: { left: number },
    keys: readonly number[],
    offset: number,
    cookieOf: (key: number) => number,
    plus: boolean,
    acquire: (key: number) => Promise<Dentry<HandleObject> | null>,
    show: (d: Dentry<HandleObject>) => boolean,
    byRoot: boolean,
  ): Promise<DirEntry[]> {
    let i = lowerBound(keys, (k) => cookieOf(k) > offset);
    const held: Dentry<HandleObject>[] = [];
    const looked: Dentry<HandleObject>[] = [];
    try {
      while (i < keys.length) {
        const batch: number[] = [];
        let need = 0;
        while (i < keys.length && batch.length < LIST_BATCH) {
          const n = direntSize(String(keys[i]), plus);
          if (need + n > budget.left) break;
          need += n;
          batch.push(keys[i]!);
          i++;
        }
        if (batch.length === 0) break;
        const found = await mapLimit(batch, this.ctx.concurrency, (k) =>
          this.takeAhead(st, k, acquire).catch((err: unknown) => {
            this.log.debug({ err, key: k }, 'listing: entry skipped');
            return null;
          }),
        );
        for (let j = 0; j < batch.length; j++) {
          const d = found[j];
          if (d === null || d === undefined) continue;
          held.push(d);
          if (!show(d)) continue;
          const key = batch[j]!;
          const name = String(key);
          budget.left -= direntSize(name, plus);
          if (plus) {
            this.table.addLookups(d, 1);
            looked.push(d);
            this.engage(d, byRoot);
          }
          out.push({ name, ino: d.ino, type: S_IFREG, offset: cookieOf(key), ...(plus ? { entry: this.entryOf(d) } : {}) });
        }
      }
      await this.registerAhead(st, keys, i, acquire);
      try {
        await this.durable(held.map((d) => d.ino));
      } catch (err) {
        for (const d of looked) this.table.forget(d.ino, 1);
        throw err;
      }
      return out;
    } finally {
      putAll(this.table, held);
    }
  }

  /** The handle registered ahead under `key` (its hold passes to the caller) if it still lives; else a fresh acquire. */
  private takeAhead(st: DirState, key: number, acquire: (key: number) => Promise<Dentry<HandleObject> | null>): Promise<Dentry<HandleObject> | null> {
    const d = st.ahead?.get(key);
    if (d === undefined) return acquire(key);
    st.ahead!.delete(key);
    if (!this.table.isDead(d.inode)) return Promise.resolve(d);
    this.table.put(d);
    return acquire(key);
  }

  /**
   * Registration ahead of lookup: reads, numbers and watches the handles of keys[from..] (up to
   * LIST_AHEAD), holding each, and starts the commit of their rows without waiting for it. Their
   * exits are seen as for any watched handle (takeAhead skips the dead). Entries of keys before
   * `from` that were never used (the kernel asked from another offset) are given back.
   */
  private async registerAhead(st: DirState, keys: readonly number[], from: number, acquire: (key: number) => Promise<Dentry<HandleObject> | null>): Promise<void> {
    const ahead = st.ahead;
    if (ahead === undefined || isClosed(st) || this.stopped) return;
    const want = new Set(keys.slice(from, from + LIST_AHEAD));
    for (const [k, d] of ahead) {
      if (want.has(k)) continue;
      ahead.delete(k);
      this.table.put(d);
    }
    const todo = [...want].filter((k) => !ahead.has(k));
    if (todo.length === 0) return;
    const found = await mapLimit(todo, this.ctx.concurrency, (k) => acquire(k).catch(() => null));
    for (let j = 0; j < todo.length; j++) {
      const d = found[j];
      if (d === null || d === undefined) continue;
      // The directory may have been released while the reads ran.
      if (isClosed(st) || this.stopped || ahead.has(todo[j]!)) {
        this.table.put(d);
        continue;
      }
      this.engage(d, false);
      ahead.set(todo[j]!, d);
    }
    const p = this.table.durableOf([...ahead.values()].map((d) => d.ino));
    p?.catch(() => {}); // a failed commit is retried with the next one, which the next reply awaits
  }
}

/** What the tree tells the keeper for a successor (src/keeper/keeper.ts, the channel's messages). */
export interface HandOffObserver {
  /** A client waits in poll(2) with kernel poll handle `kh`. */
  polled(kh: number): void;
  /** The handle of namespace (type, inum) has `opens` open files now. */
  namespaceOpens(type: NsType, inum: number, opens: number): void;
}

/** Whether a listing's directory was released (read afresh: it changes across an await). */
function isClosed(st: DirState): boolean {
  return st.closed === true;
}

/** First index whose element satisfies `pred` (which must be false then true along the array). */
function lowerBound(a: readonly number[], pred: (x: number) => boolean): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (pred(a[mid]!)) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}
