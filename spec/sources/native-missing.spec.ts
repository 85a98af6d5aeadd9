// Runs in its own worker: points the loader at a missing file before anything loads it.
process.env['HANDLEFS_NATIVE'] = '/nonexistent/handlefs_native.node';

import { spawn } from 'node:child_process';
import test from 'ava';
import { pino } from 'pino';

const logger = pino({ level: 'silent' });

test('without the helper: clear error, and the real sources fall back', async (t) => {
  const { loadNative, tryLoadNative, NativeHelperMissingError } = await import('../../src/sources/native.js');
  const err = t.throws(() => loadNative());
  t.true(err instanceof NativeHelperMissingError);
  t.regex(err!.message, /handlefs native helper not built: run `npm run build:native`/);
  t.is(tryLoadNative(), null);

  const { ExitWatcher } = await import('../../src/sources/exit-watcher.js');
  const { ProcProcessSource } = await import('../../src/sources/proc-process-source.js');
  const { readHostIds } = await import('../../src/sources/host-ids.js');
  const watcher = new ExitWatcher({ logger });
  t.teardown(() => watcher.close());
  t.false(watcher.usesPidfd);
  const src = new ProcProcessSource({ logger, hostIds: readHostIds(logger), exitWatcher: watcher });
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  await new Promise((r) => child.once('spawn', r));
  const info = (await src.read(child.pid!))!;
  const fired = new Promise<void>((r) => src.watchExit(child.pid!, info.startTime, r));
  child.kill('SIGKILL');
  const outcome = await Promise.race([fired.then(() => 'fired'), new Promise((r) => setTimeout(() => r('not fired within 10 s'), 10_000))]);
  t.is(outcome, 'fired', 'the polling fallback saw the exit');
});

test('without the helper: the fakes work', async (t) => {
  const { FakeHost } = await import('../../src/testing/fake-sources.js');
  const host = new FakeHost();
  const p = host.start();
  const fired = new Promise<void>((r) => host.processSource.watchExit(p.pid, p.startTime, r));
  host.exit(p.pid);
  await fired;
  t.truthy(await host.namespaceSource.open('net', host.initialNamespace('net')));
});
