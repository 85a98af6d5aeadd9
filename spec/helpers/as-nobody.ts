/**
 * Running the checkout's code as nobody (uid 65534) wherever the checkout lies. A clone under
 * /root (mode 0700) cannot be entered by other users, so neither its dist/ nor its node_modules
 * can be loaded by them: when nobody cannot read the checkout, it is bind-mounted for the test
 * at a fresh 0755 directory (and unmounted afterwards), and node is copied there when its own
 * path is closed to nobody too. Nothing is copied or mounted where nobody can already read.
 */
import type { ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const NOBODY = 65534;
/** setpriv as nobody: no supplementary groups. */
export const AS_NOBODY = ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups'];

export const CHECKOUT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Whether nobody can read every one of `files` (asked of the kernel, as nobody). */
export function nobodyCanRead(...files: string[]): boolean {
  return spawnSync(AS_NOBODY[0]!, [...AS_NOBODY.slice(1), 'sh', '-c', 'for f; do test -r "$f" || exit 1; done', 'sh', ...files], { stdio: 'ignore', timeout: 10_000 }).status === 0;
}

function isMountpoint(p: string): boolean {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === p);
}

export interface NobodyView {
  /** The checkout, at a path nobody can read. */
  root: string;
  /** A node binary nobody can run. */
  node: string;
  /** How the view was made, for the test log. */
  how: string;
}

/**
 * The checkout and node as nobody can reach them. `probe`: files (relative to the checkout) the
 * test will load as nobody. Teardowns undo whatever was mounted or copied.
 */
export function nobodyView(t: ExecutionContext, probe: readonly string[]): NobodyView {
  const files = (root: string) => probe.map((p) => path.join(root, p));
  let root = CHECKOUT;
  let node = process.execPath;
  const how: string[] = [];
  if (!nobodyCanRead(...files(root))) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'handlefs-nobody-'));
    fs.chmodSync(dir, 0o755);
    root = path.join(dir, 'checkout');
    fs.mkdirSync(root);
    t.teardown(() => {
      if (isMountpoint(root)) spawnSync('umount', ['-l', root]);
      fs.rmSync(dir, { recursive: true, force: true });
    });
    const bind = spawnSync('mount', ['--rbind', CHECKOUT, root], { encoding: 'utf8' });
    if (bind.status !== 0) throw new Error(`cannot bind-mount the checkout for nobody: ${bind.stderr}`);
    // Private: whatever the test mounts does not propagate into the view, and back.
    spawnSync('mount', ['--make-rprivate', root]);
    how.push(`checkout bind-mounted at ${root} (nobody cannot enter ${CHECKOUT})`);
    if (!nobodyCanRead(...files(root))) throw new Error(`nobody still cannot read ${files(root).join(', ')} (is the checkout itself, or its node_modules link target, closed?)`);
  }
  if (!nobodyCanRead(node)) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'handlefs-node-'));
    fs.chmodSync(dir, 0o755);
    node = path.join(dir, 'node');
    fs.copyFileSync(process.execPath, node);
    fs.chmodSync(node, 0o755);
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
    how.push(`node copied to ${node}`);
  }
  return { root, node, how: how.join('; ') || 'the checkout is readable as it is' };
}
