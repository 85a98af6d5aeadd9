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
import { SingleFlight } from '../core/single-flight.js';
import type { NamespaceHandle, NamespaceInfo, NamespaceRef, NamespaceSource, NsType, ProcessEnding } from '../sources/types.js';
import { DEFAULT_POLLMASK } from '../fuse/abi.js';
import { ActionError, type EnterTarget, type HandleKindActions } from './actions.js';
import { mapLimit, NAMESPACE_KIND, type HandleObject, type TreeContext } from './context.js';
import { BY_INO_DIR, nsTypeDir } from './layout.js';
import type { TimerHandle } from './timers.js';

export class NsObject {
  readonly kind = NAMESPACE_KIND;
  /** The inode number, once instantiated. */
  ino = 0;
  /** When the handle was last used (ms): lookups, getattr, open, read, release. */
  lastUse: number;
  /** The grace timer, while one is armed. */
  timer: TimerHandle | null = null;
  /** INVAL_ENTRY was sent for the current idle period. */
  invalSent = false;
  /** Number of times the hold was (re)opened for this object after the first. */
  reopens = 0;
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

  get inum(): number {
    return this.info.inum;
  }

  get held(): boolean {
    return this.handle !== null && !this.handle.closed;
  }
}

/** The table incarnation for a kernel namespace id: the id itself, 0 when unknown. */
export function nsIncarnation(nsId: string | null): number {
  if (nsId === null) return 0;
  const n = Number(nsId);
  return Number.isSafeInteger(n) && n > 0 ? n : 0;
}

export function namespaceIdentity(info: { inum: number; nsId: string | null }): Identity {
  return { kind: NAMESPACE_KIND, key: info.inum, incarnation: nsIncarnation(info.nsId) };
}

export interface NamespaceHandlesOptions {
  /** Idle time (ms) after which the kernel is asked to drop a namespace handle's names. Default 2000. */
  graceMs: number;
}

export class NamespaceHandles implements HandleKindActions {
  private readonly flight = new SingleFlight<string, NsObject | null>();
  private readonly listFlight = new SingleFlight<number, NamespaceRef[]>();
  /** NamespaceSource.open calls (for tests and stats). */
  opens = 0;
  /** Holds closed by the policy. */
  closes = 0;

  constructor(
    private readonly ctx: TreeContext,
    private readonly source: NamespaceSource,
    private readonly options: NamespaceHandlesOptions,
  ) {}

  /** The live namespace inode under `inum`, if any. */
  current(inum: number): Inode<HandleObject> | undefined {
    return this.ctx.table.findByKey(NAMESPACE_KIND, inum);
  }

  /** Opens a hold on the namespace (racing callers share one open); null if it is unreachable. */
  open(type: NsType, inum: number, nsId?: string): Promise<NsObject | null> {
    return this.flight.run(`${type}:${inum}:${nsId ?? ''}`, async () => {
      this.opens++;
      // An error (EMFILE, ...) propagates: the request answers EIO; it is no evidence of an end.
      const h = await this.source.open(type, inum, nsId);
      return h === null ? null : new NsObject(h.info, h, this.ctx.timers.now());
    });
  }

  /** A loser of an instantiate race: hand its hold to the winner if that has none, else close it. */
  readonly dispose = (loser: HandleObject): void => {
    if (!(loser instanceof NsObject) || loser.handle === null) return;
    const winner = this.current(loser.inum)?.object;
    const h = loser.handle;
    loser.handle = null;
    if (winner instanceof NsObject && winner !== loser && !winner.held && winner.info.nsId === loser.info.nsId) {
      winner.handle = h;
      winner.reopens++;
    } else {
      h.close();
    }
  };

  /** Usable without asking the host: we hold it open, so it is alive and its number is its own. */
  trusted(inode: Inode<HandleObject>): boolean {
    const o = inode.object;
    return o instanceof NsObject && o.held && !this.ctx.table.isDead(inode);
  }

  /** acquire() of a namespace we hold open, without asking the host; null if it is not such a one. */
  acquireTrusted(type: NsType, inum: number, nsId?: string): Dentry<HandleObject> | null {
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
  async acquire(type: NsType, inum: number, nsId?: string): Promise<Dentry<HandleObject> | null> {
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
    if (this.trusted(inode)) return table.instantiate(identityOf(inode), inode.object!);
    if (inode.incarnation === 0) {
      // Without the kernel's id a dormant namespace cannot be told from a later one with its number.
      table.markDead(inode);
      return null;
    }
    const type = inode.object instanceof NsObject ? inode.object.type : await this.typeOf(inode.key);
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
  private async typeOf(inum: number): Promise<NsType | undefined> {
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
    o.reopens++;
    return true;
  }

  /**
   * The handle was referenced: a dentry without a hold gets one back. A use by root restarts the
   * idle period and marks the handle root's; other users' uses do not extend it (they could
   * otherwise keep a namespace alive forever by polling it).
   */
  engage(d: Dentry<HandleObject>, byRoot = true): void {
    const o = d.object;
    if (!(o instanceof NsObject) || d.released) return;
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
    if (h !== null && !h.closed) {
      h.close();
      this.closes++;
    }
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
    const typeOf = new Map<number, NsType>();
    for (const r of refs) typeOf.set(r.inum, r.type);
    let dead = 0;
    const present: Array<[Inode<HandleObject>, NsType]> = [];
    for (const inode of dormant) {
      if (table.isDead(inode) || this.trusted(inode)) continue;
      const type = typeOf.get(inode.key);
      const known = inode.object instanceof NsObject ? inode.object.type : type;
      if (type === undefined || known !== type || inode.incarnation === 0) {
        table.markDead(inode);
        dead++;
      } else {
        present.push([inode, type]);
      }
    }
    await mapLimit(present, this.ctx.concurrency, async ([inode, type]) => {
      let h: NamespaceHandle | null;
      try {
        h = await this.source.open(type, inode.key, String(inode.incarnation));
      } catch (err) {
        this.ctx.log.debug({ err, inum: inode.key }, 'sweep: namespace not openable');
        return;
      }
      h?.close();
      if (table.isDead(inode) || this.trusted(inode)) return;
      if (h === null || nsIncarnation(h.info.nsId) !== inode.incarnation) {
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
    const o = inode.object;
    if (!(o instanceof NsObject) || this.ctx.table.isDead(inode) || !(await this.ensureHold(o)) || this.ctx.table.isDead(inode)) {
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

  /** Closes every hold (destroy). */
  closeAll(objects: Iterable<HandleObject | undefined>): void {
    for (const o of objects) if (o instanceof NsObject) this.closeHold(o);
  }
}

function identityOf(inode: Inode<HandleObject>): Identity {
  return { kind: inode.kind, key: inode.key, incarnation: inode.incarnation };
}
