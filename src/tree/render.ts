/**
 * The text a handle reads: one `Key:\tvalue\n` line per field, like /proc/PID/status. Pure
 * functions over values the handle modules have already resolved; docs/tree.md documents every key.
 */
import type { IdSet, NsType, ProcessEnding, ProcessInfo } from '../sources/types.js';
import { NS_TYPES } from '../sources/types.js';
import type { Generation, Ino, Key } from '../core/numbers.js';

/** What a field says when the source could not read it. */
export const UNREADABLE = 'unreadable';
/** What a reference field says when there is nothing to refer to. */
export const NONE = 'none';
/** A field the caller may not see (another user's namespaces: /proc/PID/ns needs ptrace access). */
export const HIDDEN = 'hidden';

/** Words /proc/PID/status gives the one-letter states (fs/proc/array.c). */
const STATE_WORDS: Readonly<Record<string, string>> = {
  R: 'running',
  S: 'sleeping',
  D: 'disk sleep',
  T: 'stopped',
  t: 'tracing stop',
  X: 'dead',
  x: 'dead',
  Z: 'zombie',
  P: 'parked',
  I: 'idle',
  W: 'waking',
  K: 'wakekill',
};

export function stateText(state: string): string {
  const word = STATE_WORDS[state];
  return word === undefined ? escapeValue(state) : `${state} (${word})`;
}

/**
 * Values are one line: backslash, newline, tab and other control characters are escaped
 * (`\\`, `\n`, `\t`, `\xHH`), as /proc escapes a command name.
 */
export function escapeValue(s: string): string {
  if (!/[\\\x00-\x1f\x7f]/.test(s)) return s;
  let out = '';
  for (const ch of s) {
    const c = ch.charCodeAt(0);
    if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return out;
}

function ids(set: IdSet | null): string {
  return set === null ? UNREADABLE : `${set.real}\t${set.effective}\t${set.saved}\t${set.fs}`;
}

export interface ProcessView {
  /** The process as last read (for a dead one: as last seen alive). */
  readonly info: ProcessInfo;
  /** The process has exited (or its pid names another process now). */
  readonly dead: boolean;
  /** Per namespace type: the handle inode, NONE or UNREADABLE. */
  readonly ns: Readonly<Record<NsType, string>>;
  readonly ino: Ino;
  readonly generation: Generation;
  readonly handle: string;
  /** How it ended (dead handles only): ExitCode/ExitSignal, or ExitCode unknown. */
  readonly ending?: ProcessEnding | null;
}

/** The line saying how a process ended: the kernel's word, never a guess. */
export function endingLine(e: ProcessEnding | null | undefined): [string, string] {
  if (e?.state === 'exited') return ['ExitCode', String(e.code)];
  if (e?.state === 'killed') return ['ExitSignal', String(e.signal)];
  return ['ExitCode', 'unknown'];
}

export function renderProcess(v: ProcessView): string {
  const i = v.info;
  const lines: Array<[string, string]> = [
    ['Pid', v.dead ? '-1' : String(i.pid)],
    ['PPid', String(i.ppid)],
    ['Uid', ids(i.uid)],
    ['Gid', ids(i.gid)],
    ['Comm', escapeValue(i.comm)],
    ['State', v.dead ? 'dead' : stateText(i.state)],
    ...(v.dead ? [endingLine(v.ending)] : []),
    ['StartTime', String(i.startTime)],
    ['PidfsIno', i.pidfsIno === undefined || i.pidfsIno === null ? UNREADABLE : String(i.pidfsIno)],
    ['Cgroup', i.cgroup === null ? UNREADABLE : escapeValue(i.cgroup)],
  ];
  for (const type of NS_TYPES) lines.push([`Ns.${type}`, v.ns[type]]);
  lines.push(['Ino', String(v.ino)], ['Generation', String(v.generation)], ['Handle', v.handle]);
  return format(lines);
}

export interface NamespaceView {
  readonly type: NsType;
  /** nsfs inode number. */
  readonly inum: Key;
  /** The kernel's 64-bit namespace id, or null if unknown. */
  readonly kernelId: string | null;
  readonly ino: Ino;
  readonly generation: Generation;
  /** Handle inode of the owning user namespace, NONE or UNREADABLE. */
  readonly owner: string;
  /** For pid and user namespaces: handle inode of the parent, NONE or UNREADABLE. */
  readonly parent?: string;
  /** Library-level pins (InodeTable.pin) on the handle. */
  readonly pins: number;
  /** True while handlefs holds a descriptor that keeps the namespace alive. */
  readonly held: boolean;
  readonly handle: string;
}

export function renderNamespace(v: NamespaceView): string {
  const lines: Array<[string, string]> = [
    ['Type', v.type],
    ['NsId', String(v.inum)],
    ['KernelId', v.kernelId ?? UNREADABLE],
    ['Ino', String(v.ino)],
    ['Generation', String(v.generation)],
    ['Owner', v.owner],
  ];
  if (v.parent !== undefined) lines.push(['Parent', v.parent]);
  lines.push(['Pinned', `${v.pins > 0 ? 'yes' : 'no'}\t${v.pins}`], ['Held', v.held ? 'yes' : 'no'], ['Handle', v.handle]);
  return format(lines);
}

function format(lines: ReadonlyArray<[string, string]>): string {
  let s = '';
  for (const [k, val] of lines) s += `${k}:\t${val}\n`;
  return s;
}

/** The fleet-unique name of a handle: machine id, boot id and handlefs inode number. */
export function handleName(machineId: string, bootId: string, ino: Ino): string {
  return `${machineId}:${bootId}:${ino}`;
}
