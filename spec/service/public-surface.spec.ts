import test from 'ava';
import * as handlefs from '../../src/index.js';

test('the library entry exports what embedders need and no layer internals', (t) => {
  t.is(typeof handlefs.runService, 'function');
  t.is(typeof handlefs.formatStatus, 'function');
  t.is(typeof handlefs.createLogger, 'function');
  t.is(typeof handlefs.testing.createTestFilesystem, 'function');
  t.true(handlefs.NS_TYPES.includes('net'));
  for (const internal of ['InodeTable', 'Allocator', 'FuseSession', 'SqliteStore', 'HandleTree', 'fuse', 'tree', 'sources']) {
    t.false(internal in handlefs, `${internal} is not exported`);
  }
});
