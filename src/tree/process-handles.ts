/**
 * Process handles: resolving a pid to its one inode, watching exits while the kernel holds the
 * handle, and validating dormant inodes (those the kernel forgot) against the host.
 *
 * Identity: {kind 'process', key: pid, incarnation: the source's incarnation (the pidfs inode
 * number, or the start time without the native helper)}; the table's scope is the source's
 * identityScope(). Start times alone would alias two processes started in one clock tick.
 * A zombie counts as exited (the exit watcher fires on it): lookups of a zombie answer ENOENT and
 * listings skip it, so an exited process never gets a second number.
 */
import type { Identity, Dentry, Inode } from '../core/inode.js';
import { StaleIdentityError } from '../core/inode-table.js';
import type { Incarnation, Ino, Key } from '../core/numbers.js';
import type { InodeRecord } from '../core/store.js';
import { SingleFlight } from '../core/single-flight.js';
import { NS_TYPES, type NsType, type ProcessEnding, type ProcessInfo, type ProcessPidfd, type ProcessSource } from '../sources/types.js';
import { POLLIN, POLLRDNORM, S_IFREG } from '../fuse/abi.js';
import { mapLimit } from '../util/map-limit.js';
import { mayInspect, type Caller as AccessCaller } from './access.js';
import { ActionError, type Caller, type EnterTarget } from './actions.js';
import type { HandleObject, TreeContext } from './context.js';
import type { HandleAttr, HandleDescription, HandleKind, HandleKindEntry, KindOptions } from './kind.js';
import { MAX_PID, parsePidName, PID_DIR } from './layout.js';
import { NAMESPACE_KIND, type NamespaceHandles } from './namespace-handles.js';
import { handleName, HIDDEN, NONE, renderProcess, UNREADABLE } from './render.js';
import type { TimerHandle } from './timers.js';

/** The core's kind of process handles. */
export const PROCESS_KIND = 'process';
/** A process's status file: readable by all, like /proc/PID/status. */
const S_FILE_PROCESS = S_IFREG | 0o444;
import { encodeProcessRecord, infoOfRecord, processRecord, type ProcessRecord } from './process-record.js';

/** What the tree keeps for one process inode. */
export class ProcObject implements HandleObject {
  readonly kind = PROCESS_KIND;
  /** The inode number, once instantiated. */
  ino: Ino = 0;
  /** Disposer of the exit watch, while one runs. */
  unwatch: (() => void) | null = null;
  /** Namespace lines as last rendered while alive (shown again once dead). */
  nsLines: Readonly<Record<string, string>> | null = null;
  /** A pidfd for exactly this process, held while the kernel references the handle. */
  pidfd: ProcessPidfd | null = null;
  /** How it ended, once the kernel told (kept after the pidfd is closed). */
  ended: ProcessEnding | null = null;
  /** FUSE poll handles of open files waiting for the exit. */
  readonly pollers = new Set<number>();
  /** Callbacks waiting for the exit (handlefs wait). */
  readonly exitWaiters = new Set<() => void>();
  /** The record last written with its row for a successor (process-record.ts); null: none. */
  recorded: string | null = null;
  /** Made from a predecessor's record: its pidfd is reopened from the pidfs inode number. */
  restored = false;

  constructor(
    /** As last read from the host. */
    public info: ProcessInfo,
    /** When handlefs first saw it (ms); the handle's times. */
    readonly seenMs: number,
  ) {}

  get pid(): Key {
    return this.info.pid;
  }

  get startTime(): number {
    return this.info.startTime;
  }
}

/** The object of a process inode: the core keys its index by kind, so it is a ProcObject, or undefined (restored, not seen since). */
function procOf(inode: Inode<HandleObject>): ProcObject | undefined {
  return inode.object as ProcObject | undefined;
}

export function processIdentity(info: { pid: Key; incarnation: Incarnation }): Identity {
  return { kind: PROCESS_KIND, key: info.pid, incarnation: info.incarnation };
}

/** Exited, as far as handles are concerned: a zombie or a dead task. */
export function hasExited(state: string): boolean {
  return state === 'Z' || state === 'X' || state === 'x';
}

/** Reads what identifies the process now under a pid, and its state (for sweeps of dormant inodes). */
export type IncarnationReader = NonNullable<KindOptions['readIncarnation']>;

/** Whether kill(2) would let `caller` signal a process with these uids (signal.c kill_ok_by_cred). */
export function mayKill(caller: Caller, target: { real: number; saved: number }): boolean {
  if (caller.uid === 0) return true;
  return [caller.uid, caller.ruid].some((u) => u === target.real || u === target.saved);
}

/** Dormant process handles whose incarnation one sweep reads at most. */
export const SWEEP_READS = 1024;
/** Records changed are committed within this time, even when no new number is (commitRecordsSoon). */
export const RECORD_COMMIT_MS = 1000;

export class ProcessHandles implements HandleKind {
  readonly name = PROCESS_KIND;
  readonly dirs: readonly Ino[] = [PID_DIR];
  readonly holdsOnOpen = false;
  private readonly flight = new SingleFlight<Key, ProcObject | null>();
  private readonly readIncarnation: IncarnationReader;
  /** /proc reads done (for tests and stats). */
  reads = 0;
  /** The last number whose incarnation a sweep checked: the next sweep goes on after it. */
  private sweepCursor = 0;
  /** The commit of records changed since the last one, while one is scheduled. */
  private recordCommit: TimerHandle | null = null;

  constructor(
    private readonly ctx: TreeContext,
    private readonly source: ProcessSource,
    /** The namespaces a process handle names (its Ns.* lines, `handlefs exec`). */
    private readonly namespaces: NamespaceHandles,
    readIncarnation?: IncarnationReader,
  ) {
    this.readIncarnation =
      readIncarnation ??
      (async (pid) => {
        const info = await this.source.read(pid);
        return info === null ? null : { incarnation: info.incarnation, state: info.state };
      });
  }

  /** The live, non-dead process inode under `pid`, if any. */
  current(pid: Key): Inode<HandleObject> | undefined {
    return this.ctx.table.findByKey(PROCESS_KIND, pid);
  }

  /**
   * Reads the process (racing callers share one read). Null when the pid names no live process
   * (gone, a zombie, a thread); any inode the table holds for an older incarnation is marked dead.
   */
  resolve(pid: Key): Promise<ProcObject | null> {
    return this.flight.run(pid, async () => {
      this.reads++;
      const info = await this.source.read(pid);
      const known = this.current(pid);
      if (info === null) {
        if (known !== undefined) this.ctx.table.markDead(known);
        return null;
      }
      if (known !== undefined && known.incarnation < info.incarnation) this.ctx.table.markDead(known);
      if (hasExited(info.state)) {
        this.ctx.table.objectGone(processIdentity(info));
        return null;
      }
      return new ProcObject(info, this.ctx.timers.now());
    });
  }

  /** True when the inode can be used without reading /proc: the kernel holds it and its exit is watched. */
  trusted(inode: Inode<HandleObject>): boolean {
    const o = procOf(inode);
    return inode.dentry !== null && o !== undefined && o.unwatch !== null && !this.ctx.table.isDead(inode);
  }

  /** The dentry of a trusted process handle under `pid` with one hold, without reading /proc; else null. */
  acquireTrusted(pid: Key): Dentry<HandleObject> | null {
    const known = this.current(pid);
    return known !== undefined && this.trusted(known) ? this.ctx.table.get(known.dentry!) : null;
  }

  /** The dentry of process `pid` with one hold, or null if it does not exist. */
  async acquire(pid: Key): Promise<Dentry<HandleObject> | null> {
    const known = this.acquireTrusted(pid);
    if (known !== null) return known;
    for (let attempt = 0; attempt < 2; attempt++) {
      const obj = await this.resolve(pid);
      if (obj === null) return null;
      const d = this.instantiate(obj);
      if (d !== null) return d;
    }
    return null;
  }

  /**
   * The dentry of a known process inode with one hold, after checking (unless trusted) that the
   * process still lives; null if it does not (it is then marked dead).
   */
  async acquireInode(inode: Inode<HandleObject>): Promise<Dentry<HandleObject> | null> {
    const table = this.ctx.table;
    if (table.isDead(inode)) return null;
    if (this.trusted(inode)) return table.get(inode.dentry!);
    const obj = await this.resolve(inode.key);
    if (table.isDead(inode)) return null;
    if (obj === null || obj.info.incarnation !== inode.incarnation) {
      if (obj !== null && obj.info.incarnation > inode.incarnation) table.markDead(inode);
      return null;
    }
    const d = this.instantiate(obj);
    if (d !== null && d.inode !== inode) {
      table.put(d);
      return null;
    }
    return d;
  }

  /** instantiate() with a hold; null if the read was older than what the table knows. */
  private instantiate(obj: ProcObject): Dentry<HandleObject> | null {
    let d: Dentry<HandleObject>;
    try {
      d = this.ctx.table.instantiate(processIdentity(obj.info), obj);
    } catch (err) {
      if (err instanceof StaleIdentityError) return null;
      throw err;
    }
    const winner = d.object as ProcObject;
    if (winner !== obj) winner.info = obj.info;
    return d;
  }

  /** Starts the exit watch of a referenced, live process handle (idempotent). */
  engage(d: Dentry<HandleObject>): void {
    const o = d.object as ProcObject;
    if (o.unwatch !== null || d.released || this.ctx.table.isDead(d.inode)) return;
    const identity = processIdentity(o.info);
    let fired = false;
    const onExit = (): void => {
      fired = true;
      if (o.unwatch === unwatch) o.unwatch = null;
      this.ctx.table.objectGone(identity);
    };
    // One descriptor per process: the pidfd held for kill and exit status is also the exit watch;
    // the source's own watch (a pidfd of its own, or polling) only where none could be had.
    if (o.pidfd === null) this.openPidfd(o);
    const unwatch = o.pidfd !== null ? o.pidfd.watchExit(onExit) : this.source.watchExit(o.pid, o.startTime, onExit, o.info.incarnation);
    if (!fired) {
      o.unwatch = unwatch;
      this.recordAlive(d.inode, o);
    }
  }

  /**
   * Writes what a successor needs with the row while the kernel references the handle: the fields
   * last read (and the Ns.* lines once rendered). Only when they changed: a write delays the next
   * reply that shows the number by one commit.
   */
  recordAlive(inode: Inode<HandleObject>, o: ProcObject): void {
    if (this.ctx.table.isDead(inode) || inode.dentry === null) return;
    this.record(inode, o, encodeProcessRecord(processRecord(o.info, o.seenMs, o.nsLines, null)));
  }

  /** The process ended while the kernel references its handle: how, with its row (made durable soon). */
  recordEnded(inode: Inode<HandleObject>): void {
    const o = inode.object;
    if (!(o instanceof ProcObject) || inode.dentry === null) return;
    const ended = this.ending(inode) ?? { state: 'unknown' };
    this.record(inode, o, encodeProcessRecord(processRecord(o.info, o.seenMs, o.nsLines, ended)));
    this.ctx.table.durable()?.catch((err: unknown) => this.ctx.log.warn({ err, pid: o.pid }, 'the exit record of a process handle could not be made durable'));
  }

  /** The kernel no longer references the handle: its record goes (a successor has nothing to serve). */
  unrecord(inode: Inode<HandleObject>, o: ProcObject): void {
    if (o.recorded !== null) this.record(inode, o, null);
  }

  private record(inode: Inode<HandleObject>, o: ProcObject, text: string | null): void {
    if (o.recorded === text) return;
    o.recorded = text;
    this.ctx.table.record(inode, text);
    this.commitRecordsSoon();
  }

  /**
   * Records ride along with the next commit of a new number, but are committed within
   * RECORD_COMMIT_MS anyway: a crash must not leave a successor with the records of handles the
   * kernel has forgotten since (it would adopt each as referenced, with a pidfd, until a FORGET
   * that never comes), nor without those of handles it now references.
   */
  private commitRecordsSoon(): void {
    if (this.recordCommit !== null) return;
    this.recordCommit = this.ctx.timers.setTimeout(() => {
      this.recordCommit = null;
      try {
        this.ctx.table.durable()?.catch((err: unknown) => this.ctx.log.warn({ err }, 'process records could not be committed'));
      } catch (err) {
        this.ctx.log.debug({ err }, 'process records not committed (the store is closed)');
      }
    }, RECORD_COMMIT_MS);
  }

  /**
   * The object of a handle a predecessor recorded (the kernel may still reference it: a bind mount,
   * an open file), made from its record: a live process is re-validated when it is engaged (its
   * pidfd reopened from the pidfs inode number: gone or a zombie, it turns dead there); an ended
   * one is dead with how it ended.
   */
  objectOfRecord(inode: Inode<HandleObject>, r: ProcessRecord): ProcObject {
    const o = new ProcObject(infoOfRecord(inode.key, inode.incarnation, this.ctx.hostIds.bootId, r), r.seenMs);
    o.nsLines = r.ns ?? null;
    o.ended = r.ended ?? null;
    o.restored = true;
    return o;
  }

  private openPidfd(o: ProcObject): void {
    try {
      // A predecessor's process: reopened by its pidfs inode number, exact whatever became of the pid.
      const pidfsIno = o.info.pidfsIno ?? null;
      if (o.restored && pidfsIno !== null && this.source.reopenPidfd !== undefined) {
        o.pidfd = this.source.reopenPidfd(pidfsIno);
        return;
      }
      o.pidfd = this.source.openPidfd?.(o.pid, o.info.incarnation) ?? null;
    } catch (err) {
      this.ctx.log.warn({ err, pid: o.pid }, 'no pidfd for a process handle (exit status will read unknown)');
    }
  }

  /** The process has exited (the table marked it dead): wake pollers and waiters. */
  exited(o: ProcObject): void {
    for (const kh of o.pollers) this.ctx.inval.pollWakeup(kh);
    o.pollers.clear();
    const waiters = [...o.exitWaiters];
    o.exitWaiters.clear();
    for (const w of waiters) w();
  }

  /** How the process ended: null while it runs; 'unknown' where no pidfd saw the exit. */
  ending(inode: Inode<HandleObject>): ProcessEnding | null {
    const o = procOf(inode);
    if (o === undefined) return null;
    if (o.ended !== null) return o.ended;
    const dead = this.ctx.table.isDead(inode);
    let e: ProcessEnding = { state: 'unknown' };
    if (o.pidfd !== null && !o.pidfd.closed) {
      try {
        e = o.pidfd.ending();
      } catch (err) {
        this.ctx.log.warn({ err, pid: o.pid }, 'reading how a process ended failed');
      }
    }
    if (e.state === 'running') return dead ? { state: 'unknown' } : null;
    if (e.state !== 'unknown') o.ended = e;
    return dead || e.state !== 'unknown' ? e : null;
  }

  // ---- actions (the per-kind table in actions.ts) ----

  poll(inode: Inode<HandleObject>, kh: number | undefined): number {
    const o = procOf(inode);
    if (this.ctx.table.isDead(inode) || o === undefined) return POLLIN | POLLRDNORM;
    if (kh !== undefined) o.pollers.add(kh);
    return 0;
  }

  forgetPoller(inode: Inode<HandleObject>, kh: number): void {
    procOf(inode)?.pollers.delete(kh);
  }

  /** Signals exactly this process through the pidfd held for it, if kill(2) would let the caller. */
  signal(inode: Inode<HandleObject>, signal: number, caller: Caller): void {
    const o = this.object(inode);
    if (this.ctx.table.isDead(inode) || o.pidfd === null || o.pidfd.closed) {
      if (!this.ctx.table.isDead(inode) && o.pidfd === null) {
        throw new ActionError('ENOTSUP', `no pidfd is held for process ${o.pid} (the native helper is needed)`);
      }
      throw new ActionError('ESRCH', `process ${o.pid} of this handle has exited`);
    }
    const uids = o.pidfd.uids();
    if (uids === null) throw new ActionError('ESRCH', `process ${o.pid} of this handle has exited`);
    if (!mayKill(caller, uids)) throw new ActionError('EPERM', `not allowed to signal process ${o.pid}`);
    try {
      o.pidfd.signal(signal);
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (code === 'ESRCH') throw new ActionError('ESRCH', `process ${o.pid} of this handle has exited`);
      if (code === 'EPERM') throw new ActionError('EPERM', `not allowed to signal process ${o.pid}`);
      throw err;
    }
  }

  /** Resolves with how the process ended, once it has; the caller must be allowed to signal it. */
  wait(inode: Inode<HandleObject>, caller: Caller, signal?: AbortSignal): Promise<ProcessEnding> {
    const o = this.object(inode);
    const uids = o.pidfd?.uids() ?? (o.info.uid === null ? null : { real: o.info.uid.real, saved: o.info.uid.saved });
    if (uids !== null && !mayKill(caller, uids)) throw new ActionError('EPERM', `not allowed to wait for process ${o.pid}`);
    if (uids === null && caller.uid !== 0) throw new ActionError('EPERM', `not allowed to wait for process ${o.pid}`);
    const done = (): ProcessEnding => this.ending(inode) ?? { state: 'unknown' };
    if (this.ctx.table.isDead(inode)) return Promise.resolve(done());
    if (o.unwatch === null && o.pidfd === null) throw new ActionError('ENOTSUP', `the exit of process ${o.pid} is not watched (open the handle first)`);
    return new Promise((resolve, reject) => {
      const waiter = (): void => {
        signal?.removeEventListener('abort', abort);
        resolve(done());
      };
      const abort = (): void => {
        o.exitWaiters.delete(waiter);
        reject(new ActionError('ECANCELED', 'the wait was given up'));
      };
      if (signal?.aborted) return abort();
      signal?.addEventListener('abort', abort, { once: true });
      o.exitWaiters.add(waiter);
    });
  }

  /** Every namespace of the process, held by handlefs, for `handlefs exec`; it must still run. */
  async enter(inode: Inode<HandleObject>): Promise<EnterTarget[]> {
    const namespaces = this.namespaces;
    const o = this.object(inode);
    if (this.ctx.table.isDead(inode) || !(await this.refresh(inode, o))) throw new ActionError('ESRCH', `process ${o.pid} of this handle has exited`);
    const out: EnterTarget[] = [];
    const holds: Dentry<HandleObject>[] = [];
    try {
      for (const [type, inum] of Object.entries(o.info.namespaces) as Array<[NsType, number]>) {
        const d = await namespaces.acquire(type, inum);
        if (d === null) throw new ActionError('EACCES', `the ${type} namespace of process ${o.pid} cannot be opened`);
        holds.push(d);
        out.push(...(await namespaces.enter(d.inode)));
      }
      if (this.ctx.table.isDead(inode)) throw new ActionError('ESRCH', `process ${o.pid} of this handle has exited`);
      return out;
    } finally {
      for (const d of holds) this.ctx.table.put(d);
    }
  }

  bind(inode: Inode<HandleObject>): EnterTarget {
    const o = this.object(inode);
    throw new ActionError('EINVAL', `a process handle (pid ${o.pid}) cannot be bound: nsfs has no process files; bind one of its namespaces (ns/<type>/<inum>)`);
  }

  private object(inode: Inode<HandleObject>): ProcObject {
    const o = procOf(inode);
    if (o === undefined) throw new ActionError('ESTALE', 'the handle is gone');
    return o;
  }

  private closePidfd(o: ProcObject): void {
    const p = o.pidfd;
    if (p === null) return;
    if (o.ended === null) {
      try {
        const e = p.ending();
        if (e.state === 'exited' || e.state === 'killed') o.ended = e;
      } catch {
        /* keep unknown */
      }
    }
    o.pidfd = null;
    p.close();
  }

  /** The dentry is gone: stop watching (the inode stays, dormant, while the process lives); its record goes. */
  released(o: ProcObject): void {
    this.letGo(o);
    const inode = this.ctx.table.inode(o.ino);
    if (inode !== undefined && inode.object === o && !this.ctx.table.isDead(inode)) this.unrecord(inode, o);
  }

  /** The inode leaves the table, or the tree stops: nothing more to watch or signal. */
  dropped(o: ProcObject): void {
    this.letGo(o);
  }

  private letGo(o: ProcObject): void {
    this.stopWatch(o);
    this.closePidfd(o);
    o.pollers.clear();
  }

  stopWatch(o: ProcObject): void {
    const u = o.unwatch;
    o.unwatch = null;
    u?.();
  }

  /** Refreshes a live process handle's info from the host; false if it turned out dead. */
  async refresh(inode: Inode<HandleObject>, o: ProcObject): Promise<boolean> {
    const table = this.ctx.table;
    if (table.isDead(inode)) return false;
    const fresh = await this.resolve(o.pid);
    if (table.isDead(inode)) return false;
    if (fresh === null || fresh.info.incarnation !== inode.incarnation) {
      table.markDead(inode);
      return false;
    }
    o.info = fresh.info;
    return true;
  }

  /**
   * Validates dormant process inodes (not watched): one listing of pids, then an incarnation read
   * of those whose pid still exists. Anything gone or reused is marked dead.
   */
  async sweep(dormant: readonly Inode<HandleObject>[]): Promise<number> {
    if (dormant.length === 0) return 0;
    const table = this.ctx.table;
    const live = new Set(await this.source.list());
    let dead = 0;
    const present: Inode<HandleObject>[] = [];
    for (const inode of dormant) {
      if (table.isDead(inode)) continue;
      if (!live.has(inode.key)) {
        table.markDead(inode);
        dead++;
      } else {
        present.push(inode);
      }
    }
    // A pid still present may name a newer process: reading tells. Those reads are bounded per
    // sweep and go round the table (100k dormant rows must not cost 100k reads every interval);
    // a lookup re-validates a dormant handle anyway, so the sweep is housekeeping, not a guard.
    const checked = this.nextToCheck(present);
    await mapLimit(checked, this.ctx.concurrency, async (inode) => {
      let st: { incarnation: number; state: string } | null;
      try {
        st = await this.readIncarnation(inode.key);
      } catch (err) {
        this.ctx.log.debug({ err, pid: inode.key }, 'sweep: incarnation unreadable');
        return;
      }
      if (table.isDead(inode) || this.trusted(inode)) return;
      if (st === null || st.incarnation !== inode.incarnation || hasExited(st.state)) {
        table.markDead(inode);
        dead++;
      }
    });
    return dead;
  }

  /** Up to SWEEP_READS of `present`, in number order, starting after the last one checked. */
  private nextToCheck(present: Inode<HandleObject>[]): Inode<HandleObject>[] {
    if (present.length <= SWEEP_READS) return present;
    const sorted = [...present].sort((a, b) => a.ino - b.ino);
    let start = sorted.findIndex((i) => i.ino > this.sweepCursor);
    if (start < 0) start = 0;
    const out = sorted.slice(start, start + SWEEP_READS);
    if (out.length < SWEEP_READS) out.push(...sorted.slice(0, SWEEP_READS - out.length));
    this.sweepCursor = out[out.length - 1]!.ino;
    return out;
  }


  // ---- the rest of the kind's operations (HandleKind, kind.ts) ----

  parseName(name: string): Key | undefined {
    return parsePidName(name);
  }

  keeps(r: InodeRecord): boolean {
    return Number.isSafeInteger(r.key) && r.key >= 1 && r.key <= MAX_PID;
  }

  dirOf(): Ino {
    return PID_DIR;
  }

  acquireTrustedIn(_dir: Ino, pid: Key): Dentry<HandleObject> | null {
    return this.acquireTrusted(pid);
  }

  acquireIn(_dir: Ino, pid: Key): Promise<Dentry<HandleObject> | null> {
    return this.acquire(pid);
  }

  acquireKnown(inode: Inode<HandleObject>): Dentry<HandleObject> | null {
    return this.trusted(inode) ? this.ctx.table.get(inode.dentry!) : null;
  }

  /** Nothing of a process handle idles. */
  used(): void {}

  async opened(d: Dentry<HandleObject>): Promise<void> {
    this.engage(d);
  }

  /** The process exited: stop watching, wake pollers and waiters. */
  dead(inode: Inode<HandleObject>): void {
    const o = procOf(inode);
    if (o === undefined) return;
    this.stopWatch(o);
    this.exited(o);
    this.recordEnded(inode);
  }

  /** Mirroring /proc: the status file is 0444, owned by the process's effective ids. */
  attr(inode: Inode<HandleObject>): HandleAttr {
    const o = procOf(inode);
    if (o === undefined) return { mode: S_FILE_PROCESS, uid: 0, gid: 0 };
    return { mode: S_FILE_PROCESS, uid: o.info.uid?.effective ?? 0, gid: o.info.gid?.effective ?? 0, timeMs: o.seenMs };
  }

  async render(d: Dentry<HandleObject>, caller: AccessCaller, holds: Dentry<HandleObject>[]): Promise<string> {
    const o = d.object as ProcObject;
    const table = this.ctx.table;
    let alive = false;
    try {
      alive = await this.refresh(d.inode, o);
    } catch (err) {
      this.ctx.log.warn({ err, pid: o.pid }, 'reading a process failed');
      alive = !table.isDead(d.inode);
    }
    let ns: Record<NsType, string>;
    if (!mayInspect(caller, o.info)) {
      // /proc/PID/ns needs ptrace access: nothing of them, not even which handles they are.
      ns = Object.fromEntries(NS_TYPES.map((t) => [t, HIDDEN])) as Record<NsType, string>;
    } else if (alive) {
      const info = o.info;
      const nsUnreadable = info.unreadable.includes('namespaces');
      const values = await Promise.all(
        NS_TYPES.map(async (type): Promise<string> => {
          const inum = info.namespaces[type];
          if (inum === undefined) return nsUnreadable ? UNREADABLE : NONE;
          const nd = await this.namespaces.acquire(type, inum).catch(() => null);
          if (nd === null) return UNREADABLE;
          holds.push(nd);
          // A use: the hold stays open for the grace period, so the next read does not reopen it.
          this.namespaces.used(nd.object);
          return String(nd.ino);
        }),
      );
      ns = Object.fromEntries(NS_TYPES.map((t, i) => [t, values[i]!])) as Record<NsType, string>;
      o.nsLines = ns;
      this.recordAlive(d.inode, o);
    } else {
      ns = (o.nsLines as Record<NsType, string> | null) ?? (Object.fromEntries(NS_TYPES.map((t) => [t, NONE])) as Record<NsType, string>);
    }
    const dead = !alive || table.isDead(d.inode);
    return renderProcess({
      info: o.info,
      dead,
      ending: dead ? this.ending(d.inode) : null,
      ns,
      ino: d.ino,
      generation: d.inode.generation,
      handle: handleName(this.ctx.hostIds.machineId, this.ctx.hostIds.bootId, d.ino),
    });
  }

  list(): Promise<Key[]> {
    return this.source.list();
  }

  visible(caller: AccessCaller, o: ProcObject): boolean {
    return this.ctx.policy.processVisible(caller, o.info);
  }

  mayOpen(caller: AccessCaller, o: ProcObject): boolean {
    return this.ctx.policy.mayOpenProcess(caller, o.info);
  }

  async listFilter(caller: AccessCaller): Promise<(o: HandleObject) => boolean> {
    return (o) => this.ctx.policy.processVisible(caller, (o as ProcObject).info);
  }

  describe(o: ProcObject): HandleDescription {
    return { name: o.info.comm, held: null };
  }
}

/** The process kind's row in the table of kinds (kinds.ts). */
export const PROCESSES: HandleKindEntry = {
  name: PROCESS_KIND,
  incarnations: 'ordered',
  create: (s) => new ProcessHandles(s.ctx, s.processSource, s.kind<NamespaceHandles>(NAMESPACE_KIND), s.options.readIncarnation),
};
