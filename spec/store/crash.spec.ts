import * as path from 'node:path';
import test from 'ava';
import { exited, onLines, open, removeTempDirs, spawnFixture, tempDir } from './helpers.js';

test.after.always(removeTempDirs);

/** mulberry32: reproducible kill times (the seed is logged). */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const ROUNDS = 20;

test.serial(`SIGKILL during an allocation storm, ${ROUNDS} rounds: revealed numbers survive, none repeats, new ones are above all`, async (t) => {
  const seed = Number(process.env.HANDLEFS_CRASH_SEED ?? Date.now() % 1_000_000);
  t.log(`seed ${seed} (HANDLEFS_CRASH_SEED to replay)`);
  const random = rng(seed);
  const file = path.join(tempDir(), 'state.db');
  const revealed = new Map<number, number>(); // key -> ino, over all rounds
  const owner = new Map<number, number>(); // ino -> key, over all rounds
  let maxRevealed = 0;
  let lastGeneration = 0;
  let killedBeforeReady = 0;
  const mayBeDeleted = new Set<number>(); // keys whose row the storm deleted after revealing it

  for (let round = 1; round <= ROUNDS; round++) {
    // Small ranges in odd rounds so that kills also land inside reserve().
    const chunks = round % 2 ? ['8', '64'] : ['1024', '65536'];
    // Every third round deletes each row right after revealing it: only the durable high-water
    // mark then keeps those numbers from being handed out again.
    const deleteAll = round % 3 === 0;
    // Commits on the commit thread (the default) in most rounds, on the main thread in every fourth.
    const thread = round % 4 === 0 ? '0' : '1';
    const child = spawnFixture('storm.ts', [file, String(round), ...chunks, deleteAll ? '1' : '0', thread]);
    let ready = false;
    let quiet = false;
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const roundRevealed: [number, number][] = [];
    onLines(child, (line) => {
      if (line.startsWith('ready ')) {
        ready = true;
        return;
      }
      if (line === 'quiet') {
        quiet = true;
        return;
      }
      const [key, ino] = line.split(' ').map(Number) as [number, number];
      roundRevealed.push([key, ino]);
      if (deleteAll || key % 3 === 0) mayBeDeleted.add(key);
    });
    // One round in four is killed at a random moment of start-up (open, migration, recovery);
    // the others after the storm has run for 10..160 ms.
    // A DELETE_ALL round is killed once it went quiet (no rows left, only the high-water mark).
    const early = !deleteAll && random() < 0.25;
    const delay = early ? 50 + random() * 500 : 10 + random() * 150;
    if (!early) {
      const until = (): boolean => (deleteAll ? quiet : ready);
      await new Promise<void>((resolve, reject) => {
        child.stdout!.on('data', function wait() {
          if (until()) {
            child.stdout!.off('data', wait);
            resolve();
          }
        });
        child.once('exit', () => (until() ? resolve() : reject(new Error(`storm exited early: ${stderr}`))));
      });
    }
    await new Promise((r) => setTimeout(r, delay));
    child.kill('SIGKILL');
    const { signal } = await exited(child);
    t.is(signal, 'SIGKILL', stderr);
    if (!ready) killedBeforeReady++;

    for (const [key, ino] of roundRevealed) {
      t.false(revealed.has(key), `key ${key} revealed twice`);
      const prev = owner.get(ino);
      if (prev !== undefined && prev !== key) t.fail(`ino ${ino} given to keys ${prev} and ${key}`);
      revealed.set(key, ino);
      owner.set(ino, key);
      if (ino > maxRevealed) maxRevealed = ino;
    }

    const store = open(file);
    try {
      t.true(store.generation > lastGeneration, 'generation increases across restarts');
      lastGeneration = store.generation;
      const rows = new Map<number, number>();
      for (const r of store.load()) {
        t.true(r.ino < store.highWater);
        rows.set(r.key, r.ino);
      }
      for (const [key, ino] of revealed) {
        // Deleted rows may or may not be gone (the deletion may not have become durable); every
        // other revealed row must be there with its number.
        if (mayBeDeleted.has(key) ? rows.has(key) && rows.get(key) !== ino : rows.get(key) !== ino) {
          t.fail(`revealed ${key}->${ino} is stored as ${rows.get(key)}`);
        }
      }
      t.true(store.highWater > maxRevealed, `high-water ${store.highWater} must exceed every revealed number (${maxRevealed})`);
      t.is(store.startup.origin === 'recovered', false, `a crash is not damage: ${store.startup.damage}`);
    } finally {
      store.close();
    }
  }
  t.log(`${revealed.size} numbers revealed over ${ROUNDS} rounds (${killedBeforeReady} killed during start-up), max ${maxRevealed}`);
  t.true(revealed.size > 0);
});
