/**
 * What a kind of handle is: a table of operations, like the kernel's `ns->ops` of nsfs and the
 * `stashed_operations` pidfs and nsfs share. The tree (handle-fs.ts) knows the FUSE requests and
 * the core's counts, each kind knows its objects (how to find, check, keep, show and judge them),
 * and the tree reaches a kind through the table of kinds (kinds.ts), never by branching on which
 * kind it is.
 */
import type { Dentry, Inode } from '../core/inode.js';
import type { IncarnationOrder } from '../core/inode-table.js';
import type { Incarnation, Ino, Key } from '../core/numbers.js';
import type { InodeRecord } from '../core/store.js';
import type { NamespaceSource, ProcessSource } from '../sources/types.js';
import type { Caller } from './access.js';
import type { HandleKindActions } from './actions.js';
import type { HandleObject, TreeContext } from './context.js';

/** A handle's attributes as its kind decides them; the tree adds number, size and link count. */
export interface HandleAttr {
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** atime, mtime and ctime (ms); undefined: the mount's start. */
  readonly timeMs?: number;
}

/** What `handlefs ls` shows of a handle besides its counts. */
export interface HandleDescription {
  /** The command name of a process, the type of a namespace. */
  readonly name: string;
  /** Whether the service holds a host object for it (a namespace descriptor); null for kinds that hold none. */
  readonly held: boolean | null;
}

/**
 * What a kind of handle does. `inode.object` of an inode of this kind is always this kind's
 * object (the core keys its index by kind), or undefined for a row restored from the store and
 * not seen since. Every acquire returns a dentry with one hold (the caller puts it) or null.
 */
export interface HandleKind extends HandleKindActions {
  /** The core's kind (the `kind` of identities and stored rows). */
  readonly name: string;
  /** The handle directories this kind's handles are listed in by key (pid/, ns/<type>/). */
  readonly dirs: readonly Ino[];
  /**
   * An open holds a host object for its opener (a namespace descriptor): opens by non-root users
   * count against their per-user limit of such opens and keep it held for a bounded time only.
   */
  readonly holdsOnOpen: boolean;

  // ---- identity ----
  /** The key a name in one of `dirs` stands for, or undefined if the name cannot be one. */
  parseName(name: string): Key | undefined;
  /** Whether a row stored by an earlier run can still be of this kind (restore prunes the others). */
  keeps(record: InodeRecord): boolean;
  /** The live inode under `key`, if any. */
  current(key: Key): Inode<HandleObject> | undefined;
  /** The directory (of `dirs`) whose name `key` the kernel may cache for this handle: what its death invalidates besides by-ino/. */
  dirOf(inode: Inode<HandleObject>): Ino | undefined;

  // ---- acquire and validate ----
  /** The dentry of `key` in `dir` when it can be had without asking the host, else null. */
  acquireTrustedIn(dir: Ino, key: Key): Dentry<HandleObject> | null;
  /** The dentry of `key` in `dir`, read from the host as needed; null if there is no such object. */
  acquireIn(dir: Ino, key: Key): Promise<Dentry<HandleObject> | null>;
  /** The dentry of a known inode when it can be had without asking the host, else null. */
  acquireKnown(inode: Inode<HandleObject>): Dentry<HandleObject> | null;
  /** The dentry of a known inode after checking with the host that its object lives (else null, and it is marked dead). */
  acquireInode(inode: Inode<HandleObject>): Promise<Dentry<HandleObject> | null>;
  /** Usable without asking the host (watched, or held open). */
  trusted(inode: Inode<HandleObject>): boolean;
  /** Checks dormant inodes of this kind against the host; marks the gone ones dead. Returns how many. */
  sweep(dormant: readonly Inode<HandleObject>[]): Promise<number>;

  // ---- lifetime ----
  /** A referenced handle: start what it needs (exit watch, namespace hold). `byRoot`: a use by root. */
  engage(d: Dentry<HandleObject>, byRoot: boolean): void;
  /** A use by root (getattr, read, release): restarts whatever idle period the kind keeps. */
  used(o: HandleObject): void;
  /** An OPEN passed the checks: make the object ready to be read; throws a FuseError if it cannot be. */
  opened(d: Dentry<HandleObject>, byRoot: boolean): Promise<void>;
  /** The dentry was released (all counts zero). */
  released(o: HandleObject): void;
  /** The object is gone (the table marked the inode dead). */
  dead(inode: Inode<HandleObject>): void;
  /** The inode left the table, or the tree stops: let go of everything held for it. */
  dropped(o: HandleObject): void;

  // ---- what it shows, and to whom ----
  attr(inode: Inode<HandleObject>): HandleAttr;
  /** The handle's text as `caller` may see it; dentries of handles it names are pushed on `holds` (the caller puts them). */
  render(d: Dentry<HandleObject>, caller: Caller, holds: Dentry<HandleObject>[]): Promise<string>;
  /** The keys `dir` lists now, ascending. */
  list(dir: Ino): Promise<Key[]>;
  /** Whether the handle is listed and resolves for a non-root caller under hidepid=invisible. */
  visible(caller: Caller, o: HandleObject): boolean | Promise<boolean>;
  /** Whether a non-root caller may open the handle (what /proc would let it read). */
  mayOpen(caller: Caller, o: HandleObject): boolean | Promise<boolean>;
  /** visible() for many handles of one listing, with what it needs read once. */
  listFilter(caller: Caller): Promise<(o: HandleObject) => boolean>;
  /** What the handle listing of the control socket shows. */
  describe(o: HandleObject): HandleDescription;
}

/** The tree's options (HandleTreeOptions) that kinds read. */
export interface KindOptions {
  /** Idle time (ms) before the kernel is asked to drop a namespace handle's names. */
  readonly nsGraceMs?: number;
  /** Cheap read of what identifies the process now under a pid, and its state, for the sweep of process handles. */
  readonly readIncarnation?: (pid: Key) => Promise<{ incarnation: Incarnation; state: string } | null>;
}

/** What a kind is built from. */
export interface KindSetup {
  readonly ctx: TreeContext;
  readonly processSource: ProcessSource;
  readonly namespaceSource: NamespaceSource;
  readonly options: KindOptions;
  /** A kind built before this one (kinds are built in table order). */
  kind<K extends HandleKind>(name: string): K;
}

/** One row of the table: the kind's name, how the core compares its incarnations, and how to build it. */
export interface HandleKindEntry {
  readonly name: string;
  readonly incarnations: IncarnationOrder;
  create(setup: KindSetup): HandleKind;
}
