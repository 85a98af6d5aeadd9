/**
 * In-memory ProcessSource and NamespaceSource for tests: no root, no /proc, no native helper.
 *
 *   const host = new FakeHost();                 // pid 1 'init' in the initial namespaces
 *   const p = host.start({ comm: 'sleep', ppid: 1 });
 *   const net = host.createNamespace('net');     // pinned, like `ip netns add`
 *   host.enter(p.pid, 'net', net.inum);
 *   host.clock.advance(1000);
 *   host.exit(p.pid);                            // exit watchers fire (synchronously, here)
 *   const q = host.reusePid(p.pid);              // same pid, later startTime
 *
 * Semantics follow the real sources (see docs/sources.md): watchExit fires once, never from
 * inside watchExit itself, at once (on a microtask) for a process already gone; list() of
 * namespaces shows those reachable through a process or a pin; a handle keeps its namespace
 * alive; namespace inode numbers are reused (lowest free from 0xF0000000) like nsfs's, while
 * nsIds never are.
 */
import { ContainerModule } from 'inversify';
import { pino, type Logger } from 'pino';
import { SOURCES } from '../sources/tokens.js';
import {
  NS_TYPES,
  type Clock,
  type HostIds,
  type IdSet,
  type NamespaceHandle,
  type NamespaceInfo,
  type NamespaceRef,
  type NamespaceSource,
  type NsRef,
  type NsType,
  type ProcessEnding,
  type ProcessField,
  type ProcessInfo,
  type ProcessPidfd,
  type ProcessSource,
  type ProcessUids,
} from '../sources/types.js';

/** Signals whose default action is not to end the process (signal(7)): the fake records them only. */
const NON_FATAL_SIGNALS: ReadonlySet<number> = new Set([0, 17, 18, 19, 20, 21, 22, 23, 28]);

/** A clock that moves only when told: advance(ms) or set(ms). */
export class FakeClock implements Clock {
  constructor(private ms = 0) {}
  now(): number {
    return this.ms;
  }
  /** Moves the clock forward by ms. */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError('FakeClock.advance: ms must be >= 0');
    this.ms += ms;
  }
  /** Sets the clock to ms (epoch milliseconds). */
  set(ms: number): void {
    this.ms = ms;
  }
}

/** Fixed inode numbers of the initial namespaces (include/uapi/linux/nsfs.h, enum init_ns_ino). */
export const INITIAL_NS_INUM: Readonly<Record<NsType, number>> = {
  ipc: 0xefffffff,
  uts: 0xeffffffe,
  user: 0xeffffffd,
  pid: 0xeffffffc,
  cgroup: 0xeffffffb,
  time: 0xeffffffa,
  net: 0xeffffff9,
  mnt: 0xeffffff8,
};
const FIRST_DYNAMIC_INUM = 0xf0000000;
/** Namespaces a zombie still holds (through its struct pid and credentials). */
const ZOMBIE_NS: ReadonlySet<NsType> = new Set<NsType>(['pid', 'user']);
const FAKE_NSFS_DEV = 4;

/** What start() makes: a process's pid, parent, command, state, ids, cgroup and namespaces (all optional). */
export interface FakeProcessSpec {
  /** Default: the next free pid. */
  pid?: number;
  /** Default 1 (0 for pid 1). */
  ppid?: number;
  /** Command name. Default 'proc'. */
  comm?: string;
  /** Default 'S'. */
  state?: string;
  /** A number sets all four ids. Default 0. */
  uid?: number | IdSet;
  /** Group ids, as uid. Default 0. */
  gid?: number | IdSet;
  /** The cgroup path alone, as the real source gives it ('/user.slice'); null: unreadable. Default '/'. */
  cgroup?: string | null;
  /** Namespaces by type; missing types are the parent's (or the initial ones). */
  namespaces?: Partial<Record<NsType, number>>;
  /** Fields to report unreadable, e.g. ['namespaces'] to mimic pid 1 (their values are hidden). */
  unreadable?: ProcessField[];
  /** Default true. Not dumpable (a set-id program): /proc/PID is owned by root, not its euid. */
  dumpable?: boolean;
  /**
   * Force the start time, e.g. the same clock tick as the process that had this pid before (what
   * fast pid reuse produces on a real host). Default: the clock, and later than any earlier one.
   */
  startTime?: number;
  /** Signals the process handles (sent ones are recorded, it does not end); default none. */
  catches?: number[];
}

/** How a fake process ends: `exit(pid, { code })` or `{ signal }`; default code 0. */
export interface FakeExitSpec {
  /** Stay a zombie (unreaped: listed, state Z) instead of vanishing at once. */
  zombie?: boolean;
  /** Exit code 0-255 (exit(3)). */
  code?: number;
  /** Killed by this signal instead. */
  signal?: number;
}

/** What createNamespace() makes: an owner user namespace, a kernel id. */
export interface FakeNamespaceSpec {
  /** Owning user namespace inum; default the initial user namespace. For 'user' it is also the parent. */
  owner?: number;
  /** For 'pid' and 'user': parent namespace inum; default the initial one of that type. */
  parent?: number;
  /** Force an inum (must be free); default the lowest free from 0xF0000000. */
  inum?: number;
  /** Default true: held like a bind mount until destroyNamespace(). */
  pinned?: boolean;
  /**
   * Force the kernel's namespace id (must not be in use). Default: the next of a growing counter;
   * real ids come in per-CPU batches, so a later namespace may have a smaller one.
   */
  nsId?: string;
}

/** Options of a FakeHost: its ids, clock, clock ticks per second and whether pid 1 starts. */
export interface FakeHostOptions {
  /** The boot id the host reports (a UUID). Default a fixed one. */
  bootId?: string;
  /** The machine id the host reports (32 hex digits). Default a fixed one. */
  machineId?: string;
  /** The clock; share one between hosts and the kit's timers. Default a new FakeClock. */
  clock?: FakeClock;
  /** Clock ticks per second for start times (USER_HZ). Default 100. */
  ticksPerSecond?: number;
  /** Start pid 1 ('init'). Default true. */
  init?: boolean;
}

interface FakeProcess {
  pid: number;
  startTime: number;
  /** Like the kernel's pidfs inode: one host-wide counter, never reused. */
  incarnation: number;
  ppid: number;
  comm: string;
  state: string;
  uid: IdSet;
  gid: IdSet;
  cgroup: string | null;
  namespaces: Record<NsType, number>;
  unreadable: ProcessField[];
  dumpable: boolean;
  catches: Set<number>;
  /** Signals sent to it (through a pidfd), in order. */
  signals: number[];
  /** Set at exit. */
  ending: ProcessEnding | null;
}

interface FakeNamespace {
  type: NsType;
  inum: number;
  nsId: string;
  owner: number | null; // user ns inum
  parent: number | null; // same type
  initial: boolean;
  pinned: boolean;
  handles: number;
}

type ExitListener = { fn: () => void; active: boolean };

const idSet = (v: number | IdSet | undefined): IdSet =>
  typeof v === 'object' ? { ...v } : { real: v ?? 0, effective: v ?? 0, saved: v ?? 0, fs: v ?? 0 };
const nsKey = (type: NsType, inum: number): string => `${type}:${inum}`;
const exitKey = (pid: number, startTime: number): string => `${pid}:${startTime}`;

/** A simulated host: processes, namespaces, exits and pid reuse, driven by the test (docs/testing.md). */
export class FakeHost {
  /** The host's clock (start times derive from it). */
  readonly clock: FakeClock;
  /** Boot and machine ids, as the sources report them. */
  readonly hostIds: HostIds;
  /** The ProcessSource the container gets: reads this host. */
  readonly processSource: FakeProcessSource;
  /** The NamespaceSource the container gets: reads this host. */
  readonly namespaceSource: FakeNamespaceSource;
  private readonly ticksPerSecond: number;
  private readonly bootMs: number;
  private readonly procs = new Map<number, FakeProcess>();
  private readonly lastStart = new Map<number, number>();
  private lastIncarnation = 0;
  private readonly nss = new Map<string, FakeNamespace>();
  private readonly usedInums = new Set<number>();
  private readonly exitListeners = new Map<string, Set<ExitListener>>();
  /** Every process ever started, by incarnation (what a pidfd keeps referring to). */
  private readonly byIncarnation = new Map<number, FakeProcess>();
  private nextPid = 2;
  private nextNsId = 1;

  constructor(options: FakeHostOptions = {}) {
    this.clock = options.clock ?? new FakeClock();
    this.bootMs = this.clock.now();
    this.ticksPerSecond = options.ticksPerSecond ?? 100;
    this.hostIds = {
      bootId: options.bootId ?? '00000000-0000-4000-8000-000000000001',
      machineId: options.machineId ?? '0123456789abcdef0123456789abcdef',
      machineIdSource: '/etc/machine-id',
    };
    for (const type of NS_TYPES) {
      this.addNs({
        type,
        inum: INITIAL_NS_INUM[type],
        nsId: String(this.nextNsId++),
        owner: null,
        parent: null,
        initial: true,
        pinned: true,
        handles: 0,
      });
    }
    for (const type of NS_TYPES) {
      if (type !== 'user') this.nss.get(nsKey(type, INITIAL_NS_INUM[type]))!.owner = INITIAL_NS_INUM.user;
    }
    this.processSource = new FakeProcessSource(this);
    this.namespaceSource = new FakeNamespaceSource(this);
    if (options.init ?? true) this.start({ pid: 1, ppid: 0, comm: 'init' });
  }

  // ---- processes ----------------------------------------------------------------------------

  /** Starts a process; returns what read() would return for it. */
  start(spec: FakeProcessSpec = {}): ProcessInfo {
    const pid = spec.pid ?? this.allocPid();
    if (!Number.isSafeInteger(pid) || pid <= 0) throw new RangeError(`bad pid ${pid}`);
    if (this.procs.has(pid)) throw new Error(`pid ${pid} is in use (exit and reap it, or use reusePid)`);
    const ppid = spec.ppid ?? (pid === 1 ? 0 : 1);
    const parent = this.procs.get(ppid);
    const namespaces = {} as Record<NsType, number>;
    for (const type of NS_TYPES) {
      const inum = spec.namespaces?.[type] ?? parent?.namespaces[type] ?? INITIAL_NS_INUM[type];
      this.requireNs(type, inum);
      namespaces[type] = inum;
    }
    const ticks = Math.floor(((this.clock.now() - this.bootMs) * this.ticksPerSecond) / 1000);
    const startTime = spec.startTime ?? Math.max(ticks, (this.lastStart.get(pid) ?? -1) + 1);
    this.lastStart.set(pid, startTime);
    const record: FakeProcess = {
      pid,
      startTime,
      incarnation: ++this.lastIncarnation,
      ppid,
      comm: spec.comm ?? 'proc',
      state: spec.state ?? 'S',
      uid: idSet(spec.uid),
      gid: idSet(spec.gid),
      cgroup: spec.cgroup === undefined ? '/' : spec.cgroup,
      namespaces,
      unreadable: [...(spec.unreadable ?? [])],
      dumpable: spec.dumpable ?? true,
      catches: new Set(spec.catches ?? []),
      signals: [],
      ending: null,
    };
    this.procs.set(pid, record);
    this.byIncarnation.set(record.incarnation, record);
    return this.process(pid)!;
  }

  /**
   * The process exits: exit watchers fire (synchronously, from here). It then stays a zombie
   * (state 'Z', only its pid and user namespaces left, as on Linux) if `zombie` is set, until reap(); otherwise it is reaped at once.
   */
  exit(pid: number, options: FakeExitSpec = {}): void {
    const p = this.procs.get(pid);
    if (!p || p.state === 'Z') throw new Error(`no live process ${pid}`);
    p.ending = options.signal !== undefined ? { state: 'killed', signal: options.signal } : { state: 'exited', code: (options.code ?? 0) & 0xff };
    if (options.zombie) p.state = 'Z';
    else this.procs.delete(pid);
    this.collectNamespaces();
    this.fireExit(pid, p.startTime);
  }

  /** Removes a zombie. */
  reap(pid: number): void {
    const p = this.procs.get(pid);
    if (!p || p.state !== 'Z') throw new Error(`no zombie ${pid}`);
    this.procs.delete(pid);
  }

  /** Ends whatever runs as pid (exit and reap) and starts a new process with the same pid and a later startTime. */
  reusePid(pid: number, spec: Omit<FakeProcessSpec, 'pid'> = {}): ProcessInfo {
    const p = this.procs.get(pid);
    if (p && p.state !== 'Z') this.exit(pid);
    else if (p) this.reap(pid);
    return this.start({ ...spec, pid });
  }

  /** Changes fields of a live process (state, comm, uid, ...); namespaces through enter(). */
  update(pid: number, changes: Omit<FakeProcessSpec, 'pid' | 'namespaces'>): ProcessInfo {
    const p = this.procs.get(pid);
    if (!p) throw new Error(`no process ${pid}`);
    if (changes.ppid !== undefined) p.ppid = changes.ppid;
    if (changes.comm !== undefined) p.comm = changes.comm;
    if (changes.state !== undefined) p.state = changes.state;
    if (changes.uid !== undefined) p.uid = idSet(changes.uid);
    if (changes.gid !== undefined) p.gid = idSet(changes.gid);
    if (changes.cgroup !== undefined) p.cgroup = changes.cgroup;
    if (changes.unreadable !== undefined) p.unreadable = [...changes.unreadable];
    if (changes.dumpable !== undefined) p.dumpable = changes.dumpable;
    return this.process(pid)!;
  }

  /** What ProcessSource.read(pid) gives, synchronously. */
  process(pid: number): ProcessInfo | null {
    const p = this.procs.get(pid);
    if (!p) return null;
    const hidden = new Set(p.unreadable);
    const zombie = p.state === 'Z';
    const unreadable = (['uid', 'gid', 'cgroup', 'namespaces'] as const).filter(
      (f) => hidden.has(f) || (f === 'cgroup' && p.cgroup === null),
    );
    return {
      pid: p.pid,
      startTime: p.startTime,
      incarnation: p.incarnation,
      bootId: this.hostIds.bootId,
      ppid: p.ppid,
      state: p.state,
      comm: p.comm,
      uid: hidden.has('uid') ? null : { ...p.uid },
      gid: hidden.has('gid') ? null : { ...p.gid },
      cgroup: hidden.has('cgroup') ? null : p.cgroup,
      namespaces: hidden.has('namespaces')
        ? {}
        : zombie
          ? { pid: p.namespaces.pid, user: p.namespaces.user }
          : { ...p.namespaces },
      unreadable,
      dumpOwner: p.dumpable ? p.uid.effective : 0,
      pidfsIno: p.incarnation,
    };
  }

  /**
   * A signal reaches the process (as pidfd_send_signal would deliver it): recorded; unless the
   * process catches it or its default action is not fatal, the process ends killed by it (a
   * zombie until reaped when `zombie`). Throws ESRCH for a process that has ended.
   */
  signal(incarnation: number, signal: number, options: { zombie?: boolean } = {}): void {
    const p = this.byIncarnation.get(incarnation);
    if (!p || p.ending !== null) throw Object.assign(new Error('pidfd_send_signal: ESRCH (No such process)'), { code: 'ESRCH' });
    if (signal === 0) return;
    p.signals.push(signal);
    if (!p.catches.has(signal) && !NON_FATAL_SIGNALS.has(signal)) this.exit(p.pid, { signal, ...options });
  }

  /** Signals sent to the process `pid` now runs (through pidfds), in order. */
  signalsOf(pid: number): number[] {
    return [...(this.procs.get(pid)?.signals ?? [])];
  }

  /** How the incarnation stands (running, exited with a code, killed by a signal); used by FakePidfd. */
  endingOf(incarnation: number): ProcessEnding {
    const p = this.byIncarnation.get(incarnation);
    return p?.ending ?? (p ? { state: 'running' } : { state: 'unknown' });
  }

  /** The real, effective and saved uids of a running incarnation (null once it ended); used by FakePidfd. */
  uidsOf(incarnation: number): ProcessUids | null {
    const p = this.byIncarnation.get(incarnation);
    return p && p.ending === null ? { real: p.uid.real, effective: p.uid.effective, saved: p.uid.saved } : null;
  }

  /** A pidfd for (pid, incarnation) while that process runs; null if it does not. */
  openPidfd(pid: number, incarnation: number): FakePidfd | null {
    const p = this.procs.get(pid);
    if (!p || p.incarnation !== incarnation || p.ending !== null) return null;
    this.openPidfds++;
    return new FakePidfd(this, incarnation, pid, p.startTime);
  }

  /** Pidfds handed out and not closed. */
  openPidfds = 0;

  /** The pids of live processes (zombies included), ascending. */
  pids(): number[] {
    return [...this.procs.keys()].sort((a, b) => a - b);
  }

  // ---- namespaces ---------------------------------------------------------------------------

  /** The nsfs inode number of the initial namespace of a type. */
  initialNamespace(type: NsType): number {
    return INITIAL_NS_INUM[type];
  }

  /** Creates a namespace, pinned (like a bind mount) unless `pinned: false`. */
  createNamespace(type: NsType, spec: FakeNamespaceSpec = {}): NamespaceInfo {
    let inum = spec.inum;
    if (inum === undefined) {
      inum = FIRST_DYNAMIC_INUM;
      while (this.usedInums.has(inum)) inum++;
    } else if (this.usedInums.has(inum)) {
      throw new Error(`inum ${inum} is in use`);
    }
    let owner = spec.owner ?? INITIAL_NS_INUM.user;
    let parent: number | null = null;
    if (type === 'user') {
      parent = spec.parent ?? spec.owner ?? INITIAL_NS_INUM.user;
      owner = parent;
    } else if (type === 'pid') {
      parent = spec.parent ?? INITIAL_NS_INUM.pid;
    }
    this.requireNs('user', owner);
    if (parent !== null) this.requireNs(type, parent);
    if (spec.nsId !== undefined && [...this.nss.values()].some((n) => n.nsId === spec.nsId)) {
      throw new Error(`namespace id ${spec.nsId} is in use`);
    }
    this.addNs({
      type,
      inum,
      nsId: spec.nsId ?? String(this.nextNsId++),
      owner,
      parent,
      initial: false,
      pinned: spec.pinned ?? true,
      handles: 0,
    });
    return this.namespaceInfo(type, inum)!;
  }

  /** Drops the pin; the namespace dies once no process, handle or child namespace holds it. */
  destroyNamespace(type: NsType, inum: number): void {
    const ns = this.requireNs(type, inum);
    if (ns.initial) throw new Error('initial namespaces cannot be destroyed');
    ns.pinned = false;
    this.collectNamespaces();
  }

  /** Moves a live process into a namespace (setns/unshare). */
  enter(pid: number, type: NsType, inum: number): void {
    const p = this.procs.get(pid);
    if (!p || p.state === 'Z') throw new Error(`no live process ${pid}`);
    this.requireNs(type, inum);
    p.namespaces[type] = inum;
    this.collectNamespaces();
  }

  /** True while the namespace exists (held by something). */
  namespaceAlive(type: NsType, inum: number): boolean {
    return this.nss.has(nsKey(type, inum));
  }

  /** Reachable the way the real list() finds namespaces: through a process or a pin. */
  namespaceReachable(type: NsType, inum: number): boolean {
    const ns = this.nss.get(nsKey(type, inum));
    if (!ns) return false;
    if (ns.pinned) return true;
    for (const p of this.procs.values()) {
      if (p.unreadable.includes('namespaces') || p.namespaces[type] !== inum) continue;
      if (p.state !== 'Z' || ZOMBIE_NS.has(type)) return true;
    }
    return false;
  }

  /** What the source reports of a namespace; null if it does not exist. */
  namespaceInfo(type: NsType, inum: number): NamespaceInfo | null {
    const ns = this.nss.get(nsKey(type, inum));
    if (!ns) return null;
    const ref = (t: NsType, i: number | null): NsRef | null => {
      const o = i === null ? undefined : this.nss.get(nsKey(t, i));
      return o ? { inum: o.inum, nsId: o.nsId } : null;
    };
    const info: NamespaceInfo = {
      type,
      inum,
      dev: FAKE_NSFS_DEV,
      nsId: ns.nsId,
      owner: ref('user', ns.owner),
    };
    return type === 'pid' || type === 'user' ? { ...info, parent: ref(type, ns.parent) } : info;
  }

  /** Namespaces reachable through a process or a hold, as a listing finds them. */
  namespaceRefs(): NamespaceRef[] {
    const out: NamespaceRef[] = [];
    for (const ns of this.nss.values()) {
      if (this.namespaceReachable(ns.type, ns.inum)) out.push({ type: ns.type, inum: ns.inum });
    }
    const order = new Map(NS_TYPES.map((t, i) => [t, i]));
    return out.sort((a, b) => order.get(a.type)! - order.get(b.type)! || a.inum - b.inum);
  }

  // ---- used by the fake sources -------------------------------------------------------------

  /** Calls onExit once when the process (pid, startTime) exits; returns the disposer. Used by the fake sources. @internal */
  watchExit(pid: number, startTime: number, onExit: () => void): () => void {
    const listener: ExitListener = { fn: onExit, active: true };
    const p = this.procs.get(pid);
    if (!p || p.startTime !== startTime || p.state === 'Z') {
      queueMicrotask(() => {
        if (!listener.active) return;
        listener.active = false;
        onExit();
      });
      return () => {
        listener.active = false;
      };
    }
    const k = exitKey(pid, startTime);
    let set = this.exitListeners.get(k);
    if (!set) this.exitListeners.set(k, (set = new Set()));
    set.add(listener);
    const s = set;
    return () => {
      listener.active = false;
      s.delete(listener);
      if (s.size === 0 && this.exitListeners.get(k) === s) this.exitListeners.delete(k);
    };
  }

  /** Number of exit watches not yet fired nor disposed. */
  get pendingExitWatches(): number {
    let n = 0;
    for (const s of this.exitListeners.values()) n += s.size;
    return n;
  }

  /** Takes a hold on a namespace (it stays alive while held); false if it does not exist. Used by the fake sources. @internal */
  hold(type: NsType, inum: number): boolean {
    const ns = this.nss.get(nsKey(type, inum));
    if (!ns) return false;
    ns.handles++;
    return true;
  }

  /** Gives a hold back; the namespace dies with its last process and hold. Used by the fake sources. @internal */
  release(type: NsType, inum: number): void {
    const ns = this.nss.get(nsKey(type, inum));
    if (!ns) return;
    ns.handles--;
    this.collectNamespaces();
  }

  /** How many holds a namespace has (the handle tree's descriptors). @internal */
  heldBy(type: NsType, inum: number): number {
    return this.nss.get(nsKey(type, inum))?.handles ?? 0;
  }

  private fireExit(pid: number, startTime: number): void {
    const k = exitKey(pid, startTime);
    const set = this.exitListeners.get(k);
    if (!set) return;
    this.exitListeners.delete(k);
    for (const l of [...set]) {
      if (!l.active) continue;
      l.active = false;
      l.fn();
    }
  }

  private allocPid(): number {
    while (this.procs.has(this.nextPid)) this.nextPid++;
    return this.nextPid++;
  }

  private addNs(ns: FakeNamespace): void {
    this.nss.set(nsKey(ns.type, ns.inum), ns);
    this.usedInums.add(ns.inum);
  }

  private requireNs(type: NsType, inum: number): FakeNamespace {
    const ns = this.nss.get(nsKey(type, inum));
    if (!ns) throw new Error(`no ${type} namespace ${inum}`);
    return ns;
  }

  /** Removes namespaces nothing holds (process, pin, handle, or a child's owner/parent link). */
  private collectNamespaces(): void {
    for (;;) {
      const held = new Set<string>();
      for (const p of this.procs.values()) {
        for (const type of NS_TYPES) {
          if (p.state !== 'Z' || ZOMBIE_NS.has(type)) held.add(nsKey(type, p.namespaces[type]));
        }
      }
      for (const ns of this.nss.values()) {
        if (ns.owner !== null) held.add(nsKey('user', ns.owner));
        if (ns.parent !== null) held.add(nsKey(ns.type, ns.parent));
      }
      let removed = false;
      for (const [k, ns] of this.nss) {
        if (ns.initial || ns.pinned || ns.handles > 0 || held.has(k)) continue;
        this.nss.delete(k);
        this.usedInums.delete(ns.inum);
        removed = true;
      }
      if (!removed) return;
    }
  }
}

/** The ProcessSource over a FakeHost. */
export class FakeProcessSource implements ProcessSource {
  constructor(private readonly host: FakeHost) {}
  bootId(): string {
    return this.host.hostIds.bootId;
  }
  machineId(): string {
    return this.host.hostIds.machineId;
  }
  identityScope(): string {
    return this.host.hostIds.bootId;
  }
  async list(): Promise<number[]> {
    return this.host.pids();
  }
  async read(pid: number): Promise<ProcessInfo | null> {
    return this.host.process(pid);
  }
  async listOwnedBy(uid: number): Promise<number[]> {
    return this.host.pids().filter((pid) => this.host.process(pid)?.dumpOwner === uid);
  }
  watchExit(pid: number, startTime: number, onExit: () => void): () => void {
    return this.host.watchExit(pid, startTime, onExit);
  }
  openPidfd(pid: number, incarnation: number): ProcessPidfd | null {
    return this.host.openPidfd(pid, incarnation);
  }
}

/** A fake pidfd: names one incarnation forever; signals through FakeHost.signal. */
export class FakePidfd implements ProcessPidfd {
  private isClosed = false;
  private readonly watches = new Set<() => void>();
  constructor(
    private readonly host: FakeHost,
    readonly pidfsIno: number,
    private readonly pid: number,
    private readonly startTime: number,
  ) {}
  /** As the host's exit watch of (pid, startTime): this pidfd's process. */
  watchExit(onExit: () => void): () => void {
    if (this.isClosed) {
      let active = true;
      queueMicrotask(() => {
        if (active) onExit();
      });
      return () => {
        active = false;
      };
    }
    const stop = this.host.watchExit(this.pid, this.startTime, () => {
      this.watches.delete(stop);
      onExit();
    });
    this.watches.add(stop);
    return () => {
      this.watches.delete(stop);
      stop();
    };
  }
  /** True once close() was called. */
  get closed(): boolean {
    return this.isClosed;
  }
  ending(): ProcessEnding {
    return this.host.endingOf(this.pidfsIno);
  }
  uids(): ProcessUids | null {
    return this.host.uidsOf(this.pidfsIno);
  }
  signal(signal: number): void {
    if (this.isClosed) throw Object.assign(new Error('the pidfd is closed'), { code: 'ESRCH' });
    this.host.signal(this.pidfsIno, signal);
  }
  /** Stops its exit watches and releases it (idempotent). */
  close(): void {
    if (this.isClosed) return;
    for (const stop of [...this.watches]) stop();
    this.watches.clear();
    this.isClosed = true;
    this.host.openPidfds--;
  }
}

/** A hold on a fake namespace, like an open nsfs descriptor. */
export class FakeNamespaceHandle implements NamespaceHandle {
  private isClosed = false;
  constructor(
    readonly info: NamespaceInfo,
    private readonly host: FakeHost,
  ) {}
  /** True once closed. */
  get closed(): boolean {
    return this.isClosed;
  }
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.host.release(this.info.type, this.info.inum);
  }
}

/** The NamespaceSource over a FakeHost. */
export class FakeNamespaceSource implements NamespaceSource {
  constructor(private readonly host: FakeHost) {}
  async list(): Promise<NamespaceRef[]> {
    return this.host.namespaceRefs();
  }
  async open(type: NsType, inum: number, nsId?: string): Promise<NamespaceHandle | null> {
    const reachable = this.host.namespaceReachable(type, inum) || this.host.heldBy(type, inum) > 0;
    const info = reachable ? this.host.namespaceInfo(type, inum) : null;
    if (!info || (nsId !== undefined && info.nsId !== nsId)) return null;
    this.host.hold(type, inum);
    return new FakeNamespaceHandle(info, this.host);
  }
  async check(type: NsType, inum: number, nsId?: string): Promise<NamespaceInfo | null> {
    const reachable = this.host.namespaceReachable(type, inum) || this.host.heldBy(type, inum) > 0;
    const info = reachable ? this.host.namespaceInfo(type, inum) : null;
    return !info || (nsId !== undefined && info.nsId !== nsId) ? null : info;
  }
}

/** Binds the SOURCES tokens to a FakeHost's sources (and its clock), for container-level tests. */
export function createFakeSourcesModule(host: FakeHost, logger?: Logger): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind(SOURCES.Logger).toConstantValue(logger ?? pino({ level: 'silent' }));
    bind(SOURCES.Clock).toConstantValue(host.clock);
    bind(SOURCES.HostIds).toConstantValue(host.hostIds);
    bind(SOURCES.ProcessSource).toConstantValue(host.processSource);
    bind(SOURCES.NamespaceSource).toConstantValue(host.namespaceSource);
  });
}
