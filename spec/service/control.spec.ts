/**
 * The control socket is open to every user, and each connection costs the service a descriptor:
 * a user other than root cannot keep more than MAX_CONNECTIONS_PER_USER open, and a connection
 * that sends no request is closed after REQUEST_TIMEOUT_MS, so root's requests (and the mount's
 * own descriptors) stay available.
 */
import test, { type ExecutionContext } from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { ControlServer, MAX_CONNECTIONS_PER_USER, REQUEST_TIMEOUT_MS, controlSocketPath, requestControl } from '../../src/service/control.js';
import { tryLoadNative } from '../../src/sources/native.js';
import { AS_NOBODY } from '../helpers/as-nobody.js';

const canActAsNobody =
  process.getuid?.() === 0 && tryLoadNative() !== null && spawnSync(AS_NOBODY[0]!, [...AS_NOBODY.slice(1), process.execPath, '-e', '0']).status === 0;
if (!canActAsNobody) console.log('control.spec: not root, no native helper, or node cannot run as nobody: the per-user connection limit test is skipped');

async function listening(t: ExecutionContext) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'handlefs-control-'));
  fs.chmodSync(dir, 0o711); // nobody may reach the socket inside, as under /run/handlefs
  const mnt = path.join(dir, 'mnt');
  fs.mkdirSync(mnt);
  const previous = process.env['HANDLEFS_RUNTIME_DIR'];
  process.env['HANDLEFS_RUNTIME_DIR'] = path.join(dir, 'run');
  const server = await ControlServer.listen(mnt, (request, caller) => ({ op: request.op, uid: caller.uid }), pino({ level: 'silent' }));
  t.teardown(async () => {
    await server.close();
    if (previous === undefined) delete process.env['HANDLEFS_RUNTIME_DIR'];
    else process.env['HANDLEFS_RUNTIME_DIR'] = previous;
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return { mnt, socket: controlSocketPath(mnt) };
}

// Opens N connections that send nothing, then says how many the service has not closed.
const HOLDER = `
const net = require('node:net');
const [socket, n] = process.argv.slice(1);
let closed = 0;
for (let i = 0; i < Number(n); i++) {
  const c = net.connect(socket);
  c.on('error', () => {});
  c.on('close', () => closed++);
}
setTimeout(() => {
  console.log(Number(n) - closed);
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}, 1000);
`;

(canActAsNobody ? test.serial : test.serial.skip)('a user other than root keeps at most MAX_CONNECTIONS_PER_USER connections; root is still answered', async (t) => {
  const { mnt, socket } = await listening(t);
  const want = MAX_CONNECTIONS_PER_USER + 16;
  const holder = spawn(AS_NOBODY[0]!, [...AS_NOBODY.slice(1), process.execPath, '-e', HOLDER, socket, String(want)], { stdio: ['pipe', 'pipe', 'pipe'] });
  t.teardown(() => holder.kill('SIGKILL'));
  let err = '';
  holder.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const line = await new Promise<string>((resolve) => {
    let out = '';
    holder.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(out.trim());
    });
    holder.once('exit', () => resolve(out.trim()));
  });
  t.is(line, String(MAX_CONNECTIONS_PER_USER), `connections nobody kept open of ${want} (${err.trim()})`);
  // While nobody holds all it may, root is answered.
  t.deepEqual(await requestControl(mnt, { op: 'status' }, 5000), { op: 'status', uid: 0 });
  holder.stdin.end();
});

test.serial('a connection that sends no request is closed after REQUEST_TIMEOUT_MS; a request in time is answered', async (t) => {
  const { mnt, socket } = await listening(t);
  const started = Date.now();
  const closed = await new Promise<number>((resolve) => {
    const c = net.connect(socket);
    c.on('error', () => undefined);
    c.on('close', () => resolve(Date.now() - started));
  });
  t.true(closed >= REQUEST_TIMEOUT_MS - 100, `closed after ${closed} ms`);
  t.true(closed < REQUEST_TIMEOUT_MS + 3000, `closed after ${closed} ms`);
  t.deepEqual(await requestControl(mnt, { op: 'status' }, 5000), { op: 'status', uid: 0 });
});
