/**
 * What keeps a mount busy, for `handlefs umount`'s answer: other mounts of the same filesystem
 * (bind mounts of a handle, which keep the service serving after the mountpoint is gone) and
 * processes with a file, working directory or root under it.
 */
import fs from 'node:fs';
import { withoutDeletedMark } from './mount.js';

export interface MountHolders {
  /** Mountpoints of bind mounts of this filesystem (the root they show, e.g. /pid/123). */
  bindMounts: Array<{ mountpoint: string; root: string }>;
  /** Processes holding something under the mountpoint. */
  processes: Array<{ pid: number; comm: string; path: string }>;
}

function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Mounts in /proc/self/mountinfo: device (major:minor), root within the filesystem, mountpoint. */
function mounts(): Array<{ dev: string; root: string; mountpoint: string }> {
  let text = '';
  try {
    text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const f = l.split(' ');
      return { dev: f[2] ?? '', root: unescape(f[3] ?? ''), mountpoint: unescape(f[4] ?? '') };
    });
}

/** Other mounts of the filesystem mounted at `mountpoint` (an absolute, resolved path). */
export function bindMountsOf(mountpoint: string): MountHolders['bindMounts'] {
  const all = mounts();
  const own = [...all].reverse().find((m) => m.mountpoint === mountpoint);
  if (own === undefined) return [];
  return all.filter((m) => m.dev === own.dev && m.mountpoint !== mountpoint).map((m) => ({ mountpoint: m.mountpoint, root: m.root }));
}

/**
 * Processes with an open file, cwd or root under `mountpoint` (at most `limit`), or at one of
 * `bindMounts` (the mountpoints of bind mounts of its files: a file opened through one).
 */
export function processesUnder(mountpoint: string, limit = 5, bindMounts: readonly string[] = []): MountHolders['processes'] {
  const prefix = `${mountpoint}/`;
  const at = new Set(bindMounts);
  const under = (target: string) => target === mountpoint || target.startsWith(prefix) || at.has(target);
  const found: MountHolders['processes'] = [];
  let pids: string[] = [];
  try {
    pids = fs.readdirSync('/proc').filter((n) => /^[1-9]\d*$/.test(n));
  } catch {
    return found;
  }
  for (const pid of pids) {
    if (Number(pid) === process.pid || found.length >= limit) continue;
    const links: string[] = [`/proc/${pid}/cwd`, `/proc/${pid}/root`];
    try {
      for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) links.push(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue; // gone, or not ours to see
    }
    for (const link of links) {
      let target: string;
      try {
        target = fs.readlinkSync(link);
      } catch {
        continue;
      }
      if (!under(target)) continue;
      let comm = '?';
      try {
        comm = fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      } catch {
        /* gone */
      }
      found.push({ pid: Number(pid), comm, path: target });
      break;
    }
  }
  return found;
}

/** One line naming what holds the mount, or undefined if nothing could be named. */
export function describeHolders(h: MountHolders): string | undefined {
  const parts = [
    ...h.bindMounts.map((b) => `bind mount ${b.mountpoint} (of ${withoutDeletedMark(b.root)})`),
    ...h.processes.map((p) => `pid ${p.pid} (${p.comm}) has ${p.path}`),
  ];
  return parts.length === 0 ? undefined : parts.join('; ');
}
