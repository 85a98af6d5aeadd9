#!/usr/bin/env node
/**
 * Builds the man pages from the markdown in docs/ with marked-man (run by `npm run build`):
 * dist/man/handlefs.1 from docs/cli.md (the command, its options, exit codes, mount(8) helper,
 * fstab, systemd, metrics), and dist/man/mount.fuse.handlefs.8, which sends man(1) to it.
 * Also gives the CommonJS kit its declarations (dist/testing/index.d.cts).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const out = path.join(root, 'dist/man');
fs.mkdirSync(out, { recursive: true });

// docs/cli.md opens with the synopsis block, then describes the commands.
const cli = fs
  .readFileSync(path.join(root, 'docs/cli.md'), 'utf8')
  .replace(/^# .*\n/, '')
  .replace(/^\s*(```[\s\S]*?```\n)/, '## SYNOPSIS\n$1\n## COMMANDS\n');
const source = `# handlefs(1) -- stable, never-reused inode numbers for processes and namespaces, through FUSE

## DESCRIPTION
handlefs gives every live process and namespace on a Linux host a stable, never-reused inode
number and serves them as files through a FUSE filesystem: \`MNT/pid/<pid>\`,
\`MNT/ns/<type>/<nsfs-inode>\` and \`MNT/by-ino/<ino>\`. Reading a handle gives \`Key: value\`
lines about its object. A number is never given to anything else: not to a later process that
reuses a pid, not after a restart, not after a crash. It is also the mount(8) helper
\`mount.fuse.handlefs\` (see *mount(8) and /etc/fstab* below).

${cli}
## SEE ALSO
lsns(8), mount(8), fstab(5), fusermount3(1), pidfd_open(2), ioctl_ns(2).
The package's docs/ directory: tree.md (every key of a handle), testing.md (handlefs/testing),
architecture.md.
`;
const tmp = path.join(out, '.handlefs.1.md');
fs.writeFileSync(tmp, source);
const require = createRequire(import.meta.url);
const bin = path.join(path.dirname(require.resolve('marked-man/package.json')), 'bin/marked-man.js');
const r = spawnSync(process.execPath, [bin, '--no-breaks', '--version', `handlefs ${pkg.version}`, '--manual', 'handlefs manual', '-o', path.join(out, 'handlefs.1'), tmp], { encoding: 'utf8' });
fs.rmSync(tmp);
if (r.status !== 0) {
  process.stderr.write(`build-man: marked-man failed: ${r.stderr}\n`);
  process.exit(1);
}
// man(1) resolves .so against the manual's root: share/man/man8 → share/man/man1/handlefs.1.
fs.writeFileSync(path.join(out, 'mount.fuse.handlefs.8'), '.so man1/handlefs.1\n');

// The kit's declarations for require(): each .d.ts reachable from dist/testing/index.d.ts gets a
// .d.cts twin whose relative imports name the twins, so TypeScript reads them all as CommonJS.
const pending = [path.join(root, 'dist/testing/index.d.ts')];
const done = new Set();
while (pending.length > 0) {
  const file = pending.pop();
  if (done.has(file) || !fs.existsSync(file)) continue;
  done.add(file);
  const text = fs.readFileSync(file, 'utf8').replace(/(from\s+|import\()(['"])(\.\.?\/[^'"]+)\.js\2/g, (_, lead, q, spec) => {
    pending.push(path.resolve(path.dirname(file), `${spec}.d.ts`));
    return `${lead}${q}${spec}.cjs${q}`;
  });
  // Packages that are ES modules only (inversify) are imported for their types alone, as ESM.
  const cjsText = text.replace(/^import \{([^}]*)\} from (['"])([^.'"][^'"]*)\2;$/gm, (_, names, q, pkg) => `import type {${names}} from ${q}${pkg}${q} with { 'resolution-mode': 'import' };`);
  fs.writeFileSync(file.replace(/\.d\.ts$/, '.d.cts'), cjsText);
}
