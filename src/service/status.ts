/** What `handlefs status` reports, gathered from the table, the store and the session. */
import fs from 'node:fs';
import type { InodeTable, TableCounters } from '../core/inode-table.js';
import type { InodeStore } from '../core/store.js';
import type { FuseSession, SessionStats } from '../fuse/session.js';
import type { KeeperInfo } from '../keeper/keeper.js';
import type { HeldNamespace } from '../tree/handle-fs.js';

export interface KindCounts {
  /** Handles whose object is alive. */
  live: number;
  /** Handles held by a pin, an open descriptor or a bind mount (of this mount namespace). */
  pinned: number;
  /** Handles of dead objects still referenced (open descriptors, bind mounts). */
  dead: number;
  /** Handles the kernel holds right now (a dentry with lookups). */
  instantiated: number;
}

export interface ServiceStatus {
  version: string;
  pid: number;
  mountpoint: string;
  uptimeSeconds: number;
  protocol: string | null;
  /** How /dev/fuse is read: 'native' (the helper), 'uv-pipe' or 'threadpool' (fallbacks). */
  reader: string | null;
  kinds: Record<string, KindCounts>;
  counters: TableCounters;
  requests: SessionStats | null;
  store: { path: string; bytes: number; generation: number; highWater: number };
  /** The keeper that holds the mount and restarts this process (null: none, e.g. the kit). */
  keeperPid: number | null;
  /** Serving processes started after the first: crashes and restarts. */
  restarts: number;
  /** Why the last one was started ('crash: …', 'restart') and when; null if never. */
  lastRestart: { reason: string; at: string } | null;
  /** The log file of a `mount --daemon` service; null when it logs to a terminal or journal. */
  logPath: string | null;
  /** The store's running totals (commits, range reservations, rows), when the store counts them. */
  storeStats?: StoreStats;
  /** Namespaces the service holds open (keeps alive), and why. */
  held?: HeldNamespaceStatus[];
}

export interface StoreStats {
  reserves: number;
  commits: number;
  failedCommits: number;
  rowsWritten: number;
  rowsDeleted: number;
}

export interface HeldNamespaceStatus {
  ino: number;
  type: string;
  inum: number;
  nsId: string | null;
  /** What keeps the handle (and so the hold): bind mounts, open descriptors, pins, kernel lookups, the grace period. */
  reasons: string[];
}

export interface StatusSources {
  version: string;
  mountpoint: string;
  statePath: string;
  startedAt: number;
  table: InodeTable<unknown>;
  store: InodeStore;
  session?: FuseSession;
  keeper?: KeeperInfo;
  /** Namespaces the tree holds. */
  held?: () => HeldNamespace[];
  /** Bind mounts of handle files: mount points by handle number. */
  bindMounts?: () => Map<number, string[]>;
}

/** Bytes of the database with its WAL and shared-memory files. */
function storeBytes(statePath: string): number {
  let total = 0;
  for (const suffix of ['', '-wal', '-shm']) {
    try {
      total += fs.statSync(statePath + suffix).size;
    } catch {
      /* not there */
    }
  }
  return total;
}

function storeStatsOf(store: InodeStore): { storeStats?: StoreStats } {
  const stats = (store as { stats?: unknown }).stats;
  return typeof stats === 'object' && stats !== null ? { storeStats: { ...(stats as StoreStats) } } : {};
}

export function collectStatus(s: StatusSources): ServiceStatus {
  const kinds: Record<string, KindCounts> = {};
  const bound = s.bindMounts?.() ?? new Map<number, string[]>();
  for (const inode of s.table.inodes()) {
    const k = (kinds[inode.kind] ??= { live: 0, pinned: 0, dead: 0, instantiated: 0 });
    if (s.table.isDead(inode)) k.dead++;
    else k.live++;
    const d = inode.dentry;
    if (d !== null) {
      if (d.lookups > 0) k.instantiated++;
      if (d.pins > 0 || d.opens > 0 || bound.has(inode.ino)) k.pinned++;
    }
  }
  const conn = s.session?.connection;
  return {
    version: s.version,
    pid: process.pid,
    mountpoint: s.mountpoint,
    uptimeSeconds: Math.round((Date.now() - s.startedAt) / 1000),
    protocol: conn ? `${conn.major}.${conn.minor}` : null,
    reader: s.session?.readMechanism ?? null,
    kinds,
    counters: s.table.counters(),
    requests: s.session ? { ...s.session.stats } : null,
    store: { path: s.statePath, bytes: storeBytes(s.statePath), generation: s.store.generation, highWater: s.store.highWater },
    keeperPid: s.keeper?.pid ?? null,
    restarts: s.keeper?.restarts ?? 0,
    lastRestart: s.keeper?.lastRestart ?? null,
    logPath: s.keeper?.logPath ?? null,
    ...storeStatsOf(s.store),
    held: (s.held?.() ?? []).map((h) => ({ ino: h.ino, type: h.type, inum: h.inum, nsId: h.nsId, reasons: heldReasons(h, bound.get(h.ino) ?? []) })),
  };
}

/** Why a held namespace is held, most durable reason first. */
function heldReasons(h: HeldNamespace, mounts: readonly string[]): string[] {
  const out = mounts.map((m) => `bind mount ${m}`);
  if (h.opens > 0) out.push(`open descriptor${h.opens > 1 ? `s (${h.opens})` : ''}`);
  if (h.pins > 0) out.push(`library pin${h.pins > 1 ? `s (${h.pins})` : ''}`);
  if (h.lookups > 0 && mounts.length === 0) out.push('kernel lookup (a cached name, or a bind mount in another mount namespace)');
  if (out.length === 0) out.push('grace period after last use');
  return out;
}

const n = (x: number) => x.toLocaleString('en-US');

function duration(seconds: number): string {
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const parts = [d && `${d}d`, (d || h) && `${h}h`, `${m}m`, `${seconds % 60}s`].filter(Boolean);
  return parts.join(' ');
}

/** The human-readable form of `handlefs status`. */
export function formatStatus(s: ServiceStatus): string {
  const lines = [
    `handlefs ${s.version} serving ${s.mountpoint} (pid ${s.pid}, FUSE ${s.protocol ?? '?'}, ${s.reader ?? '?'} reader), up ${duration(s.uptimeSeconds)}`,
    '',
    'handles       live  pinned  dead  in kernel',
  ];
  const kinds = Object.keys(s.kinds).sort();
  if (kinds.length === 0) lines.push('  (none yet)');
  for (const kind of kinds) {
    const k = s.kinds[kind]!;
    lines.push(`  ${kind.padEnd(10)} ${String(k.live).padStart(5)} ${String(k.pinned).padStart(7)} ${String(k.dead).padStart(5)} ${String(k.instantiated).padStart(10)}`);
  }
  const c = s.counters;
  lines.push(
    '',
    `numbers       high-water ${n(s.store.highWater)}, last allocated ${n(c.lastAllocated)}, allocations ${n(c.allocations)}`,
    `counts        lookups ${n(c.lookups)}, forgets ${n(c.forgets)}, underflows ${n(c.underflows)}`,
  );
  if (s.requests) lines.push(`requests      ${n(s.requests.requests)} served, ${n(s.requests.failedReplies)} replies undelivered, ${n(s.requests.malformed)} malformed`);
  lines.push(`store         ${s.store.path} (${n(s.store.bytes)} bytes, generation ${s.store.generation})`);
  const last = s.lastRestart ? `, last ${s.lastRestart.at} (${s.lastRestart.reason})` : '';
  lines.push(`keeper        ${s.keeperPid === null ? 'none' : `pid ${s.keeperPid}`}, server pid ${s.pid}, restarts ${n(s.restarts)}${last}`);
  lines.push(`log           ${s.logPath ?? 'stderr (foreground)'}`);
  const held = s.held ?? [];
  lines.push('', `held namespaces (${held.length})`);
  for (const h of held) lines.push(`  ${h.type.padEnd(6)} ${String(h.inum).padEnd(10)} handle ${h.ino}: ${h.reasons.join('; ')}`);
  return lines.join('\n');
}
