import test from 'ava';
import { Container } from 'inversify';
import { pino } from 'pino';
import { createSourcesModule } from '../../src/sources/module.js';
import { ProcNamespaceSource } from '../../src/sources/proc-namespace-source.js';
import { ProcProcessSource } from '../../src/sources/proc-process-source.js';
import { SOURCES } from '../../src/sources/tokens.js';
import { systemClock } from '../../src/sources/types.js';

test('createSourcesModule wires the real sources as singletons', async (t) => {
  const container = new Container();
  await container.load(createSourcesModule({ logger: pino({ level: 'silent' }) }));
  const processes = container.get(SOURCES.ProcessSource);
  t.true(processes instanceof ProcProcessSource);
  t.is(container.get(SOURCES.ProcessSource), processes);
  t.true(container.get(SOURCES.NamespaceSource) instanceof ProcNamespaceSource);
  t.is(container.get(SOURCES.Clock), systemClock);
  t.is(processes.bootId(), container.get(SOURCES.HostIds).bootId);
  t.true((await processes.read(process.pid))?.pid === process.pid);
  await container.unbindAllAsync(); // closes the exit watcher
});
