/**
 * Namespace handles and the pinning policy.
 *
 * Identity: {kind 'namespace', key: nsfs inode number, incarnation: the kernel's 64-bit namespace
 * id (0 when unknown)}. nsfs numbers are reused once a namespace dies, ids are not.
 *
 * A namespace object holds a NamespaceHandle (an open nsfs descriptor: the namespace cannot die
 * while it is held) for as long as its dentry lives, and a grace period beyond. The kernel's
 * lookups might be a bind mount of the handle, which FUSE cannot tell from a cached dentry, so:
 * once a handle has been idle (no opens, no pins) for the grace period, the tree asks the kernel
 * to drop its cached names (INVAL_ENTRY in ns/<type>/ and by-ino/). An unused dentry then goes,
 * the kernel sends FORGET, the dentry is released and the descriptor closed. A bind mount (or an
 * open file, a cwd...) keeps the kernel's inode: no FORGET comes, the dentry stays and so does the
 * descriptor, until the bind mount is gone.
 */
import type { Dentry, Identity, Inode } from '../core/inode.js';
import { StaleIdentityError } from '../core/inode-table.js';
import type { Incarnation, Ino, Key } from '../core/numbers.js';
import type { InodeRecord } from '../core/store.js';
import { SingleFlight } from '../core/single-flight.js';
import { NS_TYPES, type NamespaceHandle, type NamespaceInfo, type NamespaceRef, type NamespaceSource, type NsType, type ProcessEnding } from '../sources/types.js';
import { DEFAULT_POLLMASK, Errno, S_IFREG } from '../fuse/abi.js';
import { FuseError } from '../fuse/types.js';
import { mapLimit } from '../util/map-limit.js';
import type { Caller } from './access.js';
import { ActionError, type EnterTarget } from './actions.js';
import type { HandleObject, TreeContext } from './context.js';
import type { HandleAttr, HandleDescription, HandleKind, HandleKindEntry } from './kind.js';
import { BY_INO_DIR, MAX_NS_INUM, MIN_NS_INUM, nsTypeDir, nsTypeOfDir, parseInumName } from './layout.js';
import { handleName, NONE, renderNamespace, UNREADABLE } from './render.js';
import type { TimerHandle } from './timers.js';

/** The core's kind of namespace handles. */
export const NAMESPACE_KIND = 'namespace';
/** A namespace file: root's alone, like /proc/PID/ns/*. */
const S_FILE_NAMESPACE = S_IFREG | 0o400;

/** A namespace handlefs holds open, and the references on its handle. */
export interface HeldNamespace {
  ino: Ino;
  type: NsType;
  inum: Key;
  nsId: string | null;
  /** Kernel lookups: a bind mount of the handle, or a name the kernel caches. */
  lookups: number;
  /** Open descriptors of the handle file. */
  opens: number;
  /** Library pins (InodeTable.pin). */
  pins: number;
  dead: boolean;
}

export class NsObject implements HandleObject {
  readonly kind = NAMESPACE_KIND;
  /** The inode number, once instantiated. */
  ino: Ino = 0;
  /** When the handle was last used (ms): lookups, getattr, open, read, release. */
  lastUse: number;
  /** The grace timer, while one is armed. */
  timer: TimerHandle | null = null;
  /** INVAL_ENTRY was sent for the current idle period. */
  invalSent = false;
  /**
   * Root looked the handle up or opened it since its dentry was made: its lookups may be a bind
   * mount, which keeps the hold. Lookups of other users alone never keep it past the grace.
   */
  rootRef = false;

  constructor(
    readonly info: NamespaceInfo,
    /** The hold; null once closed (the inode is then dormant). */
    public handle: NamespaceHandle | null,
    now: number,
  ) {
    this.lastUse = now;
  }

  get type(): NsType {
    return this.info.type;
  }

  get inum(): Key {
    return this.info.inum;
  }

  get held(): boolean {
    return this.handle !== null && !this.handle.closed;
  }
}

/** The table incarnation for a kernel namespace id: the id itself, 0 when unknown. */
export function nsIncarnation(nsId: string | null): Incarnation {
  if (nsId === null) return 0;
  const n = Number(nsId);
  return Number.isSafeInteger(n) && n > 0 ? n : 0;
}

export function namespaceIdentity(info: { inum: Key; nsId: string | null }): Identity {
  return { kind: NAMESPACE_KIND, key: info.inum, incarnation: nsIncarnation(info.nsId) };
}

export interface NamespaceHandlesOptions {
  /** Idle time (ms) after which the kernel is asked to drop a namespace handle's names. Default 2000. */
  graceMs: number;
}

export class NamespaceHandles implements HandleKind {
  readonly name = NAMESPACE_KIND;
  readonly dirs: readonly Ino[] = NS_TYPES.map((t) => nsTypeDir(t));
  readonly holdsOnOpen = true;
  private readonly flight = new SingleFlight<string, NsObject | null>();
  private readonly listFlight = new SingleFlight<number, NamespaceRef[]>();
  /** NamespaceSource.open calls (for tests and stats). */
  opens = 0;

  constructor(
    private readonly ctx: TreeContext,
    private readonly source: NamespaceSource,
    private readonly options: NamespaceHandlesOptions,
  ) {}

  /** The live namespace inode under `inum`, if any. */
  current(inum: Key): Inode<HandleObject> | undefined {
    return this.ctx.table.findByKey(NAMESPACE_KIND, inum);
  }

  /** Opens a hold on the namespace (racing callers share one open); null if it is unreachable. */
  open(type: NsType, inum: Key, nsId?: string): Promise<NsObject | null> {
    return this.flight.run(`${type}:${inum}:${nsId ?? ''}`, async () => {
      this.opens++;
      // An error (EMFILE, ...) propagates: the request answers EIO; it is no evidence of an end.
      const h = await this.source.open(type, inum, nsId);
      return h === null ? null : new NsObject(h.info, h, this.ctx.timers.now());
    });
  }

  /** A loser of an instantiate race: hand its hold to the winner if that has none, else close it. */
  readonly dispose = (object: HandleObject): void => {
    const loser = object as NsObject;
    if (loser.handle === null) return;
    const winner = this.objectOf(this.current(loser.inum));
    const h = loser.handle;
    loser.handle = null;
    if (winner !== undefined && winner !== loser && !winner.held && winner.info.nsId === loser.info.nsId) {
      winner.handle = h;
    } else {
      h.close();
    }
  };

  /** Usable without asking the host: we hold it open, so it is alive and its number is its own. */
  trusted(inode: Inode<HandleObject>): boolean {
    const o = this.objectOf(inode);
    return o !== undefined && o.held && !this.ctx.table.isDead(inode);
  }

  /** The object of an inode of this kind (undefined: restored from the store, not seen since). */
  objectOf(inode: Inode<HandleObject> | undefined): NsObject | undefined {
    return inode?.object as NsObject | undefined;
  }

  /** acquire() of a namespace we hold open, without asking the host; null if it is not such a one. */
  acquireTrusted(type: NsType, inum: Key, nsId?: string): Dentry<HandleObject> | null {
    const known = this.current(inum);
    if (known === undefined || !this.trusted(known)) return null;
    const o = known.object as NsObject;
    if (o.type !== type || (nsId !== undefined && o.info.nsId !== nsId)) return null;
    return this.ctx.table.instantiate(namespaceIdentity(o.info), o);
  }

  /**
   * The dentry of namespace (type, inum) with one hold, or null if unreachable. With nsId, only
   * that incarnation (a reused inum names another namespace).
   */
  async acquire(type: NsType, inum: Key, nsId?: string): Promise<Dentry<HandleObject> | null> {
    const known = this.acquireTrusted(type, inum, nsId);
    if (known !== null) return known;
    for (let attempt = 0; attempt < 2; attempt++) {
      const fresh = await this.open(type, inum, nsId);
      if (fresh === null) return null;
      if (fresh.type !== type) {
        this.dispose(fresh);
        return null;
      }
      const d = this.instantiate(fresh);
      if (d !== null) return d;
    }
    return null;
  }

  /** The dentry of a known namespace inode with one hold, after re-validating a dormant one. */
  async acquireInode(inode: Inode<HandleObject>): Promise<Dentry<HandleObject> | null> {
    const table = this.ctx.table;
    if (table.isDead(inode)) return null;
    const known = this.acquireKnown(inode);
    if (known !== null) return known;
    if (inode.incarnation === 0) {
      // Without the kernel's id a dormant namespace cannot be told from a later one with its number.
      table.markDead(inode);
      return null;
    }
    const type = this.objectOf(inode)?.type ?? (await this.typeOf(inode.key));
    if (table.isDead(inode)) return null;
    const fresh = type === undefined ? null : await this.open(type, inode.key, String(inode.incarnation));
    if (table.isDead(inode)) {
      if (fresh !== null) this.dispose(fresh);
      return null;
    }
    if (fresh === null || nsIncarnation(fresh.info.nsId) !== inode.incarnation) {
      if (fresh !== null) this.dispose(fresh);
      table.markDead(inode);
      return null;
    }
    const d = this.instantiate(fresh);
    if (d !== null && d.inode !== inode) {
      table.put(d);
      return null;
    }
    return d;
  }

  private instantiate(fresh: NsObject): Dentry<HandleObject> | null {
    try {
      return this.ctx.table.instantiate(namespaceIdentity(fresh.info), fresh, this.dispose);
    } catch (err) {
      if (err instanceof StaleIdentityError) {
        this.dispose(fresh);
        return null;
      }
      throw err;
    }
  }

  /** The type of a namespace found only by number (an inode restored from the store). */
  private async typeOf(inum: Key): Promise<NsType | undefined> {
    try {
      const refs = await this.listFlight.run(0, () => this.source.list());
      return refs.find((r) => r.inum === inum)?.type;
    } catch (err) {
      this.ctx.log.warn({ err }, 'listing namespaces failed');
      return undefined;
    }
  }

  /** Makes sure the object holds its namespace (re-opening a closed hold); false if it cannot. */
  async ensureHold(o: NsObject): Promise<boolean> {
    if (o.held) return true;
    const fresh = await this.open(o.type, o.inum, o.info.nsId ?? undefined);
    if (o.held) {
      if (fresh !== null && fresh !== o) this.dispose(fresh);
      return true;
    }
    if (fresh === null || fresh.info.nsId !== o.info.nsId) {
      if (fresh !== null) this.dispose(fresh);
      return false;
    }
    o.handle = fresh.handle;
    fresh.handle = null;
    return true;
  }

  /**
   * The handle was referenced: a dentry without a hold gets one back. A use by root restarts the
   * idle period and marks the handle root's; other users' uses do not extend it (they could
   * otherwise keep a namespace alive forever by polling it).
   */
  engage(d: Dentry<HandleObject>, byRoot = true): void {
    const o = d.object as NsObject;
    if (d.released) return;
    if (byRoot) {
      this.touch(o);
      o.rootRef = true;
    } else {
      this.arm(o, Math.max(0, o.lastUse + this.options.graceMs - this.ctx.timers.now()));
    }
    if (!o.held && !this.ctx.table.isDead(d.inode)) {
      void this.ensureHold(o).then(
        (ok) => {
          if (!ok && !this.ctx.table.isDead(d.inode)) this.ctx.table.markDead(d.inode);
        },
        (err: unknown) => this.ctx.log.warn({ err, inum: o.inum }, 're-opening a namespace hold failed'),
      );
    }
  }

  touch(o: NsObject): void {
    o.lastUse = this.ctx.timers.now();
    o.invalSent = false;
    this.arm(o, this.options.graceMs);
  }

  private arm(o: NsObject, ms: number): void {
    if (o.timer !== null) return;
    o.timer = this.ctx.timers.setTimeout(() => {
      o.timer = null;
      this.graceExpired(o);
    }, ms);
  }

  private graceExpired(o: NsObject): void {
    const table = this.ctx.table;
    const inode = table.inode(o.ino);
    if (inode === undefined || inode.object !== o) {
      this.closeHold(o);
      return;
    }
    const left = o.lastUse + this.options.graceMs - this.ctx.timers.now();
    if (left > 0) {
      this.arm(o, left);
      return;
    }
    const d = inode.dentry;
    if (d === null) {
      this.closeHold(o);
      return;
    }
    if (d.opens > 0 || d.pins > 0) {
      // Held on purpose; look again later (a library unpin has no hook of its own).
      this.arm(o, this.options.graceMs);
      return;
    }
    if (d.lookups > 0 && !o.invalSent) {
      // Idle: if nothing but a cache holds the kernel's dentry, this makes the kernel FORGET it.
      o.invalSent = true;
      this.ctx.inval.entry(nsTypeDir(o.type), String(o.inum));
      this.ctx.inval.entry(BY_INO_DIR, String(o.ino));
      if (!o.rootRef) this.arm(o, this.options.graceMs);
      return;
    }
    if (d.lookups > 0 && !o.rootRef) {
      // Only other users' references are left (an open descriptor past its hold time, a cached
      // name): they read the namespace while it lives but do not keep it alive. The dentry stays;
      // a later open re-opens the hold if the namespace is still there.
      this.closeHold(o);
    }
  }

  /** The dentry is gone: close the hold once the grace period since the last use has passed. */
  released(o: NsObject): void {
    o.rootRef = false;
    if (!o.held) return;
    if (this.ctx.timers.now() - o.lastUse >= this.options.graceMs) this.closeHold(o);
    else this.arm(o, o.lastUse + this.options.graceMs - this.ctx.timers.now());
  }

  /** Closes the hold. Without a kernel id the inode cannot be re-validated later, so it dies with it. */
  closeHold(o: NsObject): void {
    o.timer?.cancel();
    o.timer = null;
    const h = o.handle;
    o.handle = null;
    if (h !== null && !h.closed) h.close();
    if (o.info.nsId === null) {
      const inode = this.ctx.table.inode(o.ino);
      if (inode !== undefined && inode.object === o && inode.dentry === null) this.ctx.table.markDead(inode);
    }
  }

  /**
   * Validates dormant namespace inodes (no hold): one listing of reachable namespaces, then a
   * brief open by (type, inum, id) of those still listed. Anything gone or reused is marked dead.
   */
  async sweep(dormant: readonly Inode<HandleObject>[]): Promise<number> {
    if (dormant.length === 0) return 0;
    const table = this.ctx.table;
    const refs = await this.source.list();
    const typeOf = new Map<Key, NsType>();
    for (const r of refs) typeOf.set(r.inum, r.type);
    let dead = 0;
    const present: Array<[Inode<HandleObject>, NsType]> = [];
    for (const inode of dormant) {
      if (table.isDead(inode) || this.trusted(inode)) continue;
      const type = typeOf.get(inode.key);
      const known = this.objectOf(inode)?.type ?? type;
      if (type === undefined || known !== type || inode.incarnation === 0) {
        table.markDead(inode);
        dead++;
      } else {
        present.push([inode, type]);
      }
    }
    await mapLimit(present, this.ctx.concurrency, async ([inode, type]) => {
      // A check, not a hold: closing a hold would tell the keeper to drop its copy, which may be
      // the namespace's last reference while a successor has yet to take it over.
      let info: NamespaceInfo | null;
      try {
        info = await this.source.check(type, inode.key, String(inode.incarnation));
      } catch (err) {
        this.ctx.log.debug({ err, inum: inode.key }, 'sweep: namespace not openable');
        return;
      }
      if (table.isDead(inode) || this.trusted(inode)) return;
      if (info === null || nsIncarnation(info.nsId) !== inode.incarnation) {
        table.markDead(inode);
        dead++;
      }
    });
    return dead;
  }

  // ---- actions (the per-kind table in actions.ts) ----

  /** nsfs files have no poll: always ready, like any file without one. */
  poll(): number {
    return DEFAULT_POLLMASK;
  }

  forgetPoller(): void {}

  /** The namespace itself, held (re-opened if its hold was closed) for setns(2). */
  async enter(inode: Inode<HandleObject>): Promise<EnterTarget[]> {
    return [await this.bind(inode)];
  }

  async bind(inode: Inode<HandleObject>): Promise<EnterTarget> {
    const o = this.objectOf(inode);
    if (o === undefined || this.ctx.table.isDead(inode) || !(await this.ensureHold(o)) || this.ctx.table.isDead(inode)) {
      throw new ActionError('ENOENT', 'the namespace of this handle is gone');
    }
    this.touch(o);
    const fd = o.handle?.fd;
    return { type: o.type, inum: o.inum, nsId: o.info.nsId, fd: fd === undefined || fd < 0 ? null : fd };
  }

  signal(): void {
    throw new ActionError('EINVAL', 'a namespace handle names no process to signal');
  }

  wait(): Promise<ProcessEnding> {
    throw new ActionError('EINVAL', 'a namespace handle names no process to wait for');
  }

  // ---- the rest of the kind's operations (HandleKind, kind.ts) ----

  parseName(name: string): Key | undefined {
    return parseInumName(name);
  }

  /** A stored namespace row needs its kernel id: without it a later namespace with the number cannot be told apart. */
  keeps(r: InodeRecord): boolean {
    return r.key >= MIN_NS_INUM && r.key <= MAX_NS_INUM && r.incarnation > 0;
  }

  dirOf(inode: Inode<HandleObject>): Ino | undefined {
    const o = this.objectOf(inode);
    return o === undefined ? undefined : nsTypeDir(o.type);
  }

  acquireTrustedIn(dir: Ino, inum: Key): Dentry<HandleObject> | null {
    return this.acquireTrusted(nsTypeOfDir(dir)!, inum);
  }

  acquireIn(dir: Ino, inum: Key): Promise<Dentry<HandleObject> | null> {
    return this.acquire(nsTypeOfDir(dir)!, inum);
  }

  /** A namespace held open is alive and its number its own: no need to ask the host. */
  acquireKnown(inode: Inode<HandleObject>): Dentry<HandleObject> | null {
    return this.trusted(inode) ? this.ctx.table.instantiate(identityOf(inode), inode.object!) : null;
  }

  /** A use by root restarts the grace period. */
  used(o: HandleObject): void {
    this.touch(o as NsObject);
  }

  /** An open holds the namespace: re-opened if its hold was closed; ESTALE if it is gone. */
  async opened(d: Dentry<HandleObject>, byRoot: boolean): Promise<void> {
    const o = d.object as NsObject;
    if (byRoot) this.touch(o);
    if (!this.ctx.table.isDead(d.inode) && !(await this.ensureHold(o))) {
      throw new FuseError(Errno.ESTALE, 'the namespace is gone');
    }
  }

  /** The namespace is gone: a hold nothing references any more is closed. */
  dead(inode: Inode<HandleObject>): void {
    const o = this.objectOf(inode);
    if (o !== undefined && inode.dentry === null) this.closeHold(o);
  }

  dropped(o: NsObject): void {
    this.closeHold(o);
  }

  attr(): HandleAttr {
    return { mode: S_FILE_NAMESPACE, uid: 0, gid: 0 };
  }

  async render(d: Dentry<HandleObject>, _caller: Caller, holds: Dentry<HandleObject>[]): Promise<string> {
    const o = d.object as NsObject;
    const info = o.info;
    const idKnown = info.nsId !== null;
    const ref = async (type: NsType, r: { inum: number; nsId: string | null } | null | undefined): Promise<string> => {
      if (r === null || r === undefined) return idKnown ? NONE : UNREADABLE;
      const nd = await this.acquire(type, r.inum, r.nsId ?? undefined).catch(() => null);
      if (nd === null) return UNREADABLE;
      holds.push(nd);
      this.touch(nd.object as NsObject);
      return String(nd.ino);
    };
    const owner = await ref('user', info.owner);
    const parent = info.type === 'pid' || info.type === 'user' ? await ref(info.type, info.parent) : undefined;
    return renderNamespace({
      type: info.type,
      inum: info.inum,
      kernelId: info.nsId,
      ino: d.ino,
      generation: d.inode.generation,
      owner,
      ...(parent === undefined ? {} : { parent }),
      pins: d.pins,
      held: o.held,
      handle: handleName(this.ctx.hostIds.machineId, this.ctx.hostIds.bootId, d.ino),
    });
  }

  /** What ns/<type>/ lists: the namespaces of that type the host shows, and those only this tree still holds (a bind-mounted handle). */
  async list(dir: Ino): Promise<Key[]> {
    const type = nsTypeOfDir(dir)!;
    const inums = new Set<Key>();
    for (const r of await this.source.list()) if (r.type === type) inums.add(r.inum);
    for (const inode of this.ctx.table.inodes(this.name)) {
      const o = this.objectOf(inode);
      if (o !== undefined && o.type === type && o.held && !this.ctx.table.isDead(inode)) inums.add(inode.key);
    }
    return [...inums].sort((a, b) => a - b);
  }

  visible(caller: Caller, o: NsObject): Promise<boolean> {
    return this.ctx.policy.namespaceVisible(caller, o.type, o.inum);
  }

  mayOpen(caller: Caller, o: NsObject): Promise<boolean> {
    return this.ctx.policy.mayOpenNamespace(caller, o.type, o.inum);
  }

  /** Those a process the caller may inspect is in, or its own process. */
  async listFilter(caller: Caller): Promise<(o: HandleObject) => boolean> {
    const [namespaces, own] = await Promise.all([this.ctx.policy.namespacesOf(caller), this.ctx.policy.ownNamespaces(caller)]);
    return (object) => {
      const o = object as NsObject;
      const key = `${o.type}:${o.inum}`;
      return namespaces.has(key) || own.has(key);
    };
  }

  describe(o: NsObject): HandleDescription {
    return { name: o.type, held: o.held };
  }

  /** Namespaces handlefs holds open now, with what references each handle (for status). */
  held(): HeldNamespace[] {
    const out: HeldNamespace[] = [];
    for (const inode of this.ctx.table.inodes(this.name)) {
      const o = this.objectOf(inode);
      if (o === undefined || !o.held) continue;
      const d = inode.dentry;
      out.push({
        ino: inode.ino,
        type: o.type,
        inum: o.inum,
        nsId: o.info.nsId,
        lookups: d?.lookups ?? 0,
        opens: d?.opens ?? 0,
        pins: d?.pins ?? 0,
        dead: this.ctx.table.isDead(inode),
      });
    }
    return out.sort((a, b) => a.ino - b.ino);
  }
}

function identityOf(inode: Inode<HandleObject>): Identity {
  return { kind: inode.kind, key: inode.key, incarnation: inode.incarnation };
}

/** The namespace kind's row in the table of kinds (kinds.ts). */
export const NAMESPACES: HandleKindEntry = {
  name: NAMESPACE_KIND,
  incarnations: 'equality',
  create: (s) => new NamespaceHandles(s.ctx, s.namespaceSource, { graceMs: s.options.nsGraceMs ?? 2000 }),
};
