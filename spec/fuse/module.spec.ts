import test from 'ava';
import { Container } from 'inversify';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  FUSE_TOKENS,
  FuseSession,
  Opcode,
  fuseModule,
  mountAt,
  parseMountOptions,
  InitFlags,
  type FuseMounter,
  type FuseServer,
  type SessionFactory,
} from '../../src/fuse/index.js';
import { MemoryChannel, captureLogger } from './helpers/session-harness.js';
import { SAMPLE_TREE, TreeFs } from './helpers/tree-fs.js';
import { requestBody, encodeRequest, decodeInitOut } from '../../src/testing/kernel-codec.js';

function container(): Container {
  const c = new Container();
  c.bind(FUSE_TOKENS.Logger).toConstantValue(captureLogger('warn').logger);
  c.load(fuseModule);
  return c;
}

test('tokens are global symbols', (t) => {
  t.is(FUSE_TOKENS.Server, Symbol.for('handlefs.fuse.Server'));
  t.is(new Set(Object.values(FUSE_TOKENS)).size, Object.keys(FUSE_TOKENS).length);
});

test('Mounter and SessionFactory resolve as singletons; the factory applies bound SessionOptions', (t) => {
  const c = container();
  c.bind(FUSE_TOKENS.SessionOptions).toConstantValue({ readdirplus: 'off' });
  const m = c.get<FuseMounter>(FUSE_TOKENS.Mounter);
  t.is(typeof m.mount, 'function');
  t.is(m, c.get<FuseMounter>(FUSE_TOKENS.Mounter));
  const factory = c.get<SessionFactory>(FUSE_TOKENS.SessionFactory);
  const ch = new MemoryChannel();
  const s = factory(new TreeFs(SAMPLE_TREE), ch);
  t.true(s instanceof FuseSession);
  void s.run();
  ch.push(encodeRequest({ opcode: Opcode.INIT, unique: 2 }, requestBody.init({ flags: 0x7fffffff })));
  const o = decodeInitOut(ch.reply(2)!.body, 0);
  t.falsy(o.flags & InitFlags.DO_READDIRPLUS, 'bound SessionOptions were applied');
});

const HAVE_FUSE = fs.existsSync('/dev/fuse');
(HAVE_FUSE ? test : test.skip)(`Server mounts the bound FileSystem with the bound MountOptions${HAVE_FUSE ? '' : ' (skipped: no /dev/fuse)'}`, async (t) => {
  const c = container();
  const tree = new TreeFs(SAMPLE_TREE);
  c.bind(FUSE_TOKENS.FileSystem).toConstantValue(tree);
  c.bind(FUSE_TOKENS.MountOptions).toConstantValue(parseMountOptions('fsname=modtest,entry_timeout=0'));
  const mnt = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'handlefs-mod-')));
  t.teardown(() => fs.rmSync(mnt, { recursive: true, force: true }));
  const session = await c.get<FuseServer>(FUSE_TOKENS.Server).start(mnt, { handleSignals: false });
  try {
    t.is(mountAt(mnt)?.source, 'modtest');
    await session.ready; // INIT answered: the filesystem has seen the connection
  } finally {
    await session.stop('test');
  }
  t.is(mountAt(mnt), undefined);
  t.is(tree.conn?.entryTimeout, 0);
});
