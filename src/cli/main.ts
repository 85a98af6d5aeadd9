#!/usr/bin/env node
/** The `handlefs` bin. Invoked under the name mount.fuse.handlefs it acts as the mount(8) helper. */
import fs from 'node:fs';
import path from 'node:path';
import { runCli } from './cli.js';

const { version } = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
runCli(process.argv.slice(2), { helper: path.basename(process.argv[1] ?? '') === 'mount.fuse.handlefs', version });
