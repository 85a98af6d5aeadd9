/**
 * Fuzzing through the kernel: several clients (root and uid 65534, on an allow_other mount)
 * issue random system calls at the real handle tree for a few seconds — random names, offsets,
 * sizes, flags, and every mutating call (spec/tree/fixtures/fuzz-client.py). The service must
 * never crash, hang or keep what the clients left behind, and every mutation must be EROFS.
 * The codec's own fuzzing is in spec/fuse/codec.spec.ts.
 *
 * Every access to the mount comes from a child process. Unmounts in every outcome. Skipped, with
 * a message, where /dev/fuse, python3 or setpriv is absent, or not running as root.
 */
import test from 'ava';
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { mountAt, serve } from '../../src/fuse/mount.js';
import { assembleRealTree } from '../helpers/real-tree.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const CLIENT = path.join(here, 'fixtures/fuzz-client.py');
const execFileP = promisify(execFile);
/** A python3 every user can run (a per-user shim on PATH may be closed to nobody). */
const PYTHON = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const missing = [
  ...(fs.existsSync('/dev/fuse') ? [] : ['/dev/fuse']),
  ...(have('python3') ? [] : ['python3']),
  ...(have('setpriv') ? [] : ['setpriv']),
  ...(process.getuid?.() === 0 ? [] : ['root']),
];
const fuseTest = missing.length === 0 ? test.serial : test.serial.skip;
if (missing.length > 0) test.skip(`fuzzing through a real mount (skipped: no ${missing.join(', ')})`, () => {});

interface ClientResult {
  seed: number;
  reads: number;
  mutations: number;
  mutationErrnos: Record<string, number>;
  mutationSucceeded: string[];
  unexpected: string[];
}

const SECONDS = 3;

fuseTest('random system calls from root and nobody: no crash, no hang, nothing kept, every mutation EROFS', async (t) => {
  t.timeout(180_000); // a few seconds of calls; listing pid/ on a host of 10k processes under load takes much longer
  const mnt = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'handlefs-fuzz-')));
  fs.chmodSync(mnt, 0o755);
  fs.chmodSync(CLIENT, 0o755);
  const logger = pino({ level: 'silent' });
  const { tree, table, unbind } = assembleRealTree(logger, { hidepid: 'noaccess' });
  const session = await serve(tree, mnt, { entryTimeout: 1, attrTimeout: 1, allowOther: true }, logger, { handleSignals: false });
  t.teardown(async () => {
    await session.stop('teardown').catch(() => undefined);
    if (mountAt(mnt)) spawnSync('umount', ['-i', '-c', '-l', mnt], { stdio: 'ignore' });
    unbind();
    fs.rmSync(mnt, { recursive: true, force: true });
  });
  // HANDLEFS_FUZZ_SEED replays a run; each client's failure names its seed.
  const seed = Number(process.env['HANDLEFS_FUZZ_SEED'] ?? Date.now() % 100_000);
  t.log(`seeds ${seed}..${seed + 2} (replay: HANDLEFS_FUZZ_SEED=${seed})`);
  const run = async (argv: string[]): Promise<ClientResult> => {
    try {
      const { stdout } = await execFileP(argv[0]!, argv.slice(1), { timeout: 120_000, maxBuffer: 1 << 24 });
      return JSON.parse(stdout) as ClientResult;
    } catch (err) {
      const e = err as { stderr?: string; killed?: boolean; code?: number };
      throw new Error(`fuzz client ${argv.join(' ')} failed (${e.killed ? 'timed out' : `exit ${e.code}`}): ${e.stderr ?? err}`);
    }
  };
  const results = await Promise.all([
    run([PYTHON, CLIENT, mnt, String(seed), String(SECONDS)]),
    run([PYTHON, CLIENT, mnt, String(seed + 1), String(SECONDS)]),
    run(['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', PYTHON, CLIENT, mnt, String(seed + 2), String(SECONDS)]),
  ]);
  for (const r of results) {
    t.log(`seed ${r.seed}: ${r.reads} reads, ${r.mutations} mutations ${JSON.stringify(r.mutationErrnos)}`);
    t.true(r.reads > 0 && r.mutations > 0, `seed ${r.seed} ran`);
    t.deepEqual(r.mutationSucceeded, [], `seed ${r.seed}: no mutation succeeds`);
    t.deepEqual(Object.keys(r.mutationErrnos), ['EROFS'], `seed ${r.seed}: every mutation is EROFS: ${JSON.stringify(r.mutationErrnos)}`);
    t.deepEqual(r.unexpected, [], `seed ${r.seed}: reads fail only as a missing or refused name does (never EIO)`);
  }
  // Still serving, and nothing the clients left behind is kept: every descriptor was released.
  const { stdout } = await execFileP('cat', [path.join(mnt, 'pid', '1')], { timeout: 30_000 });
  t.regex(stdout, /^Pid:\t1$/m);
  const end = Date.now() + 10_000;
  while (tree.openHandles > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  t.is(tree.openHandles, 0, 'every open file and directory was released');
  t.is(table.counters().open, 0);
  t.is(table.counters().underflows, 0, 'no count went below zero');
  t.true(session.running, 'the session is still running');
});
