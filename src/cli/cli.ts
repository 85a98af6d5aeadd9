#!/usr/bin/env node
/** The handlefs command; the full command set lands with the CLI issue. */
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
const [command] = process.argv.slice(2);
if (command === '--version' || command === '-V') {
  process.stdout.write(`handlefs ${pkg.version}\n`);
} else {
  process.stderr.write('handlefs: mounting is not yet available in this version (the FUSE layer is being built)\n');
  process.exitCode = 2;
}
