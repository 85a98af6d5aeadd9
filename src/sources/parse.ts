/**
 * Pure parsers for the /proc text formats handlefs reads. No I/O here.
 */
import { isNsType, type IdSet, type NsType } from './types.js';

export interface StatFields {
  pid: number;
  comm: string;
  /** Field 3. */
  state: string;
  /** Field 4. */
  ppid: number;
  /** Field 22, clock ticks since boot. */
  startTime: number;
}

function toInt(s: string | undefined): number | null {
  if (s === undefined || !/^-?\d+$/.test(s)) return null;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : null;
}

/**
 * Parses /proc/PID/stat: "PID (COMM) STATE PPID ... STARTTIME ...".
 * COMM may contain spaces, '(' and ')' (even newlines), so it runs from the first '(' to the
 * LAST ')'. Returns null if the text is malformed or too short to hold field 22.
 */
export function parseStat(text: string): StatFields | null {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return null;
  const pid = toInt(text.slice(0, open).trim());
  if (pid === null) return null;
  const comm = text.slice(open + 1, close);
  // fields[0] is field 3 (state); field N is fields[N - 3].
  const fields = text.slice(close + 1).trim().split(/\s+/);
  const state = fields[0];
  const ppid = toInt(fields[1]);
  const startTime = toInt(fields[22 - 3]);
  if (state === undefined || state.length === 0 || ppid === null || startTime === null) return null;
  return { pid, comm, state, ppid, startTime };
}

export interface StatusFields {
  tgid: number | null;
  uid: IdSet | null;
  gid: IdSet | null;
}

function parseIdLine(value: string): IdSet | null {
  const parts = value.trim().split(/\s+/).map((p) => toInt(p));
  if (parts.length < 4 || parts.slice(0, 4).some((p) => p === null || p < 0)) return null;
  const [real, effective, saved, fs] = parts as number[];
  return { real: real!, effective: effective!, saved: saved!, fs: fs! };
}

/** Parses the Tgid:, Uid: and Gid: lines of /proc/PID/status; missing or malformed lines give null. */
export function parseStatus(text: string): StatusFields {
  const out: StatusFields = { tgid: null, uid: null, gid: null };
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const key = line.slice(0, colon);
    const value = line.slice(colon + 1);
    if (key === 'Tgid') out.tgid = toInt(value.trim());
    else if (key === 'Uid') out.uid = parseIdLine(value);
    else if (key === 'Gid') out.gid = parseIdLine(value);
  }
  return out;
}

export interface CgroupEntry {
  /** 0 for the cgroup v2 (unified) hierarchy. */
  hierarchyId: number;
  /** Controllers of a v1 hierarchy ("cpu", "name=systemd", ...); empty for v2. */
  controllers: string[];
  path: string;
}

/**
 * Parses /proc/PID/cgroup: "hierarchy-ID:controller-list:path" per line, e.g. "0::/user.slice"
 * (v2) or "4:memory:/docker/abc" (v1). The path may itself contain ':'. Malformed lines are skipped.
 */
export function parseCgroup(text: string): CgroupEntry[] {
  const out: CgroupEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.length === 0) continue;
    const a = line.indexOf(':');
    const b = a < 0 ? -1 : line.indexOf(':', a + 1);
    if (b < 0) continue;
    const hierarchyId = toInt(line.slice(0, a));
    if (hierarchyId === null) continue;
    const list = line.slice(a + 1, b);
    out.push({
      hierarchyId,
      controllers: list.length === 0 ? [] : list.split(','),
      path: line.slice(b + 1),
    });
  }
  return out;
}

/** The path that names a process's cgroup: v2 if present, else v1 name=systemd, else the first v1 line. */
export function primaryCgroupPath(entries: readonly CgroupEntry[]): string | null {
  const v2 = entries.find((e) => e.hierarchyId === 0 && e.controllers.length === 0);
  if (v2) return v2.path;
  const systemd = entries.find((e) => e.controllers.includes('name=systemd'));
  if (systemd) return systemd.path;
  return entries[0]?.path ?? null;
}

/** Parses the target of a /proc/PID/ns/* link, "net:[4026531840]". Null if not of that shape. */
export function parseNsLink(target: string): { type: NsType; inum: number } | null {
  const m = /^([a-z_]+):\[(\d+)\]$/.exec(target.trim());
  if (!m) return null;
  const type = m[1]!;
  const inum = toInt(m[2]);
  if (!isNsType(type) || inum === null) return null;
  return { type, inum };
}

/** Link names under /proc/PID/ns and the namespace type each one names. */
export const NS_LINKS: ReadonlyArray<{ link: string; type: NsType; forChildren: boolean }> = [
  { link: 'cgroup', type: 'cgroup', forChildren: false },
  { link: 'ipc', type: 'ipc', forChildren: false },
  { link: 'mnt', type: 'mnt', forChildren: false },
  { link: 'net', type: 'net', forChildren: false },
  { link: 'pid', type: 'pid', forChildren: false },
  { link: 'pid_for_children', type: 'pid', forChildren: true },
  { link: 'time', type: 'time', forChildren: false },
  { link: 'time_for_children', type: 'time', forChildren: true },
  { link: 'user', type: 'user', forChildren: false },
  { link: 'uts', type: 'uts', forChildren: false },
];

/** CLONE_NEW* values returned by NS_GET_NSTYPE. */
export const CLONE_FLAG_TO_NS_TYPE: ReadonlyMap<number, NsType> = new Map<number, NsType>([
  [0x02000000, 'cgroup'],
  [0x08000000, 'ipc'],
  [0x00020000, 'mnt'],
  [0x40000000, 'net'],
  [0x20000000, 'pid'],
  [0x00000080, 'time'],
  [0x10000000, 'user'],
  [0x04000000, 'uts'],
]);

/** Decodes the octal escapes (\040 space, \011 tab, \012 newline, \134 backslash) of mountinfo. */
function unescapeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export interface NsfsMount {
  type: NsType;
  inum: number;
  mountPoint: string;
}

/**
 * Finds nsfs bind mounts (as made by `ip netns add`) in /proc/PID/mountinfo. Their root field
 * names the namespace ("net:[4026532177]"); the filesystem type after " - " is "nsfs".
 */
export function parseMountinfoNsfs(text: string): NsfsMount[] {
  const out: NsfsMount[] = [];
  for (const line of text.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const after = line.slice(sep + 3).split(' ');
    if (after[0] !== 'nsfs') continue;
    const before = line.slice(0, sep).split(' ');
    // 0 mount id, 1 parent id, 2 major:minor, 3 root, 4 mount point, ...
    const root = before[3];
    const mountPoint = before[4];
    if (root === undefined || mountPoint === undefined) continue;
    const ns = parseNsLink(unescapeMountField(root));
    if (!ns) continue;
    out.push({ ...ns, mountPoint: unescapeMountField(mountPoint) });
  }
  return out;
}

/** A 32-hex-digit machine id (the format of /etc/machine-id), lowercased; null otherwise. */
export function parseMachineId(text: string): string | null {
  const s = text.trim().toLowerCase();
  return /^[0-9a-f]{32}$/.test(s) && !/^0+$/.test(s) ? s : null;
}

/** A boot id: the UUID in /proc/sys/kernel/random/boot_id, lowercased; null otherwise. */
export function parseBootId(text: string): string | null {
  const s = text.trim().toLowerCase();
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(s) ? s : null;
}

/**
 * Classifies an error from reading /proc: 'gone' when the process (or file) no longer exists
 * (ENOENT, ESRCH; also ENOTDIR for a pid vanishing mid-path), 'denied' for
 * EACCES/EPERM, 'other' for anything else.
 */
export function classifyProcError(err: unknown): 'gone' | 'denied' | 'other' {
  const code =
    typeof err === 'object' && err !== null && 'code' in err ? (err as { code: unknown }).code : undefined;
  switch (code) {
    case 'ENOENT':
    case 'ESRCH':
    case 'ENOTDIR':
      return 'gone';
    case 'EACCES':
    case 'EPERM':
      return 'denied';
    default:
      return 'other';
  }
}
