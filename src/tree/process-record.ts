/**
 * What the tree records with a process handle's row (InodeRecord.state) for a successor of the
 * serving process: the fields last read while the process lived and, once it has ended, how. A
 * successor serves a handle the kernel still holds (a bind mount, an open file) from it when the
 * process is gone: dead, with what was last known, never ENOENT or ESTALE.
 *
 * The text is JSON; a record that does not parse or check is treated as absent (never trusted).
 */
import { NS_TYPES, type IdSet, type NsType, type ProcessEnding, type ProcessInfo } from '../sources/types.js';

/** A process handle's record, as stored. */
export interface ProcessRecord {
  readonly ppid: number;
  readonly comm: string;
  readonly uid: IdSet | null;
  readonly gid: IdSet | null;
  readonly cgroup: string | null;
  readonly startTime: number;
  readonly pidfsIno: number | null;
  /** Its one-letter state when last read. */
  readonly state: string;
  /** When handlefs first saw it (ms): the handle's times. */
  readonly seenMs: number;
  /** The Ns.* lines as last rendered while alive; absent if never rendered. */
  readonly ns?: Readonly<Record<NsType, string>>;
  /** Present once the process has ended: how (state 'unknown' where no pidfd saw it). */
  readonly ended?: ProcessEnding;
}

const VERSION = 1;

/** The record of a process as the tree knows it now. */
export function processRecord(info: ProcessInfo, seenMs: number, ns: Readonly<Record<string, string>> | null, ended: ProcessEnding | null): ProcessRecord {
  return {
    state: info.state,
    seenMs,
    ppid: info.ppid,
    comm: info.comm,
    uid: info.uid,
    gid: info.gid,
    cgroup: info.cgroup,
    startTime: info.startTime,
    pidfsIno: info.pidfsIno ?? null,
    ...(ns !== null && { ns: ns as Record<NsType, string> }),
    ...(ended !== null && { ended }),
  };
}

export function encodeProcessRecord(r: ProcessRecord): string {
  return JSON.stringify({ v: VERSION, ...r });
}

const isInt = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x);

function idSet(x: unknown): IdSet | null | undefined {
  if (x === null) return null;
  if (typeof x !== 'object') return undefined;
  const o = x as Record<string, unknown>;
  return isInt(o.real) && isInt(o.effective) && isInt(o.saved) && isInt(o.fs) ? { real: o.real, effective: o.effective, saved: o.saved, fs: o.fs } : undefined;
}

function ending(x: unknown): ProcessEnding | undefined {
  if (typeof x !== 'object' || x === null) return undefined;
  const o = x as Record<string, unknown>;
  if (o.state === 'exited' && isInt(o.code)) return { state: 'exited', code: o.code };
  if (o.state === 'killed' && isInt(o.signal)) return { state: 'killed', signal: o.signal };
  if (o.state === 'unknown') return { state: 'unknown' };
  return undefined;
}

/** The record in `text`, or undefined when there is none or it does not check. */
export function decodeProcessRecord(text: string | null | undefined): ProcessRecord | undefined {
  if (typeof text !== 'string') return undefined;
  let o: Record<string, unknown>;
  try {
    const v: unknown = JSON.parse(text);
    if (typeof v !== 'object' || v === null) return undefined;
    o = v as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (o.v !== VERSION) return undefined;
  const uid = idSet(o.uid);
  const gid = idSet(o.gid);
  if (!isInt(o.ppid) || typeof o.comm !== 'string' || uid === undefined || gid === undefined || !isInt(o.startTime)) return undefined;
  if (typeof o.state !== 'string' || o.state.length > 2 || typeof o.seenMs !== 'number' || !Number.isFinite(o.seenMs)) return undefined;
  if (o.cgroup !== null && typeof o.cgroup !== 'string') return undefined;
  if (o.pidfsIno !== null && !isInt(o.pidfsIno)) return undefined;
  let ns: Record<NsType, string> | undefined;
  if (o.ns !== undefined) {
    if (typeof o.ns !== 'object' || o.ns === null) return undefined;
    const n = o.ns as Record<string, unknown>;
    if (!NS_TYPES.every((t) => typeof n[t] === 'string')) return undefined;
    ns = Object.fromEntries(NS_TYPES.map((t) => [t, n[t] as string])) as Record<NsType, string>;
  }
  const ended = o.ended === undefined ? undefined : ending(o.ended);
  if (o.ended !== undefined && ended === undefined) return undefined;
  return {
    state: o.state,
    seenMs: o.seenMs,
    ppid: o.ppid,
    comm: o.comm,
    uid,
    gid,
    cgroup: o.cgroup as string | null,
    startTime: o.startTime,
    pidfsIno: o.pidfsIno as number | null,
    ...(ns !== undefined && { ns }),
    ...(ended !== undefined && { ended }),
  };
}

/**
 * The ProcessInfo a dead handle renders from its record (or, without one, from its pid alone:
 * fields it cannot know read as unreadable).
 */
export function infoOfRecord(pid: number, incarnation: number, bootId: string, r: ProcessRecord | undefined): ProcessInfo {
  return {
    pid,
    startTime: r?.startTime ?? 0,
    incarnation,
    bootId,
    ppid: r?.ppid ?? 0,
    state: r?.ended !== undefined || r === undefined ? 'X' : r.state,
    comm: r?.comm ?? '',
    uid: r?.uid ?? null,
    gid: r?.gid ?? null,
    cgroup: r?.cgroup ?? null,
    namespaces: {},
    unreadable: r === undefined ? ['uid', 'gid', 'cgroup', 'namespaces'] : [],
    pidfsIno: r?.pidfsIno ?? null,
  };
}
