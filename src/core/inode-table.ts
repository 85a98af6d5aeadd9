import type { Logger } from 'pino';
import type { Allocator } from './allocator.js';
import { Dentry, Inode, type Identity } from './inode.js';
import type { Incarnation, Ino, Key } from './numbers.js';
import type { InodeRecord, InodeStore } from './store.js';

/** Raised when a caller brings an older incarnation than the table already knows for a key. */
export class StaleIdentityError extends Error {
  constructor(readonly identity: Identity, readonly current: Incarnation) {
    super(`${identity.kind} ${identity.key}: incarnation ${identity.incarnation} is older than the known ${current}`);
    this.name = 'StaleIdentityError';
  }
}

/** Raised on an attempt to use a dentry that was already released. */
export class ReleasedDentryError extends Error {
  constructor(readonly ino: Ino) {
    super(`dentry of inode ${ino} was already released`);
    this.name = 'ReleasedDentryError';
  }
}

/** What the layer above hears about lifetimes. Handlers run synchronously, inside the change. */
export interface TableEvents<T> {
  /** A dentry was instantiated (first lookup, or again after its last one was released). */
  created?(dentry: Dentry<T>): void;
  /** All counts of a dentry reached zero; it is gone for good. */
  released?(dentry: Dentry<T>): void;
  /** The object behind an inode is gone: it exited, or its key now names a newer incarnation. Sent once. */
  dead?(inode: Inode<T>): void;
  /** The inode left the table (dead and unreferenced); its number stays retired. */
  dropped?(inode: Inode<T>): void;
}

/** Running totals of the inode table (status and metrics). */
export interface TableCounters {
  /** Inodes in the table: live objects, and dead ones still referenced. */
  inodes: number;
  /** Dentries instantiated right now. */
  dentries: number;
  /** Dentries held by at least one pin. */
  pinned: number;
  /** Dentries held by at least one open. */
  open: number;
  allocations: number;
  lookups: number;
  forgets: number;
  /** Forget or put calls that would have taken a count below zero (each one a bug somewhere). */
  underflows: number;
  /** The last number allocated by this table (0 if none). */
  lastAllocated: Ino;
  highWater: Ino;
}

/**
 * How incarnations of one kind compare. `ordered`: they grow with each new life of a key (a
 * process's pidfs inode number, its start time), so an older one is a stale read and is refused.
 * `equality`: they only tell lives apart and have no order (the kernel hands out namespace ids in
 * per-CPU batches), so a different one is a different object that replaces the entry; the caller
 * must know the object it brings is alive (a namespace it holds open).
 */
export type IncarnationOrder = 'ordered' | 'equality';

export interface InodeTableOptions<T> {
  store: InodeStore;
  allocator: Allocator;
  /** What incarnations are relative to (the boot id): stored rows of another scope are pruned on restore. */
  scope: string;
  logger: Logger;
  /** Who hears of dentries and inodes coming and going; also settable once with listen(). */
  events?: TableEvents<T>;
  /** The rule per kind; kinds not named are `ordered`. */
  incarnations?: Readonly<Record<string, IncarnationOrder>>;
}

type Count = 'lookups' | 'opens' | 'pins' | 'holds';

/**
 * The identity table: object → inode → dentry, and the counts that decide when a dentry goes.
 *
 * Everything that changes the table is synchronous. That is the atomicity the design needs: the
 * find and the insert of instantiate() run with no await between them, so however many callers
 * race for one object, across however many awaits of their own, one inode and one dentry exist
 * and the losers get the winner's.
 *
 * Live objects are found by kind and key (the identity index: one map of keys per kind), every
 * inode by its number. Kinds never share an entry, whatever their keys.
 */
export class InodeTable<T> {
  /**
   * One key index per kind. An array searched by identity of the kind string, not a Map: kinds
   * are a handful, and a Map keyed by string costs a hash lookup on every find (measured: the
   * hot "instantiate an existing object" path ran at a third of its speed).
   */
  private readonly byKind: Array<{ readonly kind: string; readonly keys: Map<Key, Inode<T>> }> = [];
  private readonly byIno = new Map<Ino, Inode<T>>();
  private readonly store: InodeStore;
  private readonly allocator: Allocator;
  private readonly log: Logger;
  private events: TableEvents<T>;
  /** Someone listens already (given at construction or by listen()). */
  private listening = false;
  private readonly incarnations: Readonly<Record<string, IncarnationOrder>>;
  readonly scope: string;
  private liveDentries = 0;
  private pinnedDentries = 0;
  private openDentries = 0;
  private lookupCount = 0;
  private forgetCount = 0;
  private underflowCount = 0;
  private writing = true;

  constructor(options: InodeTableOptions<T>) {
    this.store = options.store;
    this.allocator = options.allocator;
    this.scope = options.scope;
    this.log = options.logger;
    this.events = options.events ?? {};
    this.listening = options.events !== undefined;
    this.incarnations = options.incarnations ?? {};
  }

  /**
   * Sets who hears the table's events: the layer above, which is built after the table it uses
   * (the tree subscribes in its constructor). Once: a second listener would silently replace the first.
   */
  listen(events: TableEvents<T>): void {
    if (this.listening) throw new Error('the inode table already has a listener');
    this.listening = true;
    this.events = events;
  }

  /** How incarnations of `kind` compare (see IncarnationOrder). */
  orderOf(kind: string): IncarnationOrder {
    return this.incarnations[kind] ?? 'ordered';
  }

  // ---- finding ----

  /** The inode the key of `kind` names now, if any. */
  findByKey(kind: string, key: Key): Inode<T> | undefined {
    return this.keysIfAny(kind)?.get(key);
  }

  /** The inode with this number, live or dead-but-referenced. */
  inode(ino: Ino): Inode<T> | undefined {
    return this.byIno.get(ino);
  }

  /** The live dentry of a number (what a kernel node id refers to), if instantiated. */
  dentry(ino: Ino): Dentry<T> | undefined {
    const inode = this.byIno.get(ino);
    return inode === undefined || inode.dentry === null ? undefined : inode.dentry;
  }

  /** True once the inode's object is known to be gone. */
  isDead(inode: Inode<T>): boolean {
    return this.keysIfAny(inode.kind)?.get(inode.key) !== inode;
  }

  // ---- find-or-create ----

  /**
   * Returns the one dentry of the object, creating inode and dentry if needed, with one hold on
   * it that the caller gives back with put() (or turns into a lookup with addLookups then put).
   *
   * An entry under the same key with an older incarnation is of a dead object: it is unhashed
   * (its handle stays reachable by number while referenced, and reads as dead) and the object
   * gets a new, larger number. For an `ordered` kind, a caller whose identity is older than the
   * table's is reading a dead object and gets StaleIdentityError; for an `equality` kind any
   * other incarnation replaces the entry (there is no order to judge by).
   *
   * If the object was already instantiated, `object` lost the race: `dispose` is called on it
   * and the winner's dentry is returned.
   */
  instantiate(identity: Identity, object: T, dispose?: (loser: T) => void): Dentry<T> {
    let inode = this.keysOf(identity.kind).get(identity.key);
    if (inode !== undefined && inode.incarnation !== identity.incarnation) {
      if (this.orderOf(identity.kind) === 'ordered' && identity.incarnation < inode.incarnation) {
        throw new StaleIdentityError(identity, inode.incarnation);
      }
      this.markDead(inode);
      inode = undefined;
    }
    if (inode === undefined) {
      inode = this.create(identity, object);
    } else if (inode.object === undefined) {
      inode.object = object; // restored from the store; this is the first sight of it since
    } else if (inode.object !== object && dispose !== undefined) {
      dispose(object);
    }
    const dentry = inode.dentry ?? this.newDentry(inode);
    dentry.holds++;
    return dentry;
  }

  /** instantiate() plus one lookup, as a positive LOOKUP reply gives; no hold is left behind. */
  lookup(identity: Identity, object: T, dispose?: (loser: T) => void): Dentry<T> {
    const dentry = this.instantiate(identity, object, dispose);
    dentry.lookups++;
    dentry.holds--;
    this.lookupCount++;
    return dentry;
  }

  // ---- counts ----

  /** Adds a short-lived hold. Never revives a released dentry. */
  get(dentry: Dentry<T>): Dentry<T> {
    this.alive(dentry);
    dentry.holds++;
    return dentry;
  }

  put(dentry: Dentry<T>): void {
    this.drop(dentry, 'holds', 1);
  }

  /** Adds lookups the kernel now holds (a positive LOOKUP, a READDIRPLUS entry). */
  addLookups(dentry: Dentry<T>, n = 1): void {
    this.alive(dentry);
    dentry.lookups += n;
    this.lookupCount += n;
  }

  /**
   * The kernel forgets `n` lookups of node `ino` (FORGET, each BATCH_FORGET item, or a reply
   * that could not be delivered). Counting, not guessing: a FORGET that arrives after a newer
   * LOOKUP only takes away what it names.
   */
  forget(ino: Ino, n: number): void {
    this.forgetCount += n;
    const dentry = this.dentry(ino);
    if (dentry === undefined) {
      this.underflowCount++;
      this.log.error({ ino, n }, 'lookup count underflow: forget of a node with no dentry');
      return;
    }
    this.drop(dentry, 'lookups', n);
  }

  open(dentry: Dentry<T>): void {
    this.alive(dentry);
    if (dentry.opens++ === 0) this.openDentries++;
  }

  close(dentry: Dentry<T>): void {
    if (dentry.opens === 1) this.openDentries--;
    this.drop(dentry, 'opens', 1);
  }

  /** Keeps the dentry (and so its object's handle) regardless of lookups: a bind mount. */
  pin(dentry: Dentry<T>): void {
    this.alive(dentry);
    if (dentry.pins++ === 0) this.pinnedDentries++;
  }

  unpin(dentry: Dentry<T>): void {
    if (dentry.pins === 1) this.pinnedDentries--;
    this.drop(dentry, 'pins', 1);
  }

  // ---- object lifetime ----

  /**
   * The object behind `inode` is gone. Its key stops finding it; it stays reachable by number
   * while referenced; if nothing references it, it leaves the table now.
   */
  markDead(inode: Inode<T>): void {
    const keys = this.keysIfAny(inode.kind);
    if (keys?.get(inode.key) !== inode) return;
    keys.delete(inode.key);
    this.events.dead?.(inode);
    if (inode.dentry === null) this.remove(inode);
  }

  /** markDead() by identity, for exit notifications: a newer incarnation under the key is left alone. */
  objectGone(identity: Identity): void {
    const inode = this.findByKey(identity.kind, identity.key);
    if (inode !== undefined && inode.incarnation === identity.incarnation) this.markDead(inode);
  }

  /**
   * Loads rows stored by earlier runs. Rows of another scope, rows the caller says can no longer
   * exist, and older incarnations of a key are deleted from the store; numbers stay retired
   * because the store's high-water mark never goes down. Rows `keep` answers 'dead' for are of
   * objects that had ended but that a predecessor's kernel may still reference: restored dead,
   * reachable by number only (instantiateRestored gives them a dentry).
   */
  restore(records: Iterable<InodeRecord>, keep: (record: InodeRecord) => boolean | 'dead' = () => true): { kept: number; pruned: number } {
    let kept = 0;
    let pruned = 0;
    for (const r of records) {
      if (r.ino >= this.store.highWater) throw new Error(`stored inode ${r.ino} is not below the high-water mark ${this.store.highWater}`);
      const verdict = r.scope === this.scope ? keep(r) : false;
      if (verdict === 'dead') {
        // Of an object that had ended (its record says how): reachable by number only, never by key.
        this.byIno.set(r.ino, new Inode<T>(r.ino, r.generation, r.kind, r.key, r.incarnation, undefined));
        kept++;
        continue;
      }
      const keys = this.keysOf(r.kind);
      const current = keys.get(r.key);
      if (!verdict || (current !== undefined && this.newer(current, r))) {
        this.store.delete(r.ino);
        pruned++;
        continue;
      }
      if (current !== undefined) {
        keys.delete(current.key);
        this.byIno.delete(current.ino);
        this.store.delete(current.ino);
        pruned++;
        kept--;
      }
      const inode = new Inode<T>(r.ino, r.generation, r.kind, r.key, r.incarnation, undefined);
      keys.set(r.key, inode);
      this.byIno.set(r.ino, inode);
      kept++;
    }
    return { kept, pruned };
  }

  /**
   * The dentry, with one hold, of an inode restored from the store that this process has not seen
   * yet (no object, no dentry): `object` is what the layer above made of its record. For nodes a
   * predecessor revealed; a dead one (restored dead, or found gone) stays reachable by number only.
   */
  instantiateRestored(ino: Ino, object: T): Dentry<T> | undefined {
    const inode = this.byIno.get(ino);
    if (inode === undefined || inode.object !== undefined || inode.dentry !== null) return undefined;
    inode.object = object;
    const dentry = this.newDentry(inode);
    dentry.holds++;
    return dentry;
  }

  /**
   * Records `state` with the inode's row (InodeRecord.state), replacing what was recorded; durable
   * with the next flush, which it does not start (durable() does), and no reply that shows the
   * number waits for it. Nothing once the inode has left the table (its row is gone for good).
   */
  record(inode: Inode<T>, state: string | null): void {
    if (this.byIno.get(inode.ino) !== inode || !this.writing) return;
    const put = this.store.putState?.bind(this.store) ?? this.store.put.bind(this.store);
    put({
      ino: inode.ino,
      generation: inode.generation,
      kind: inode.kind,
      key: inode.key,
      incarnation: inode.incarnation,
      scope: this.scope,
      ...(state !== null && { state }),
    });
  }

  /**
   * From now on the table changes no rows (records and deletions are dropped): the layer above is
   * letting go of everything (its store closed, or the mount handed to a successor, whose rows these
   * are now), and what it releases on the way out is not the kernel forgetting.
   */
  stopWriting(): void {
    this.writing = false;
  }

  /** Inodes in the table (of one kind, if named), in no particular order. */
  inodes(kind?: string): IterableIterator<Inode<T>> {
    return kind === undefined ? this.byIno.values() : this.inodesOf(kind);
  }

  private *inodesOf(kind: string): IterableIterator<Inode<T>> {
    for (const inode of this.byIno.values()) if (inode.kind === kind) yield inode;
  }

  // ---- durability ----

  /**
   * undefined when every number this table handed out is durable; otherwise a promise that
   * resolves once it is (and rejects if it cannot be made so). A reply that reveals a number
   * waits for it: the write-ahead rule.
   */
  durable(): Promise<void> | undefined {
    return this.store.dirty ? this.store.flush() : undefined;
  }

  /**
   * Per number: undefined when the rows of every number in `inos` are durable (a number
   * committed long ago never waits for another's commit); otherwise a promise that resolves once
   * they are, and rejects if they cannot be made so.
   */
  durableOf(inos: Ino | Iterable<Ino>): Promise<void> | undefined {
    if (typeof inos === 'number') return this.store.whenDurable(inos);
    let first: Promise<void> | undefined;
    let more: Set<Promise<void>> | undefined;
    for (const ino of inos) {
      const p = this.store.whenDurable(ino);
      if (p === undefined || p === first) continue;
      if (first === undefined) first = p;
      else (more ??= new Set([first])).add(p);
    }
    return more === undefined ? first : Promise.all(more).then(() => undefined);
  }

  counters(): TableCounters {
    return {
      inodes: this.byIno.size,
      dentries: this.liveDentries,
      pinned: this.pinnedDentries,
      open: this.openDentries,
      allocations: this.allocator.count,
      lookups: this.lookupCount,
      forgets: this.forgetCount,
      underflows: this.underflowCount,
      lastAllocated: this.allocator.last,
      highWater: this.store.highWater,
    };
  }

  // ---- internals ----

  /** Of two rows of one kind and key, whether `a` is the later life: by incarnation where they are ordered, else by number (issued later). */
  private newer(a: Identity & { ino: Ino }, b: Identity & { ino: Ino }): boolean {
    return this.orderOf(b.kind) === 'ordered' ? a.incarnation > b.incarnation : a.ino > b.ino;
  }

  /** The key index of one kind (made on first use: kinds are few and live as long as the table). */
  private keysOf(kind: string): Map<Key, Inode<T>> {
    const keys = this.keysIfAny(kind);
    if (keys !== undefined) return keys;
    const made = new Map<Key, Inode<T>>();
    this.byKind.push({ kind, keys: made });
    return made;
  }

  private keysIfAny(kind: string): Map<Key, Inode<T>> | undefined {
    const all = this.byKind;
    for (let i = 0; i < all.length; i++) if (all[i]!.kind === kind) return all[i]!.keys;
    return undefined;
  }

  private create(identity: Identity, object: T): Inode<T> {
    const ino = this.allocator.allocate();
    const inode = new Inode<T>(ino, this.store.generation, identity.kind, identity.key, identity.incarnation, object);
    this.keysOf(identity.kind).set(identity.key, inode);
    this.byIno.set(ino, inode);
    this.store.put({
      ino,
      generation: inode.generation,
      kind: inode.kind,
      key: inode.key,
      incarnation: inode.incarnation,
      scope: this.scope,
    });
    return inode;
  }

  private newDentry(inode: Inode<T>): Dentry<T> {
    const dentry = new Dentry(inode);
    inode.dentry = dentry;
    this.liveDentries++;
    this.events.created?.(dentry);
    return dentry;
  }

  private alive(dentry: Dentry<T>): void {
    if (dentry.released) throw new ReleasedDentryError(dentry.ino);
  }

  /** Takes `n` from one count, clamping at zero (and saying so loudly), and releases at zero. */
  private drop(dentry: Dentry<T>, count: Count, n: number): void {
    if (dentry.released) {
      this.underflowCount++;
      this.log.error({ ino: dentry.ino, count, n }, 'count underflow: released dentry');
      return;
    }
    const have = dentry[count];
    if (n > have) {
      this.underflowCount++;
      this.log.error({ ino: dentry.ino, count, have, n }, 'count underflow: clamped at zero');
      n = have;
    }
    dentry[count] = have - n;
    if (dentry.lookups === 0 && dentry.opens === 0 && dentry.pins === 0 && dentry.holds === 0) this.release(dentry);
  }

  private release(dentry: Dentry<T>): void {
    const inode = dentry.inode;
    dentry.released = true;
    inode.dentry = null;
    this.liveDentries--;
    this.events.released?.(dentry);
    if (this.isDead(inode)) this.remove(inode);
  }

  private remove(inode: Inode<T>): void {
    if (this.byIno.get(inode.ino) !== inode) return;
    this.byIno.delete(inode.ino);
    if (this.writing) this.store.delete(inode.ino);
    this.events.dropped?.(inode);
  }
}
