/**
 * What `handlefs ls` shows: one row per handle in the table, with what holds it. Gathered in the
 * service from the table and /proc/self/mountinfo, never through the mount (a stat of the mount
 * from the thread that answers it would wait on itself).
 */
import fs from 'node:fs';
import { withoutDeletedMark } from '../fuse/mount.js';
import type { HandleTree } from '../tree/handle-fs.js';

export interface HandleRow {
  ino: number;
  generation: number;
  /** 'process' or 'namespace'. */
  kind: string;
  /** The pid, or the nsfs inode number. */
  key: number;
  /** The command name of a process, the type of a namespace; null when not seen since a restart. */
  name: string | null;
  /** live: the object exists; dead: it is gone but something still references the handle; dormant: alive, the kernel holds no name of it. */
  state: 'live' | 'dead' | 'dormant';
  /** Lookups the kernel holds (cached names, bind mounts, cwds). */
  lookups: number;
  /** Open files and directories on the handle. */
  opens: number;
  /** Library pins (InodeTable.pin, handlefs/testing's pin). */
  pins: number;
  /** For a namespace: whether the service holds an nsfs descriptor (which keeps it alive). */
  held: boolean | null;
  /** Bind mounts of this handle, by mount point, as /proc/self/mountinfo of the service shows them. */
  mounts: string[];
}

function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/**
 * Bind mounts of files inside the handlefs mount at `mountpoint`: mountinfo lines on the same
 * device whose root is not the filesystem's root. Returns root path (e.g. "/ns/net/4026532177",
 * "/by-ino/1094") → mount points.
 */
export function parseHandleMounts(mountinfo: string, mountpoint: string): Map<string, string[]> {
  const lines = mountinfo
    .split('\n')
    .map((line) => {
      const sep = line.indexOf(' - ');
      if (sep < 0) return null;
      const a = line.slice(0, sep).split(' ');
      const b = line.slice(sep + 3).split(' ');
      // A bind mount whose name the service invalidated (an idle namespace handle, an exit)
      // shows its root as "<path>//deleted"; it is still a mount of that handle.
      const root = withoutDeletedMark(unescape(a[3] ?? ''));
      return { dev: a[2] ?? '', root, mountPoint: unescape(a[4] ?? ''), fstype: b[0] ?? '' };
    })
    .filter((l): l is NonNullable<typeof l> => l !== null);
  let dev: string | undefined;
  for (const l of lines) if (l.mountPoint === mountpoint && l.root === '/' && l.fstype.startsWith('fuse')) dev = l.dev; // the last (topmost) wins
  const out = new Map<string, string[]>();
  if (dev === undefined) return out;
  for (const l of lines) {
    if (l.dev !== dev || l.root === '/') continue;
    const list = out.get(l.root) ?? [];
    list.push(l.mountPoint);
    out.set(l.root, list);
  }
  return out;
}

/** One row per inode in the tree's table, by number. */
export function listHandles(tree: HandleTree, mounts: Map<string, string[]>): HandleRow[] {
  const table = tree.table;
  const rows: HandleRow[] = [];
  for (const inode of table.inodes()) {
    // Its kind's description, and the paths under which it can have been bind-mounted (a pid path may name a dead one too).
    const about = tree.describe(inode);
    const d = inode.dentry;
    const dead = table.isDead(inode);
    // A bind mount keeps lookups; a pid path bound before a reuse names the old handle, so only
    // handles the kernel holds are given the mounts of their paths.
    const held = d !== null && d.lookups > 0;
    rows.push({
      ino: inode.ino,
      generation: inode.generation,
      kind: inode.kind,
      key: inode.key,
      name: about.name,
      state: dead ? 'dead' : d === null ? 'dormant' : 'live',
      lookups: d?.lookups ?? 0,
      opens: d?.opens ?? 0,
      pins: d?.pins ?? 0,
      held: about.held,
      mounts: held ? about.paths.flatMap((p) => mounts.get(p) ?? []) : [],
    });
  }
  return rows.sort((a, b) => a.ino - b.ino);
}

/** listHandles with the service's own mountinfo. */
export function collectHandles(tree: HandleTree, mountpoint: string): HandleRow[] {
  let text = '';
  try {
    text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    /* no bind mounts can be told */
  }
  return listHandles(tree, parseHandleMounts(text, mountpoint));
}

/** Control characters (a comm may hold any byte but NUL) are shown escaped, one line per handle. */
function printable(s: string): string {
  return s.replace(/[\x00-\x20\x7f\\]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

const HEADER = ['INO', 'KIND', 'KEY', 'NAME', 'STATE', 'LOOKUPS', 'OPENS', 'PINS', 'HELD', 'MOUNTS'];
const RIGHT = new Set(['INO', 'KEY', 'LOOKUPS', 'OPENS', 'PINS']);

/** The text form of `handlefs ls`: a header and one aligned line per handle, as lsns prints. */
export function formatHandles(rows: readonly HandleRow[]): string {
  const cells = rows.map((r) => [
    String(r.ino),
    r.kind,
    String(r.key),
    r.name === null ? '-' : printable(r.name),
    r.state,
    String(r.lookups),
    String(r.opens),
    String(r.pins),
    r.held === null ? '-' : r.held ? 'yes' : 'no',
    r.mounts.length === 0 ? '-' : r.mounts.map(printable).join(','),
  ]);
  const widths = HEADER.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) =>
    c
      .map((v, i) => (i === c.length - 1 ? v : RIGHT.has(HEADER[i]!) ? v.padStart(widths[i]!) : v.padEnd(widths[i]!)))
      .join(' ')
      .trimEnd();
  return [line(HEADER), ...cells.map(line)].join('\n');
}
