import test from 'ava';
import fc from 'fast-check';
import type { Dentry } from '../../src/core/inode.js';
import { StaleIdentityError } from '../../src/core/inode-table.js';
import { makeTable, proc } from '../helpers/core.js';

/**
 * Random interleavings of concurrent instantiate / lookup / forget / pin / object death / pid
 * reuse, checked against a simple model of what the kernel holds:
 * - numbers strictly increase in the order they are created and are never given to a second identity;
 * - one dentry per live inode, whoever asks;
 * - counts never go below zero and equal what the model says is held;
 * - a dentry is released exactly when the model says nothing holds it.
 */

type Action =
  | { t: 'lookup'; pid: number }
  | { t: 'forget'; pick: number; n: number }
  | { t: 'pin'; pick: number }
  | { t: 'unpin'; pick: number }
  | { t: 'exit'; pid: number; notify: boolean }
  | { t: 'reuse'; pid: number };

const PIDS = 3;
const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ t: fc.constant('lookup' as const), pid: fc.nat(PIDS - 1) }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('forget' as const), pick: fc.nat(), n: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('pin' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('unpin' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('exit' as const), pid: fc.nat(PIDS - 1), notify: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('reuse' as const), pid: fc.nat(PIDS - 1) }) },
);

test('random concurrent interleavings keep every core invariant', async (t) => {
  await t.notThrowsAsync(
    fc.assert(
      fc.asyncProperty(fc.scheduler(), fc.array(action, { minLength: 1, maxLength: 60 }), async (s, actions) => {
        const { table } = makeTable<string>({ chunk: 3 });
        // The host: each pid's current incarnation and whether it lives.
        const world = Array.from({ length: PIDS }, () => ({ start: 1, alive: true }));
        // The model of what holds each number's current dentry.
        const held = new Map<number, { lookups: number; pins: number; dentry: Dentry<string> }>();
        const owner = new Map<number, string>(); // number -> "pid@start" it was given to
        let highest = 0;

        // Called right after the model drops a count: at zero the dentry must be gone at once.
        const settle = (ino: number) => {
          const h = held.get(ino)!;
          if (h.lookups + h.pins > 0) return;
          if (!h.dentry.released) throw new Error(`${ino} should be released`);
          if (table.dentry(ino) !== undefined) throw new Error(`${ino} still resolves after release`);
          held.delete(ino);
        };

        const check = () => {
          for (const [ino, h] of held) {
            const d = h.dentry;
            if (d.lookups < 0 || d.pins < 0 || d.opens < 0 || d.holds < 0) throw new Error(`negative count on ${ino}`);
            {
              if (d.released) throw new Error(`${ino} released while held (${h.lookups} lookups, ${h.pins} pins)`);
              if (d.lookups !== h.lookups || d.pins !== h.pins) throw new Error(`${ino} counts ${d.lookups}/${d.pins}, model ${h.lookups}/${h.pins}`);
              if (table.dentry(ino) !== d) throw new Error(`${ino} resolves to another dentry`);
            }
          }
        };

        const pick = (n: number) => {
          const inos = [...held.keys()].sort((a, b) => a - b);
          return inos.length === 0 ? undefined : inos[n % inos.length]!;
        };

        const run = async (a: Action): Promise<void> => {
          switch (a.t) {
            case 'lookup': {
              const seen = { ...world[a.pid]! }; // read /proc ...
              if (!seen.alive) return;
              await s.schedule(Promise.resolve(), `read pid ${a.pid}`); // ... and the world moves on meanwhile
              const before = table.counters().allocations;
              let d: Dentry<string>;
              try {
                d = table.lookup(proc(a.pid, seen.start), `${a.pid}@${seen.start}`);
              } catch (e) {
                if (e instanceof StaleIdentityError && seen.start < world[a.pid]!.start) return;
                throw e;
              }
              const who = `${a.pid}@${seen.start}`;
              if (table.counters().allocations > before) {
                if (d.ino <= highest) throw new Error(`number ${d.ino} not above ${highest}`);
                highest = d.ino;
                if (owner.has(d.ino)) throw new Error(`number ${d.ino} given twice`);
                owner.set(d.ino, who);
              } else if (owner.get(d.ino) !== who) {
                throw new Error(`${who} got ${d.ino}, which belongs to ${owner.get(d.ino)}`);
              }
              if (d.object !== who) throw new Error(`${who} sees the object of ${d.object}`);
              const h = held.get(d.ino);
              if (h !== undefined && h.dentry !== d) throw new Error(`two dentries for ${d.ino}`);
              if (h === undefined) held.set(d.ino, { lookups: 1, pins: 0, dentry: d });
              else h.lookups++;
              break;
            }
            case 'forget': {
              const ino = pick(a.pick);
              const h = ino === undefined ? undefined : held.get(ino);
              if (ino === undefined || h === undefined || h.lookups === 0) return;
              const n = Math.min(a.n, h.lookups); // the kernel forgets only what it holds
              h.lookups -= n;
              table.forget(ino, n);
              settle(ino);
              break;
            }
            case 'pin': {
              const ino = pick(a.pick);
              if (ino === undefined) return;
              const h = held.get(ino)!;
              table.pin(h.dentry);
              h.pins++;
              break;
            }
            case 'unpin': {
              const ino = pick(a.pick);
              const h = ino === undefined ? undefined : held.get(ino);
              if (h === undefined || h.pins === 0) return;
              h.pins--;
              table.unpin(h.dentry);
              settle(ino!);
              break;
            }
            case 'exit': {
              const w = world[a.pid]!;
              if (!w.alive) return;
              w.alive = false;
              if (a.notify) table.objectGone(proc(a.pid, w.start)); // exit notifications may also be lost
              break;
            }
            case 'reuse': {
              const w = world[a.pid]!;
              const old = w.start;
              w.start++;
              w.alive = true;
              await s.schedule(Promise.resolve(), `late exit of ${a.pid}@${old}`);
              table.objectGone(proc(a.pid, old)); // a late notification must not hurt the new incarnation
              break;
            }
          }
        };

        const tasks = actions.map((a) => s.schedule(Promise.resolve(a), a.t).then(run).then(check));
        await s.waitAll();
        await Promise.all(tasks);
        check();
        const c = table.counters();
        if (c.underflows !== 0) throw new Error(`${c.underflows} underflows`);
        if (c.dentries !== held.size) throw new Error(`${c.dentries} dentries, model holds ${held.size}`);
      }),
      { numRuns: 300, includeErrorInReport: true },
    ),
  );
});
