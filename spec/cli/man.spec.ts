/**
 * The man pages and the completion script as the package ships them: built from docs/cli.md by
 * scripts/build-man.mjs (part of `npm run build`), listed in package.json, packed, and found by
 * man(1) after `npm install -g`.
 */
import test from 'ava';
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const haveMan = spawnSync('man', ['--version']).status === 0;
const manTest = haveMan ? test.serial : test.serial.skip;
if (!haveMan) console.log('man.spec: man(1) is not installed; the rendering tests are skipped');

function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) && k !== 'INIT_CWD' && k !== 'NODE_OPTIONS') env[k] = v;
  return { ...env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false', ...extra };
}

test.serial.before(() => {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts/build-man.mjs')], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`build-man failed: ${r.stderr}`);
});

manTest('handlefs(1) renders from docs/cli.md: name, synopsis with every command, exit codes, the mount(8) helper', (t) => {
  const r = spawnSync('man', ['-l', path.join(ROOT, 'dist/man/handlefs.1')], { encoding: 'utf8', env: { ...process.env, MANWIDTH: '200', MAN_KEEP_FORMATTING: '' } });
  t.is(r.status, 0, r.stderr);
  const page = r.stdout.replace(/.\x08/g, '');
  t.regex(page, /^HANDLEFS\(1\)/);
  t.regex(page, /^NAME\n\s+handlefs - stable, never-reused inode numbers/m);
  for (const line of ['handlefs mount MNT', 'handlefs umount MNT', 'handlefs status MNT [--json | --prometheus]', 'handlefs ls [MNT] [--json]']) t.true(page.includes(line), line);
  for (const section of ['SYNOPSIS', 'Exit codes', 'mount(8) and /etc/fstab', 'Metrics', 'SEE ALSO']) t.regex(page, new RegExp(`^${section.replace(/[()/]/g, '\\$&')}$`, 'm'), section);
  t.regex(page, /mount\.fuse\.handlefs/);
  t.is(fs.readFileSync(path.join(ROOT, 'dist/man/mount.fuse.handlefs.8'), 'utf8'), '.so man1/handlefs.1\n');
});

test.serial('package.json ships the man pages and the completion script', async (t) => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { man: string[]; files: string[] };
  t.deepEqual(pkg.man, ['./dist/man/handlefs.1', './dist/man/mount.fuse.handlefs.8']);
  for (const m of pkg.man) t.true(fs.existsSync(path.join(ROOT, m)), m);
  const { stdout } = await execFileP('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, env: cleanEnv(), timeout: 60_000 });
  const files = (JSON.parse(stdout) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path);
  for (const f of ['dist/man/handlefs.1', 'dist/man/mount.fuse.handlefs.8', 'completion/handlefs.bash', 'dist/testing/index.cjs']) t.true(files.includes(f), f);
});

manTest('npm install -g puts the pages where man finds them', async (t) => {
  t.timeout(240_000);
  const tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'handlefs-man-')));
  t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const { stdout } = await execFileP('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', tmp], { cwd: ROOT, env: cleanEnv(), timeout: 60_000 });
  const tarball = path.join(tmp, (JSON.parse(stdout) as Array<{ filename: string }>)[0]!.filename);
  const prefix = path.join(tmp, 'prefix');
  await execFileP('npm', ['install', '-g', '--prefix', prefix, tarball, '--ignore-scripts', '--omit=dev', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], {
    cwd: tmp,
    env: cleanEnv({ npm_config_cache: path.join(os.homedir(), '.npm') }),
    timeout: 200_000,
  });
  const manpath = path.join(prefix, 'share/man');
  for (const [section, page] of [['1', 'handlefs'], ['8', 'mount.fuse.handlefs']] as const) {
    const w = spawnSync('man', ['-M', manpath, '-w', section, page], { encoding: 'utf8' });
    t.is(w.status, 0, `man -w ${section} ${page}: ${w.stderr}`);
    t.true(fs.existsSync(path.join(manpath, `man${section}`, `${page}.${section}`)), `npm linked ${page}.${section} into man${section}`);
    // man -w follows the helper page's .so to handlefs(1).
    t.is(fs.realpathSync(w.stdout.trim()), fs.realpathSync(path.join(prefix, 'lib/node_modules/handlefs/dist/man/handlefs.1')));
  }
  const shown = spawnSync('man', ['-M', manpath, '8', 'mount.fuse.handlefs'], { encoding: 'utf8', env: { ...process.env, MANWIDTH: '120' } });
  t.is(shown.status, 0, shown.stderr);
  t.regex(shown.stdout.replace(/.\x08/g, ''), /^HANDLEFS\(1\)/, 'the helper\'s page is handlefs(1)');
});
