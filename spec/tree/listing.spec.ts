import test from 'ava';
import fc from 'fast-check';
import { direntSize, BY_INO_DIR, PID_DIR } from '../../src/tree/layout.js';
import { makeTree, rc } from './harness.js';

test('pid/ lists live processes in pid order with cookies pid + 2', async (t) => {
  const h = makeTree();
  const ps = Array.from({ length: 10 }, () => h.host.start());
  const all = await h.readdir(PID_DIR, { size: 200 });
  t.deepEqual(all.slice(0, 2).map((e) => [e.name, e.offset]), [['.', 1], ['..', 2]]);
  const names = all.slice(2).map((e) => Number(e.name));
  t.deepEqual(names, [1, ...ps.map((p) => p.pid)]);
  for (const e of all.slice(2)) t.is(e.offset, Number(e.name) + 2);
});

test('a listing running while processes come and go neither skips survivors nor repeats names', async (t) => {
  await t.notThrowsAsync(
    fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.nat(40), fc.nat(3), fc.boolean()), { minLength: 1, maxLength: 30 }),
        fc.integer({ min: 180, max: 600 }),
        fc.boolean(),
        async (churn, size, plus) => {
          const h = makeTree();
          const initial = Array.from({ length: 40 }, () => h.host.start().pid);
          const gone = new Set<number>();
          const { fh } = h.tree.opendir(rc(), PID_DIR, 0);
          const seen: number[] = [];
          let offset = 0;
          let step = 0;
          for (;;) {
            const batch = await h.tree.readdir(rc(), PID_DIR, fh, offset, size, plus);
            if (batch.length === 0) break;
            let used = 0;
            for (const e of batch) used += direntSize(e.name, plus);
            if (used > size) return false;
            for (const e of batch) if (e.name !== '.' && e.name !== '..') seen.push(Number(e.name));
            offset = batch[batch.length - 1]!.offset;
            // Churn between calls: some exit, some start (possibly reusing low pids).
            const [victim, starts, reuse] = churn[step++ % churn.length]!;
            const live = h.host.pids().filter((p) => p !== 1);
            if (live.length > 0) {
              const v = live[victim % live.length]!;
              h.host.exit(v);
              gone.add(v);
            }
            for (let i = 0; i < starts; i++) {
              if (reuse && gone.size > 0) {
                const pid = [...gone].find((g) => !h.host.pids().includes(g));
                h.host.start(pid === undefined ? {} : { pid });
              } else {
                h.host.start();
              }
            }
            if (plus) for (const e of batch) if (e.entry) h.tree.forget(e.entry.nodeId, 1);
          }
          h.tree.releasedir(rc(), PID_DIR, fh);
          const survivors = initial.filter((p) => !gone.has(p));
          const unique = new Set(seen);
          const sorted = [...seen].every((p, i) => i === 0 || p > seen[i - 1]!);
          return unique.size === seen.length && sorted && survivors.every((p) => unique.has(p)) && h.table.counters().underflows === 0;
        },
      ),
      { numRuns: 40, seed: 20240611 },
    ),
  );
});

test('READDIRPLUS produces only what fits and counts one lookup each; the next reply\'s processes are registered ahead, not revealed', async (t) => {
  const h = makeTree();
  const ps = Array.from({ length: 20 }, () => h.host.start());
  const size = direntSize('.', true) + direntSize('..', true) + 3 * direntSize(String(ps[0]!.pid), true);
  const { fh } = h.tree.opendir(rc(), PID_DIR, 0);
  const batch = await h.tree.readdir(rc(), PID_DIR, fh, 0, size, true);
  t.deepEqual(batch.map((e) => e.name), ['.', '..', '1', String(ps[0]!.pid), String(ps[1]!.pid)]);
  for (const e of batch.slice(2)) t.is(h.table.dentry(e.entry!.nodeId)!.lookups, 1);
  t.is(batch[0]!.entry, undefined, '"." carries no reference');
  const reads = h.tree.processes.reads;
  t.is(reads, 3 + 18, 'the 18 processes after the reply were read ahead');
  const ahead = ps.slice(2).map((p) => h.table.findByKey('process', p.pid)!);
  t.true(ahead.every((i) => i.dentry !== null && i.dentry.lookups === 0), 'numbered and held, but no kernel reference');
  t.true(ahead.every((i, k) => k === 0 || i.ino > ahead[k - 1]!.ino), 'numbered in listing order');
  const next = await h.tree.readdir(rc(), PID_DIR, fh, batch[4]!.offset, size, true);
  t.is(next[0]!.name, String(ps[2]!.pid));
  t.is(next[0]!.entry!.nodeId, ahead[0]!.ino, 'the number registered ahead is the one revealed');
  t.is(h.tree.processes.reads, reads, 'registered entries are not read again');
  h.tree.releasedir(rc(), PID_DIR, fh);
  t.is(h.host.pendingExitWatches, 3 + next.length, 'READDIRPLUS entries are kernel references: watched; what was only registered ahead is let go');
  t.is(h.table.findByKey('process', ps[19]!.pid)!.dentry, null);
});

test('a process registered ahead that exits before its reply is skipped, and its hold given back', async (t) => {
  const h = makeTree();
  const ps = Array.from({ length: 6 }, () => h.host.start());
  const size = direntSize('.', false) + direntSize('..', false) + 2 * direntSize(String(ps[0]!.pid), false);
  const { fh } = h.tree.opendir(rc(), PID_DIR, 0);
  const first = await h.tree.readdir(rc(), PID_DIR, fh, 0, size, false);
  t.deepEqual(first.slice(2).map((e) => e.name), ['1', String(ps[0]!.pid)]);
  const registered = h.table.findByKey('process', ps[1]!.pid)!;
  t.not(registered.dentry, null, 'registered ahead');
  h.host.exit(ps[1]!.pid);
  const rest = await h.tree.readdir(rc(), PID_DIR, fh, first.at(-1)!.offset, 4096, false);
  t.deepEqual(rest.map((e) => e.name), ps.slice(2).map((p) => String(p.pid)));
  t.true(h.table.isDead(registered));
  h.tree.releasedir(rc(), PID_DIR, fh);
  t.true(ps.slice(2).every((p) => h.table.findByKey('process', p.pid)!.dentry === null), 'every hold given back');
});

test('plain READDIR: d_ino is the number, instantiated without a lookup count', async (t) => {
  const h = makeTree();
  const p = h.host.start();
  const all = await h.readdir(PID_DIR);
  const e = all.find((x) => x.name === String(p.pid))!;
  t.is(h.table.dentry(e.ino), undefined, 'held then put: no dentry left');
  t.truthy(h.table.inode(e.ino), 'but the number stays with the process');
  t.is((await h.lookup(PID_DIR, String(p.pid))).nodeId, e.ino);
  const again = await h.readdir(PID_DIR);
  t.is(again.find((x) => x.name === String(p.pid))!.ino, e.ino);
});

test('processes that exit between listing calls are skipped, not shown with stale numbers', async (t) => {
  const h = makeTree();
  const ps = Array.from({ length: 6 }, () => h.host.start());
  const { fh } = h.tree.opendir(rc(), PID_DIR, 0);
  const first = await h.tree.readdir(rc(), PID_DIR, fh, 0, direntSize('.', false) * 4, false);
  h.host.exit(ps[3]!.pid);
  const rest = await h.tree.readdir(rc(), PID_DIR, fh, first[first.length - 1]!.offset, 4096, false);
  const names = [...first, ...rest].map((e) => e.name);
  t.false(names.includes(String(ps[3]!.pid)));
  t.true(names.includes(String(ps[5]!.pid)));
});

test('by-ino/ lists live handles in number order; dead ones disappear', async (t) => {
  const h = makeTree();
  const ps = Array.from({ length: 4 }, () => h.host.start());
  const inos: number[] = [];
  for (const p of ps) inos.push((await h.lookup(PID_DIR, String(p.pid))).nodeId);
  h.host.exit(ps[1]!.pid);
  h.tree.forget(inos[1]!, 1);
  const listed = (await h.readdir(BY_INO_DIR)).slice(2);
  t.deepEqual(listed.map((e) => Number(e.name)), [inos[0], inos[2], inos[3]]);
  for (const e of listed) {
    t.is(e.ino, Number(e.name));
    t.is(e.offset, e.ino);
  }
  const plus = (await h.readdir(BY_INO_DIR, { plus: true })).slice(2);
  t.deepEqual(plus.map((e) => e.entry!.nodeId), [inos[0], inos[2], inos[3]]);
});
