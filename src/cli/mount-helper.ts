#!/usr/bin/env node
/**
 * The mount(8) helper: mount(8) runs /sbin/mount.fuse.handlefs SOURCE MNT -o OPTS for
 * `mount -t fuse.handlefs` and fstab lines. Link it there: ln -s "$(npm root -g)/handlefs/dist/cli/mount-helper.js" /sbin/mount.fuse.handlefs
 */
import fs from 'node:fs';
import { runCli } from './cli.js';

const { version } = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
runCli(process.argv.slice(2), { helper: true, version });
