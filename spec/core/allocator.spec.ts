import test from 'ava';
import { Allocator } from '../../src/core/allocator.js';
import { MemoryStore } from '../../src/core/memory-store.js';
import { FIRST_DYNAMIC_INO, MAX_INO } from '../../src/core/numbers.js';
import type { InodeStore, NumberRange } from '../../src/core/store.js';

test('numbers start above the reserved static range and strictly increase across ranges', (t) => {
  const store = new MemoryStore();
  const alloc = new Allocator(store, 3);
  const seen = Array.from({ length: 20 }, () => alloc.allocate());
  t.is(seen[0], FIRST_DYNAMIC_INO);
  for (let i = 1; i < seen.length; i++) t.true(seen[i]! > seen[i - 1]!);
  t.is(alloc.count, 20);
  t.is(alloc.last, seen[19]);
  t.true(store.highWater > seen[19]!);
});

test('a second allocator on the same store never repeats a number the first handed out', (t) => {
  const store = new MemoryStore();
  const a = new Allocator(store, 4);
  const b = new Allocator(store, 4);
  const numbers = new Set<number>();
  for (let i = 0; i < 50; i++) {
    for (const n of [a.allocate(), b.allocate()]) {
      t.false(numbers.has(n));
      numbers.add(n);
    }
  }
});

test('restarting from a stored high-water mark skips every number granted before', (t) => {
  const first = new MemoryStore();
  const alloc = new Allocator(first, 100);
  const last = alloc.allocate();
  const restarted = new Allocator(new MemoryStore({ highWater: first.highWater }), 100);
  t.true(restarted.allocate() > last);
  t.is(restarted.allocate() - last > 99, true, 'the unused rest of the old range is skipped, never reused');
});

test('a store that grants a range below what was handed out is refused', (t) => {
  let calls = 0;
  const ranges: NumberRange[] = [{ start: 2000, end: 2002 }, { start: 2001, end: 2010 }];
  const bad = { reserve: () => ranges[calls++]! } as unknown as InodeStore;
  const alloc = new Allocator(bad, 2);
  alloc.allocate();
  alloc.allocate();
  t.throws(() => alloc.allocate(), { message: /not above/ });
});

test('the allocator stops at 2^53 - 1 instead of losing precision', (t) => {
  const store = new MemoryStore({ highWater: MAX_INO - 1 });
  const alloc = new Allocator(store, 1);
  t.is(alloc.allocate(), MAX_INO - 1);
  t.is(alloc.allocate(), MAX_INO);
  t.throws(() => alloc.allocate(), { message: /exhausted/ });
});

test('a failing reservation hands out nothing', (t) => {
  const failing = { reserve: () => { throw new Error('disk full'); } } as unknown as InodeStore;
  const alloc = new Allocator(failing, 8);
  t.throws(() => alloc.allocate(), { message: 'disk full' });
  t.is(alloc.count, 0);
});

test('bad chunk sizes are refused', (t) => {
  t.throws(() => new Allocator(new MemoryStore(), 0), { instanceOf: RangeError });
  t.throws(() => new Allocator(new MemoryStore(), 1.5), { instanceOf: RangeError });
});
