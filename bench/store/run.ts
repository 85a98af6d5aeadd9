/**
 * Store benchmark: durable first allocations through the real core (InodeTable + Allocator on a
 * SqliteStore) with many concurrent callers, repeat lookups, and restoring 1 million mappings at
 * open. Run: node --expose-gc --import tsx bench/store/run.ts [--quick] [--contention]
 * State files go to $HANDLEFS_BENCH_DIR (default: the OS temp dir, i.e. the disk it is on).
 * Not a test: it prints figures for docs/benchmarks.md (Store).
 */
import * as fs from 'node:fs';
import os from 'node:os';
import * as path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { execFileSync, spawn } from 'node:child_process';
import { Allocator } from '../../src/core/allocator.js';
import type { Identity } from '../../src/core/inode.js';
import { InodeTable } from '../../src/core/inode-table.js';
import { MemoryStore } from '../../src/core/memory-store.js';
import type { InodeRecord, InodeStore } from '../../src/core/store.js';
import { silentLogger } from '../../src/log.js';
import { openSqliteStore, type SqliteStore } from '../../src/store/index.js';

const quick = process.argv.includes('--quick');
/** --contention: a second process writes and fsyncs 1 MiB blocks on the same disk throughout. */
const contention = process.argv.includes('--contention');
const baseDir = fs.mkdtempSync(path.join(process.env.HANDLEFS_BENCH_DIR ?? os.tmpdir(), 'handlefs-bench-store-'));
const SCOPE = 'b3f1c2d4-5e6f-4a1b-9c8d-7e6f5a4b3c2d';
const logger = silentLogger();

function stateFile(name: string): string {
  return path.join(baseDir, name, 'state.db');
}

function openStore(file: string): SqliteStore {
  return openSqliteStore({ path: file, logger });
}

const table = (store: InodeStore) => new InodeTable<number>({ store, allocator: new Allocator(store), scope: SCOPE, logger });
let nextPid = 100_000;
const identity = (): Identity => {
  const pid = nextPid++;
  return { kind: 'process', key: pid, incarnation: 5_000_000 + pid * 3 };
};

const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

/**
 * `callers` concurrent requests, each a first lookup of a new object followed by the write-ahead
 * wait (table.durable()) before its "reply", as the FUSE layer does. Runs for `ms`.
 */
async function firstAllocations(callers: number, ms: number, commitThread: boolean) {
  const file = stateFile(`alloc-${callers}-${commitThread}`);
  const store = openSqliteStore({ path: file, logger, commitThread });
  const t = table(store);
  // Start the commit thread before timing: run from source, it loads tsx first (hundreds of ms),
  // which the built package's thread does not.
  const warm = identity();
  t.lookup(warm, warm.incarnation);
  await t.durable();
  const delay = monitorEventLoopDelay({ resolution: 1 });
  let replies = 0;
  let running = true;
  const t0 = performance.now();
  delay.enable();
  const caller = async () => {
    while (running) {
      const id = identity();
      t.lookup(id, id.incarnation);
      await t.durable(); // the reply that reveals the number waits for this
      replies++;
    }
  };
  const timer = setTimeout(() => (running = false), ms);
  await Promise.all(Array.from({ length: callers }, caller));
  clearTimeout(timer);
  delay.disable();
  const seconds = (performance.now() - t0) / 1000;
  const stats = store.stats;
  store.close();
  fs.rmSync(path.dirname(file), { recursive: true, force: true });
  return {
    callers,
    perSecond: replies / seconds,
    commitsPerSecond: stats.commits / seconds,
    rowsPerCommit: stats.rowsWritten / Math.max(1, stats.commits),
    reserves: stats.reserves,
    loopDelayP50: delay.percentile(50) / 1e6,
    loopDelayP99: delay.percentile(99) / 1e6,
  };
}

/** Latency of reserve(): meta commit (WAL fsync) + FILE.hwm (fsync, rename, fsync dir). */
function reserveLatency(n: number) {
  const file = stateFile('reserve');
  const store = openSqliteStore({ path: file, logger, minChunk: 1024, maxChunk: 1024 });
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    store.reserve(1);
    ms.push(performance.now() - t0);
  }
  store.close();
  fs.rmSync(path.dirname(file), { recursive: true, force: true });
  ms.sort((a, b) => a - b);
  return { n, p50: ms[Math.floor(n / 2)]!, p99: ms[Math.floor(n * 0.99)]!, mean: ms.reduce((a, b) => a + b, 0) / n };
}

/** Repeat lookups of 10K existing objects: must not touch the store at all. */
async function repeatLookups(store: InodeStore, label: string, sqlite?: SqliteStore) {
  const t = table(store);
  const ids = Array.from({ length: 10_000 }, identity);
  for (const id of ids) t.lookup(id, id.incarnation);
  await t.durable();
  const before = sqlite?.stats;
  const rounds = quick ? 200 : 1000;
  let waits = 0;
  const t0 = process.hrtime.bigint();
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      t.lookup(id, id.incarnation);
      if (t.durable() !== undefined) waits++;
    }
  }
  const ns = Number(process.hrtime.bigint() - t0) / (rounds * ids.length);
  const after = sqlite?.stats;
  return { label, nsPerLookup: ns, waits, commits: before && after ? after.commits - before.commits : 0, reserves: before && after ? after.reserves - before.reserves : 0 };
}

/** Builds a state with `n` rows, then times open (checks + verified read) and load() into a Map. */
async function restore(n: number, runs: number) {
  const file = stateFile('restore');
  {
    const store = openStore(file);
    const { start } = store.reserve(n);
    const batch = 100_000;
    for (let i = 0; i < n; i += batch) {
      for (let j = i; j < Math.min(n, i + batch); j++) {
        const pid = 100_000 + j;
        store.put({ ino: start + j, generation: store.generation, kind: j % 5 ? 'process' : 'namespace', key: pid, incarnation: 5_000_000 + pid * 3, scope: SCOPE });
      }
      await store.flush();
    }
    store.close();
  }
  const size = fs.statSync(file).size;
  const results: { open: number; load: number; core: number; total: number }[] = [];
  for (let r = 0; r < runs; r++) {
    (globalThis as { gc?: () => void }).gc?.();
    const t0 = performance.now();
    const store = openStore(file);
    const t1 = performance.now();
    const map = new Map<number, InodeRecord>();
    for (const rec of store.load()) map.set(rec.ino, rec);
    const t2 = performance.now();
    if (map.size !== n) throw new Error(`loaded ${map.size} of ${n}`);
    store.close();
    // The real path: the core's table restores from load().
    (globalThis as { gc?: () => void }).gc?.();
    const c0 = performance.now();
    const s2 = openStore(file);
    const t = table(s2);
    const { kept } = t.restore(s2.load());
    const c1 = performance.now();
    if (kept !== n) throw new Error(`restored ${kept} of ${n}`);
    s2.close();
    results.push({ open: t1 - t0, load: t2 - t1, core: c1 - c0, total: t2 - t0 });
  }
  fs.rmSync(path.dirname(file), { recursive: true, force: true });
  return { n, sizeMB: size / 1e6, results };
}

function machine(): string {
  const cpus = os.cpus();
  let fsType = '?';
  try {
    fsType = execFileSync('stat', ['-f', '-c', '%T', baseDir], { encoding: 'utf8' }).trim();
  } catch {
    // not Linux coreutils
  }
  return `${cpus.length} cores (${cpus[0]?.model ?? '?'}), ${fmt(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${os.type()} ${os.release()}, state on ${fsType} (${baseDir})`;
}

/** A disk hog: another process appending 1 MiB blocks with an fsync after each. */
function startDiskHog(): { stop(): void } {
  const file = path.join(baseDir, 'hog');
  const child = spawn(
    process.execPath,
    ['-e', `const fs=require('fs');const fd=fs.openSync(${JSON.stringify(file)},'w');const b=Buffer.alloc(1<<20,1);let n=0;for(;;){fs.writeSync(fd,b);fs.fsyncSync(fd);if(++n%64===0)fs.ftruncateSync(fd,0);}`],
    { stdio: 'ignore' },
  );
  return { stop: () => child.kill('SIGKILL') };
}

async function main() {
  console.log(`# store benchmark${quick ? ' (--quick)' : ''}${contention ? ' (--contention: another process writes and fsyncs 1 MiB blocks on the same disk)' : ''}\n${machine()}\n`);
  const hog = contention ? startDiskHog() : undefined;

  console.log('## durable first allocations (lookup of a new object + write-ahead wait), through InodeTable');
  console.log('| commits on | concurrent callers | new objects/s | commits/s | rows/commit | reserves | event-loop delay p50 / p99 (ms) |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const commitThread of [true, false]) {
    for (const callers of quick || contention ? [1, 256] : [1, 16, 64, 256, 1024]) {
      const r = await firstAllocations(callers, quick ? 1500 : 3000, commitThread);
      console.log(
        `| ${commitThread ? 'commit thread' : 'main thread'} | ${callers} | ${fmt(r.perSecond)} | ${fmt(r.commitsPerSecond)} | ${fmt(r.rowsPerCommit, 1)} | ${r.reserves} | ${fmt(r.loopDelayP50, 2)} / ${fmt(r.loopDelayP99, 2)} |`,
      );
    }
  }

  const rl = reserveLatency(quick ? 50 : 300);
  hog?.stop();
  if (contention) {
    console.log(`\nreserve() latency over ${rl.n} calls: mean ${fmt(rl.mean, 2)} ms, p50 ${fmt(rl.p50, 2)} ms, p99 ${fmt(rl.p99, 2)} ms`);
    return;
  }
  console.log(`\nreserve() latency over ${rl.n} calls: mean ${fmt(rl.mean, 2)} ms, p50 ${fmt(rl.p50, 2)} ms, p99 ${fmt(rl.p99, 2)} ms`);

  console.log('\n## repeat lookups (10K existing objects, no await needed)');
  console.log('| store | ns/lookup | write-ahead waits | commits | reserves |');
  console.log('| --- | ---: | ---: | ---: | ---: |');
  const mem = await repeatLookups(new MemoryStore(), 'MemoryStore');
  console.log(`| ${mem.label} | ${fmt(mem.nsPerLookup, 1)} | ${mem.waits} | – | – |`);
  const file = stateFile('repeat');
  const sq = openStore(file);
  const r2 = await repeatLookups(sq, 'SqliteStore', sq);
  sq.close();
  console.log(`| ${r2.label} | ${fmt(r2.nsPerLookup, 1)} | ${r2.waits} | ${r2.commits} | ${r2.reserves} |`);

  const n = quick ? 200_000 : 1_000_000;
  console.log(`\n## restore ${fmt(n)} mappings at open`);
  const r3 = await restore(n, 3);
  console.log(`state file ${fmt(r3.sizeMB, 1)} MB`);
  console.log('| run | open (lock, quick_check, verified read) ms | load() into a Map ms | open + load ms | open + InodeTable.restore ms |');
  console.log('| ---: | ---: | ---: | ---: | ---: |');
  r3.results.forEach((r, i) => console.log(`| ${i + 1} | ${fmt(r.open)} | ${fmt(r.load)} | ${fmt(r.total)} | ${fmt(r.core)} |`));
}

try {
  await main();
} finally {
  fs.rmSync(baseDir, { recursive: true, force: true });
}
