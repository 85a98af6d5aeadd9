/**
 * Who may see what: every request is judged by the caller's credentials (the uid, gid and pid of
 * the FUSE request header), so that with allow_other nobody learns or holds through the mount
 * what /proc would refuse them.
 *
 * The rules mirror procfs:
 * - A process's Ns.* lines, and opening a namespace handle, need what reading /proc/PID/ns/*
 *   needs: ptrace read access (ptrace_may_access with PTRACE_MODE_READ_FSCREDS). For a caller
 *   other than root that is: the caller's own process, or one whose real, effective and saved
 *   uids and gids are all the caller's and that is dumpable (/proc/PID owned by its euid).
 *   uid 0 is taken to hold CAP_SYS_PTRACE; other callers with capabilities are judged like any
 *   user (stricter than the kernel, never looser).
 * - A namespace handle may be opened by a caller who could readlink some /proc/PID/ns/<type>
 *   naming it: a process it may inspect is in it.
 * - hidepid (like procfs's mount option): `off` every handle is listed and its public fields
 *   readable; `noaccess` process handles of others cannot be opened (EACCES); `invisible` they,
 *   and namespaces the caller could not open, are not listed and do not resolve (ENOENT).
 */
import { SingleFlight } from '../core/single-flight.js';
import type { NsType, ProcessInfo, ProcessSource } from '../sources/types.js';
import type { Timers } from './timers.js';

export const HIDEPID_MODES = ['off', 'noaccess', 'invisible'] as const;
export type HidePid = (typeof HIDEPID_MODES)[number];

/** procfs's spellings: 0/off, 1/noaccess, 2/invisible (and 4/ptraceable, which acts as invisible here). */
export function parseHidePid(value: string): HidePid | undefined {
  switch (value) {
    case '0':
    case 'off':
      return 'off';
    case '1':
    case 'noaccess':
      return 'noaccess';
    case '2':
    case 'invisible':
    case '4':
    case 'ptraceable':
      return 'invisible';
    default:
      return undefined;
  }
}

export interface Caller {
  readonly uid: number;
  readonly gid: number;
  /** The calling thread's pid (0 when it is outside the mount's pid namespace). */
  readonly pid: number;
}

export function isPrivileged(caller: Caller): boolean {
  return caller.uid === 0;
}

/** Whether `caller` may read /proc/PID/ns/* of the process `info` describes (see the file comment). */
export function mayInspect(caller: Caller, info: ProcessInfo): boolean {
  if (isPrivileged(caller)) return true;
  if (caller.pid !== 0 && caller.pid === info.pid) return true;
  const u = info.uid;
  const g = info.gid;
  if (u === null || g === null) return false;
  const c = caller;
  if (u.real !== c.uid || u.effective !== c.uid || u.saved !== c.uid) return false;
  if (g.real !== c.gid || g.effective !== c.gid || g.saved !== c.gid) return false;
  // Not dumpable: /proc/PID belongs to root and only CAP_SYS_PTRACE gets in.
  return info.dumpOwner === undefined || info.dumpOwner === c.uid;
}

const nsKey = (type: NsType, inum: number): string => `${type}:${inum}`;

export interface AccessOptions {
  hidepid: HidePid;
  /** How long (ms) the namespaces a user may open are remembered. Default 250. */
  cacheMs?: number;
}

/**
 * The namespaces each non-root caller may open, found from the processes it may inspect
 * (/proc/PID owned by its uid, then their ids and ns links), remembered for a short while and
 * shared by racing requests, so a caller cannot make the service scan /proc per request.
 */
export class AccessPolicy {
  readonly hidepid: HidePid;
  private readonly cacheMs: number;
  private readonly flight = new SingleFlight<string, ReadonlySet<string>>();
  private readonly cache = new Map<string, { at: number; keys: ReadonlySet<string> }>();
  /** Scans of /proc done for callers (tests and stats). */
  scans = 0;

  constructor(
    private readonly source: ProcessSource,
    private readonly timers: Timers,
    options: AccessOptions,
  ) {
    this.hidepid = options.hidepid;
    this.cacheMs = options.cacheMs ?? 250;
  }

  /** Whether the caller may open process handles of `info` (hidepid noaccess/invisible). */
  mayOpenProcess(caller: Caller, info: ProcessInfo): boolean {
    return this.hidepid === 'off' || mayInspect(caller, info);
  }

  /** Whether the process handle is listed and resolves for the caller. */
  processVisible(caller: Caller, info: ProcessInfo): boolean {
    return this.hidepid !== 'invisible' || mayInspect(caller, info);
  }

  /** Whether the caller could readlink a /proc/PID/ns/<type> naming namespace (type, inum). */
  async mayOpenNamespace(caller: Caller, type: NsType, inum: number): Promise<boolean> {
    if (isPrivileged(caller)) return true;
    if ((await this.namespacesOf(caller)).has(nsKey(type, inum))) return true;
    // The caller's own process, even if not dumpable (a thread group may always read its own).
    return (await this.ownNamespaces(caller)).has(nsKey(type, inum));
  }

  /** `type:inum` of the calling process's own namespaces (one read of /proc). */
  async ownNamespaces(caller: Caller): Promise<ReadonlySet<string>> {
    if (caller.pid <= 0) return new Set();
    const info = await this.source.read(caller.pid).catch(() => null);
    if (info === null) return new Set();
    return new Set((Object.entries(info.namespaces) as Array<[NsType, number]>).map(([type, inum]) => nsKey(type, inum)));
  }

  /** Whether the namespace handle is listed and resolves for the caller. */
  async namespaceVisible(caller: Caller, type: NsType, inum: number): Promise<boolean> {
    return this.hidepid !== 'invisible' || this.mayOpenNamespace(caller, type, inum);
  }

  /** `type:inum` of every namespace of a process the caller's uid and gid may inspect. */
  namespacesOf(caller: Caller): Promise<ReadonlySet<string>> {
    const id = `${caller.uid}:${caller.gid}`;
    const hit = this.cache.get(id);
    const now = this.timers.now();
    if (hit !== undefined && now - hit.at < this.cacheMs) return Promise.resolve(hit.keys);
    return this.flight.run(id, async () => {
      const keys = await this.scan(caller);
      if (this.cache.size > 1024) this.cache.clear(); // one entry per user seen lately; never unbounded
      this.cache.set(id, { at: this.timers.now(), keys });
      return keys;
    });
  }

  private async scan(caller: Caller): Promise<ReadonlySet<string>> {
    this.scans++;
    const pids = this.source.listOwnedBy ? await this.source.listOwnedBy(caller.uid) : await this.source.list();
    const user: Caller = { uid: caller.uid, gid: caller.gid, pid: 0 };
    const keys = new Set<string>();
    for (const pid of pids) {
      const info = await this.source.read(pid).catch(() => null);
      if (info === null || !mayInspect(user, info)) continue;
      for (const [type, inum] of Object.entries(info.namespaces) as Array<[NsType, number]>) keys.add(nsKey(type, inum));
    }
    return keys;
  }
}
