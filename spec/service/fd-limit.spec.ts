import test from 'ava';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const module = fileURLToPath(new URL('../../src/service/fd-limit.ts', import.meta.url));
/** CAP_SYS_RESOURCE (bit 24) in our effective set: needed to raise a hard limit. */
const capSysResource = (BigInt('0x' + /CapEff:\s*([0-9a-f]+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) >> 24n) & 1n ? true : false;

function startWith512(): { before: { soft: number }; after: { soft: number; hard: number }; warnings: string[] } {
  const script = `
    import { pino } from 'pino';
    import { raiseFdLimit, readFdLimit } from ${JSON.stringify(module)};
    const warnings = [];
    const log = pino({ level: 'warn' }, { write: (l) => warnings.push(JSON.parse(l).msg) });
    const before = readFdLimit();
    const after = raiseFdLimit(log);
    console.log(JSON.stringify({ before, after, warnings }));`;
  const out = execFileSync('prlimit', ['--nofile=512:512', process.execPath, '--import', 'tsx', '--input-type=module', '-e', script], {
    encoding: 'utf8',
  });
  return JSON.parse(out);
}

if (capSysResource) {
  test('a service started with 512 descriptors raises its limit to fs.nr_open (at most 2^20)', (t) => {
    const { before, after, warnings } = startWith512();
    t.is(before.soft, 512);
    const nrOpen = Number(readFileSync('/proc/sys/fs/nr_open', 'utf8').trim());
    t.is(after.soft, Math.min(1 << 20, nrOpen));
    t.deepEqual(warnings, []);
  });
} else {
  test('without CAP_SYS_RESOURCE a service stuck at 512 descriptors says so in a warning', (t) => {
    const { before, after, warnings } = startWith512();
    t.is(before.soft, 512);
    t.is(after.soft, 512);
    t.is(warnings.length, 1);
    t.regex(warnings[0]!, /descriptor limit could not be raised/);
  });
}

test('descriptor pressure: warns once past 80 % of the limit, clears only below 70 %', async (t) => {
  const { fdPressure, watchFdPressure } = await import('../../src/service/fd-limit.js');
  t.is(fdPressure('ok', 799, 1000), 'ok');
  t.is(fdPressure('ok', 800, 1000), 'high');
  t.is(fdPressure('high', 750, 1000), 'high', 'hovering at the line says nothing more');
  t.is(fdPressure('high', 699, 1000), 'ok');
  t.is(fdPressure('ok', 5, Infinity), 'ok', 'no limit, no warning');
  const { pino } = await import('pino');
  const lines: Array<{ level: number; msg: string }> = [];
  const log = pino({ level: 'info' }, { write: (l: string) => lines.push(JSON.parse(l)) });
  const counts = [100, 850, 820, 900, 600];
  let i = 0;
  const stop = watchFdPressure(log, 1000, 5, () => counts[Math.min(i++, counts.length - 1)]!);
  await new Promise((r) => setTimeout(r, 60));
  stop();
  t.deepEqual(lines.map((l) => l.level), [40, 30], 'one warning, then one all-clear');
  t.regex(lines[0]!.msg, /850 of 1000 descriptors in use/);
});

test.serial('descriptor pressure: a real count of this process', async (t) => {
  const { countOpenFds } = await import('../../src/service/fd-limit.js');
  const { openSync, closeSync } = await import('node:fs');
  // The worker's own threads (module loading, IPC) may open or close a descriptor between the two
  // counts: the count is right if one of a few tries sees exactly the 10 opened here.
  const seen: number[] = [];
  for (let attempt = 0; attempt < 5 && seen.at(-1) !== 10; attempt++) {
    const before = countOpenFds();
    const fds = Array.from({ length: 10 }, () => openSync('/dev/null', 'r'));
    seen.push(countOpenFds() - before);
    for (const fd of fds) closeSync(fd);
  }
  t.is(seen.at(-1), 10, `descriptors counted more after opening 10, per try: ${seen.join(', ')}`);
});
