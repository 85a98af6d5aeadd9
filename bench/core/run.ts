/**
 * Core benchmark: in-process instantiate throughput, heap per live inode, and lookup cost at
 * 1 thousand vs 1 million live inodes. Run: npm run bench:core (node --expose-gc).
 * Not a test: it prints figures for docs/benchmarks.md.
 */
import os from 'node:os';
import { Allocator } from '../../src/core/allocator.js';
import type { Identity } from '../../src/core/inode.js';
import { InodeTable } from '../../src/core/inode-table.js';
import { MemoryStore } from '../../src/core/memory-store.js';
import type { InodeRecord, InodeStore, NumberRange } from '../../src/core/store.js';
import { silentLogger } from '../../src/log.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');

/** Grants ranges and keeps no rows: the daemon's rows live on disk, so this isolates the core's own heap. */
class RangeOnlyStore implements InodeStore {
  readonly generation = 1;
  highWater = 1024;
  readonly dirty = false;
  reserve(count: number): NumberRange {
    const start = this.highWater;
    this.highWater += count;
    return { start, end: this.highWater };
  }
  load(): Iterable<InodeRecord> { return []; }
  put(): void {}
  delete(): void {}
  whenDurable(): undefined { return undefined; }
  flush(): Promise<void> { return Promise.resolve(); }
  close(): void {}
}

const table = (store: InodeStore) => new InodeTable<number>({ store, allocator: new Allocator(store, 4096), scope: 'boot', logger: silentLogger() });
// Process-shaped identities: key = pid, incarnation = start time in clock ticks.
const identities = (n: number, from = 0): Identity[] =>
  Array.from({ length: n }, (_, i) => ({ kind: 'process', key: 100_000 + from + i, incarnation: 5_000_000 + (from + i) * 3 }));

function rate(ops: number, fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return ops / (Number(process.hrtime.bigint() - t0) / 1e9);
}

function existingRate(store: InodeStore): number {
  const t = table(store);
  const ids = identities(1000);
  for (const id of ids) t.lookup(id, id.incarnation);
  for (let w = 0; w < 3; w++) for (const id of ids) t.lookup(id, id.incarnation); // warm
  const rounds = 5000;
  return rate(rounds * ids.length, () => {
    for (let r = 0; r < rounds; r++) for (let i = 0; i < ids.length; i++) t.lookup(ids[i]!, 0);
  });
}

/** New objects per second while the table grows from empty to `size` live inodes. */
function newRate(store: InodeStore, size: number): number {
  const t = table(store);
  const ids = identities(size);
  return rate(ids.length, () => {
    for (let i = 0; i < ids.length; i++) t.lookup(ids[i]!, 0);
  });
}

/**
 * New objects per second in a steady state: the host keeps `live` processes, and each new one
 * replaces one that exits (its handle forgotten, its exit noticed) — a busy host's pattern.
 */
function churnRate(live: number, ops: number): number {
  const t = table(new MemoryStore());
  const ids = identities(live + ops);
  for (let i = 0; i < live; i++) t.lookup(ids[i]!, 0);
  return rate(ops, () => {
    for (let i = 0; i < ops; i++) {
      t.lookup(ids[live + i]!, 0);
      const old = ids[i]!;
      const d = t.findByKey(old.kind, old.key)!.dentry!;
      t.forget(d.ino, 1);
      t.objectGone(old);
    }
  });
}

function heapPerInode(withDentry: boolean): number {
  const n = 1_000_000;
  gc!();
  const before = process.memoryUsage().heapUsed;
  let ids: Identity[] | null = identities(n); // made after the baseline: the keys the inodes keep count
  const t = table(new RangeOnlyStore());
  for (let i = 0; i < n; i++) {
    const d = t.lookup(ids[i]!, i);
    if (!withDentry) t.forget(d.ino, 1);
  }
  ids = null;
  gc!();
  const after = process.memoryUsage().heapUsed;
  if (t.counters().inodes !== n) throw new Error('inodes went missing');
  return (after - before) / n;
}

type Pattern = 'recent' | 'listing' | 'uniform';

/**
 * ns per repeat lookup in a table of `size` live inodes. Each probe builds a fresh identity, as
 * a LOOKUP of pid/<pid> does. The patterns:
 * - recent: the 1000 most recently created objects, at random (a client watching a service's
 *   processes);
 * - listing: every object in pid order (ls -l of pid/);
 * - uniform: any object at random — at 1M nearly every probe misses the CPU caches and TLB.
 */
function lookupCost(size: number, pattern: Pattern): number {
  const t = table(new RangeOnlyStore());
  const ids = identities(size);
  for (const id of ids) t.lookup(id, 0);
  const probes = 2_000_000;
  const hot = Math.min(1000, size);
  const order = Uint32Array.from({ length: probes }, (_, i) =>
    pattern === 'recent' ? size - hot + Math.floor(Math.random() * hot) : pattern === 'listing' ? i % size : Math.floor(Math.random() * size),
  );
  const probe = (i: number) => {
    const k = order[i]!;
    t.lookup({ kind: 'process', key: 100_000 + k, incarnation: 5_000_000 + k * 3 }, 0);
  };
  for (let i = 0; i < 200_000; i++) probe(i); // warm
  let best = Infinity;
  for (let round = 0; round < 3; round++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < probes; i++) probe(i);
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / probes);
  }
  return best;
}

const fmt = (x: number) => Math.round(x).toLocaleString('en-US');
console.log(`machine: ${os.cpus()[0]?.model ?? '?'} x${os.cpus().length}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`);
const existing = existingRate(new MemoryStore());
console.log(`instantiate existing object: ${fmt(existing)} /s   (goal >= 5,000,000)`);
console.log(`instantiate new object, table growing to 100K (MemoryStore): ${fmt(newRate(new MemoryStore(), 100_000))} /s   (goal >= 1,000,000)`);
console.log(`instantiate new object, steady churn at 10K live (MemoryStore): ${fmt(churnRate(10_000, 1_000_000))} /s`);
console.log(`instantiate new object, table growing to 1M (MemoryStore): ${fmt(newRate(new MemoryStore(), 1_000_000))} /s`);
console.log(`heap per live inode at 1M, with dentry: ${heapPerInode(true).toFixed(1)} B   (goal <= 250)`);
console.log(`heap per live inode at 1M, dentry released: ${heapPerInode(false).toFixed(1)} B`);
for (const pattern of ['recent', 'listing', 'uniform'] as const) {
  const small = lookupCost(1000, pattern);
  const large = lookupCost(1_000_000, pattern);
  console.log(`repeat lookup, ${pattern}: ${small.toFixed(1)} ns at 1K live, ${large.toFixed(1)} ns at 1M live, ratio ${(large / small).toFixed(2)}   (goal <= 1.5)`);
}
