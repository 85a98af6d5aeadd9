/** The bash completion script: what bash offers after each kind of word, as a user's Tab gets it. */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../completion/handlefs.bash');
const haveBash = spawnSync('bash', ['--version']).status === 0;
const bashTest = haveBash ? test : test.skip;
if (!haveBash) console.log('completion.spec: bash is not installed; skipped');

/** COMPREPLY for the command line `words`, completing the last word. */
function complete(words: string[], env: NodeJS.ProcessEnv = {}): string[] {
  const script = `source '${SCRIPT}'; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _handlefs; printf '%s\\n' "\${COMPREPLY[@]}"`;
  const r = spawnSync('bash', ['-c', script, 'bash', ...words], { encoding: 'utf8', env: { ...process.env, ...env }, cwd: os.tmpdir() });
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout.split('\n').filter((l) => l !== '');
}

bashTest('commands, then each command\'s options', (t) => {
  t.deepEqual(complete(['handlefs', '']).filter((w) => !w.startsWith('-')), ['mount', 'umount', 'status', 'ls', 'help']);
  t.deepEqual(complete(['handlefs', 'st']), ['status']);
  t.deepEqual(complete(['handlefs', 'status', '/run/handles', '--']), ['--json', '--prometheus', '--help']);
  t.deepEqual(complete(['handlefs', 'ls', '--j']), ['--json']);
  t.true(complete(['handlefs', 'mount', '-']).includes('--foreground'));
  t.deepEqual(complete(['handlefs', 'mount', '/m', '--log-level', 'd']), ['debug']);
  t.deepEqual(complete(['handlefs', 'help', 'u']), ['umount']);
});

bashTest('-o completes each of comma-separated options, state and log_level included', (t) => {
  t.deepEqual(complete(['handlefs', 'mount', '/m', '-o', 'allow_other,st']), ['allow_other,state=']);
  t.deepEqual(complete(['handlefs', 'mount', '/m', '-o', 'log']), ['log_level=']);
  t.true(complete(['handlefs', 'mount', '/m', '-o', '']).includes('entry_timeout='));
});

bashTest('umount, status and ls offer the mounted handlefs filesystems; mount offers directories', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'handlefs-completion-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const mountinfo = path.join(dir, 'mountinfo');
  fs.writeFileSync(
    mountinfo,
    [
      '22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/sda1 rw',
      '90 22 0:77 / /run/handles ro,nosuid,nodev shared:50 - fuse.handlefs handlefs rw,user_id=0,group_id=0',
      '91 22 0:78 / /srv/with\\040space ro shared:51 - fuse.handlefs handlefs rw',
      '92 22 0:79 / /run/other ro shared:52 - fuse.sshfs host: rw',
      '',
    ].join('\n'),
  );
  const env = { HANDLEFS_MOUNTINFO: mountinfo };
  for (const cmd of ['umount', 'status', 'ls']) t.deepEqual(complete(['handlefs', cmd, ''], env), ['/run/handles', '/srv/with space'], cmd);
  t.deepEqual(complete(['handlefs', 'status', '/run/h'], env), ['/run/handles']);
  fs.mkdirSync(path.join(dir, 'mnt-here'));
  t.deepEqual(complete(['handlefs', 'mount', path.join(dir, 'mnt-')]), [path.join(dir, 'mnt-here')]);
});
