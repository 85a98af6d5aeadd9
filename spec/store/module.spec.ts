import * as path from 'node:path';
import test from 'ava';
import { Container } from 'inversify';
import type { Logger } from 'pino';
import { CORE } from '../../src/core/tokens.js';
import type { InodeStore } from '../../src/core/store.js';
import { STORE_TOKENS, SqliteStore, storeModule, type StoreOptions } from '../../src/store/index.js';
import { LOGGER } from '../../src/tokens.js';
import { captureLogger, open, removeTempDirs, tempDir } from './helpers.js';

test.after.always(removeTempDirs);

test('storeModule binds one SqliteStore as CORE.Store, logs through LOGGER, and closes it on unload', (t) => {
  const file = path.join(tempDir(), 'state.db');
  const { logger, lines } = captureLogger();
  const container = new Container();
  container.bind<Logger>(LOGGER).toConstantValue(logger);
  const module = storeModule({ path: file });
  container.load(module);
  const store = container.get<InodeStore>(CORE.Store);
  t.true(store instanceof SqliteStore);
  t.is(container.get<InodeStore>(STORE_TOKENS.SqliteStore), store);
  t.is(container.get<InodeStore>(CORE.Store), store);
  t.true(lines.some((l) => l.layer === 'store' && l.msg.includes(file)));
  container.unload(module);
  t.true((store as SqliteStore).isClosed);
  open(file).close(); // the lock was released
});

test('options may be bound separately (as the CLI does from --state)', (t) => {
  const file = path.join(tempDir(), 'state.db');
  const container = new Container();
  container.bind<Logger>(LOGGER).toConstantValue(captureLogger().logger);
  container.bind<StoreOptions>(STORE_TOKENS.Options).toConstantValue({ path: file, minChunk: 8 });
  container.load(storeModule());
  const store = container.get<SqliteStore>(STORE_TOKENS.SqliteStore);
  t.is(store.path, file);
  t.is(store.reserve(1).end - store.highWater, 0);
  t.is(store.chunkSize, 8);
  container.unbindAll();
  t.true(store.isClosed);
});
