/**
 * handlefs/testing as a consumer gets it: the package built (tsup, the project's config) into a
 * scratch directory, packed with `npm pack`, installed into a scratch project with
 * `npm install <tarball> ava@6 --ignore-scripts` (so neither the native helper nor better-sqlite3
 * is built), and exercised by plain-JS ava tests there: the process-watcher example of
 * docs/testing.md, extracted from the document itself, and a guard that the kit needs no root,
 * never touches /dev/fuse and loads no native addon. When this runs as root, the consumer's ava
 * runs as `nobody`.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { build, type Options } from 'tsup';
import tsupConfig from '../../tsup.config.js';

const execFileP = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const NOBODY = 65534;

/** Fenced code blocks of docs/testing.md whose first line is `// file: <path>`. */
function docFiles(): Map<string, string> {
  const md = fs.readFileSync(path.join(root, 'docs/testing.md'), 'utf8');
  const files = new Map<string, string>();
  for (const m of md.matchAll(/```js\n\/\/ file: (\S+)\n([\s\S]*?)```/g)) files.set(m[1]!, m[2]!);
  return files;
}

/** The environment without what the npm running these specs put there (its cache, its prefix, ...). */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) && k !== 'INIT_CWD' && k !== 'NODE_OPTIONS') env[k] = v;
  return { ...env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false', ...extra };
}

async function run(cmd: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv; uid?: number; gid?: number; timeout: number }) {
  try {
    return await execFileP(cmd, args, { ...options, maxBuffer: 16 * 1024 * 1024 });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.message}\n--- stdout\n${e.stdout ?? ''}\n--- stderr\n${e.stderr ?? ''}`);
  }
}

function chownR(p: string, uid: number, gid: number): void {
  fs.chownSync(p, uid, gid);
  if (!fs.lstatSync(p).isDirectory()) return;
  for (const name of fs.readdirSync(p)) {
    const c = path.join(p, name);
    if (fs.lstatSync(c).isSymbolicLink()) fs.lchownSync(c, uid, gid);
    else chownR(c, uid, gid);
  }
}

test.serial('a consumer project installs the packed package without native builds and runs the documented watcher tests', async (t) => {
  t.timeout(240_000);
  const started = Date.now();
  const tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'handlefs-consumer-')));
  t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

  // 1. Build with the project's tsup config into a scratch package (only the library entries; no
  //    declarations: plain JS consumers, and other work in progress must not make this fail).
  const pkgDir = path.join(tmp, 'package');
  fs.mkdirSync(pkgDir);
  const configs = (Array.isArray(tsupConfig) ? tsupConfig : [tsupConfig]) as Options[];
  const built = new Set<string>();
  for (const base of configs) {
    const entry = Object.fromEntries(Object.entries(base.entry as Record<string, string>).filter(([name]) => name === 'index' || name === 'testing/index'));
    if (Object.keys(entry).length === 0) continue;
    for (const name of Object.keys(entry)) for (const f of [base.format].flat()) built.add(`${name}:${f}`);
    await build({
      ...base,
      config: false,
      entry: Object.fromEntries(Object.entries(entry).map(([k, v]) => [k, path.join(root, v)])),
      outDir: path.join(pkgDir, 'dist'),
      dts: false,
      sourcemap: false,
      silent: true,
      clean: false,
      onSuccess: undefined,
      tsconfig: path.join(root, 'tsconfig.json'),
    });
  }
  t.deepEqual([...built].sort(), ['index:esm', 'testing/index:cjs', 'testing/index:esm'], 'the library entries, and a CommonJS build of the kit');
  t.true(fs.existsSync(path.join(pkgDir, 'dist/testing/index.js')));
  t.true(fs.existsSync(path.join(pkgDir, 'dist/testing/index.cjs')));
  const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { files: string[] };
  fs.copyFileSync(path.join(root, 'package.json'), path.join(pkgDir, 'package.json'));
  for (const f of manifest.files) {
    if (f === 'dist' || !fs.existsSync(path.join(root, f))) continue;
    fs.cpSync(path.join(root, f), path.join(pkgDir, f), { recursive: true });
  }
  const builtAt = Date.now();

  // 2. Pack.
  const packed = await run('npm', ['pack', '--json', '--pack-destination', tmp], { cwd: pkgDir, env: cleanEnv(), timeout: 60_000 });
  const tarball = path.join(tmp, (JSON.parse(packed.stdout) as Array<{ filename: string }>)[0]!.filename);
  t.true(fs.existsSync(tarball));

  // 3. A consumer project: the documented example, extracted from docs/testing.md, and the guard.
  const app = path.join(tmp, 'app');
  fs.mkdirSync(path.join(app, 'test'), { recursive: true });
  // As a new user starts: `npm init -y`, which writes "type": "commonjs" (npm 11).
  await run('npm', ['init', '-y'], { cwd: app, env: cleanEnv(), timeout: 60_000 });
  const appManifest = JSON.parse(fs.readFileSync(path.join(app, 'package.json'), 'utf8')) as { type?: string };
  t.not(appManifest.type, 'module', 'a CommonJS project, as npm init makes it');
  const files = docFiles();
  t.deepEqual([...files.keys()].sort(), ['test/kit.test.cjs', 'test/watcher.test.mjs', 'watcher.mjs'], 'docs/testing.md has the example files');
  for (const [name, text] of files) fs.writeFileSync(path.join(app, name), text);
  fs.copyFileSync(path.join(here, 'fixtures/consumer/guard.test.mjs'), path.join(app, 'test/guard.test.mjs'));

  await run('npm', ['install', tarball, 'ava@6', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], {
    cwd: app,
    env: cleanEnv(),
    timeout: 150_000,
  });
  t.false(fs.existsSync(path.join(app, 'node_modules/better-sqlite3/build')), 'better-sqlite3 was not built');
  t.false(fs.existsSync(path.join(app, 'node_modules/handlefs/build')), 'the native helper was not built');
  const installed = Date.now();

  // 4. Run the consumer's tests, as nobody when we can.
  const asNobody = process.getuid?.() === 0;
  const env = cleanEnv({ HOME: app, npm_config_cache: path.join(app, '.npm-cache'), ...(asNobody ? { EXPECT_UID: String(NOBODY) } : {}) });
  if (asNobody) {
    fs.chmodSync(tmp, 0o755);
    chownR(app, NOBODY, NOBODY);
  }
  const result = await run('npx', ['--no', '--', 'ava'], {
    cwd: app,
    env,
    timeout: 90_000,
    ...(asNobody ? { uid: NOBODY, gid: NOBODY } : {}),
  });
  const out = `${result.stdout}\n${result.stderr}`;
  t.log(out.trim().split('\n').filter((l) => /✔|✘|passed|failed|ran as/.test(l)).join('\n'));
  t.regex(out, /a reused pid is not the process we tracked/);
  t.regex(out, /the kit needs no root, no \/dev\/fuse, no mount and no native addon/);
  t.regex(out, /CommonJS: require\(\) gets the same kit/);
  t.regex(out, /6 tests passed/);
  t.notRegex(out, /failed|✘/);
  t.log(`build ${builtAt - started} ms, pack+install ${installed - builtAt} ms, consumer ava ${Date.now() - installed} ms${asNobody ? ' (as nobody)' : ''}`);
});
