/**
 * Cross-checks the struct layouts in src/fuse/abi.ts against the C compiler's view of the
 * system's <linux/fuse.h> (whatever minor version it is: fields newer than the header are skipped
 * with #if guards). Skips when gcc or the header is missing.
 */
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as abi from '../../src/fuse/abi.js';

type Layout = Record<string, number>;

/** [C struct name, our layout, field names to skip, minimum header minor for the struct]. */
const STRUCTS: Array<[string, Layout, string[], number]> = [
  ['fuse_in_header', abi.InHeader, [], 0],
  ['fuse_out_header', abi.OutHeader, [], 0],
  ['fuse_attr', abi.AttrLayout, [], 0],
  ['fuse_entry_out', abi.EntryOut, [], 0],
  ['fuse_attr_out', abi.AttrOut, [], 0],
  ['fuse_forget_in', abi.ForgetIn, [], 0],
  ['fuse_forget_one', abi.ForgetOne, [], 0],
  ['fuse_batch_forget_in', abi.BatchForgetIn, [], 0],
  ['fuse_getattr_in', abi.GetattrIn, [], 0],
  ['fuse_setattr_in', abi.SetattrIn, [], 0],
  ['fuse_mknod_in', abi.MknodIn, [], 0],
  ['fuse_mkdir_in', abi.MkdirIn, [], 0],
  ['fuse_rename_in', abi.RenameIn, [], 0],
  ['fuse_rename2_in', abi.Rename2In, [], 0],
  ['fuse_link_in', abi.LinkIn, [], 0],
  ['fuse_open_in', abi.OpenIn, [], 0],
  ['fuse_create_in', abi.CreateIn, [], 0],
  ['fuse_open_out', abi.OpenOut, ['backing_id'], 0],
  ['fuse_release_in', abi.ReleaseIn, [], 0],
  ['fuse_flush_in', abi.FlushIn, [], 0],
  ['fuse_read_in', abi.ReadIn, [], 0],
  ['fuse_write_in', abi.WriteIn, [], 0],
  ['fuse_write_out', abi.WriteOut, [], 0],
  ['fuse_kstatfs', abi.Kstatfs, [], 0],
  ['fuse_fsync_in', abi.FsyncIn, [], 0],
  ['fuse_setxattr_in', abi.SetxattrIn, [], 0],
  ['fuse_getxattr_in', abi.GetxattrIn, [], 0],
  ['fuse_getxattr_out', abi.GetxattrOut, [], 0],
  ['fuse_file_lock', abi.FileLock, [], 0],
  ['fuse_lk_in', abi.LkIn, [], 0],
  ['fuse_access_in', abi.AccessIn, [], 0],
  ['fuse_init_in', abi.InitIn, [], 0],
  ['fuse_init_out', abi.InitOut, ['max_stack_depth', 'request_timeout', 'unused'], 0],
  ['fuse_interrupt_in', abi.InterruptIn, [], 0],
  ['fuse_bmap_in', abi.BmapIn, [], 0],
  ['fuse_ioctl_in', abi.IoctlIn, [], 0],
  ['fuse_poll_in', abi.PollIn, [], 0],
  ['fuse_poll_out', abi.PollOut, [], 0],
  ['fuse_fallocate_in', abi.FallocateIn, [], 0],
  ['fuse_lseek_in', abi.LseekIn, [], 0],
  ['fuse_lseek_out', abi.LseekOut, [], 0],
  ['fuse_copy_file_range_in', abi.CopyFileRangeIn, [], 0],
  ['fuse_statx_in', abi.StatxIn, [], 39],
  ['fuse_dirent', abi.Dirent, ['SIZE'], 0],
  ['fuse_notify_inval_inode_out', abi.NotifyInvalInodeOut, [], 0],
  ['fuse_notify_inval_entry_out', abi.NotifyInvalEntryOut, [], 0],
  ['fuse_notify_delete_out', abi.NotifyDeleteOut, [], 0],
  ['fuse_notify_poll_wakeup_out', abi.NotifyPollWakeupOut, [], 0],
];

/** Fields that exist only from some header minor on (C name → minor). */
const FIELD_MINOR: Record<string, number> = {
  'fuse_init_out.max_stack_depth': 40,
  'fuse_init_out.request_timeout': 43,
  'fuse_open_out.backing_id': 40,
};

const HEADER = '/usr/include/linux/fuse.h';
const haveGcc = spawnSync('gcc', ['--version'], { stdio: 'ignore' }).status === 0;
/** What is missing for the layout check (scripts/host-deps.sh installs both), or null. */
const missing = !haveGcc ? 'gcc' : !fs.existsSync(HEADER) ? HEADER : null;
const abiTest = missing === null ? test : test.skip;
const skipped = missing === null ? '' : ` (skipped: ${missing} not available)`;

abiTest(`struct layouts match <linux/fuse.h> as compiled by gcc${skipped}`, (t) => {
  const checks: string[] = [];
  const expected: string[] = [];
  for (const [cname, layout, skip, minMinor] of STRUCTS) {
    const body: string[] = [];
    for (const [field, off] of Object.entries(layout)) {
      if (skip.includes(field)) continue;
      if (field === 'SIZE') {
        body.push(`printf("${cname} SIZE %zu\\n", sizeof(struct ${cname}));`);
        expected.push(`${cname} SIZE ${off}`);
        continue;
      }
      // Derived offsets (e.g. DirentPlus.name, Dirent.name) are not C members.
      if (cname === 'fuse_dirent' && field === 'name') {
        body.push(`printf("${cname} name %zu\\n", offsetof(struct fuse_dirent, name));`);
        expected.push(`${cname} name ${off}`);
        continue;
      }
      body.push(`printf("${cname} ${field} %zu\\n", offsetof(struct ${cname}, ${field}));`);
      expected.push(`${cname} ${field} ${off}`);
    }
    checks.push(`#if FUSE_KERNEL_MINOR_VERSION >= ${minMinor}\n${body.join('\n')}\n#else\n${expected
      .filter((e) => e.startsWith(`${cname} `))
      .map((e) => `printf("${e}\\n");`)
      .join('\n')}\n#endif`);
  }
  for (const [key, minor] of Object.entries(FIELD_MINOR)) {
    const [cname, field] = key.split('.') as [string, string];
    const layout = STRUCTS.find((s) => s[0] === cname)![1];
    checks.push(`#if FUSE_KERNEL_MINOR_VERSION >= ${minor}\nprintf("${cname} ${field} %zu\\n", offsetof(struct ${cname}, ${field}));\n#else\nprintf("${cname} ${field} ${layout[field]}\\n");\n#endif`);
    expected.push(`${cname} ${field} ${layout[field]}`);
  }
  // Derived: direntplus name offset and the compat sizes.
  checks.push(`printf("direntplus name %zu\\n", offsetof(struct fuse_direntplus, dirent.name));`);
  expected.push(`direntplus name ${abi.DirentPlus.name}`);
  checks.push(`printf("FUSE_COMPAT_ENTRY_OUT_SIZE %d\\n", FUSE_COMPAT_ENTRY_OUT_SIZE);`);
  expected.push(`FUSE_COMPAT_ENTRY_OUT_SIZE ${abi.FUSE_COMPAT_ENTRY_OUT_SIZE}`);
  checks.push(`printf("FUSE_COMPAT_ATTR_OUT_SIZE %d\\n", FUSE_COMPAT_ATTR_OUT_SIZE);`);
  expected.push(`FUSE_COMPAT_ATTR_OUT_SIZE ${abi.FUSE_COMPAT_ATTR_OUT_SIZE}`);
  checks.push(`printf("FUSE_COMPAT_22_INIT_OUT_SIZE %d\\n", FUSE_COMPAT_22_INIT_OUT_SIZE);`);
  expected.push(`FUSE_COMPAT_22_INIT_OUT_SIZE ${abi.FUSE_COMPAT_22_INIT_OUT_SIZE}`);
  checks.push(`printf("FUSE_COMPAT_STATFS_SIZE %d\\n", FUSE_COMPAT_STATFS_SIZE);`);
  expected.push(`FUSE_COMPAT_STATFS_SIZE ${abi.FUSE_COMPAT_STATFS_SIZE}`);
  checks.push(`printf("FUSE_MIN_READ_BUFFER %d\\n", FUSE_MIN_READ_BUFFER);`);
  expected.push(`FUSE_MIN_READ_BUFFER ${abi.FUSE_MIN_READ_BUFFER}`);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fuse-abi-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const src = path.join(dir, 'abi.c');
  fs.writeFileSync(
    src,
    `#include <stddef.h>\n#include <stdio.h>\n#include <linux/fuse.h>\nint main(void) {\n${checks.join('\n')}\nreturn 0;\n}\n`,
  );
  execFileSync('gcc', ['-o', path.join(dir, 'abi'), src]);
  const got = execFileSync(path.join(dir, 'abi'), { encoding: 'utf8' }).trim().split('\n');
  t.deepEqual(got.sort(), [...new Set(expected)].sort());
});

abiTest(`opcode, notify and flag values match <linux/fuse.h>${skipped}`, (t) => {
  const header = fs.readFileSync(HEADER, 'utf8');
  const minor = Number(/FUSE_KERNEL_MINOR_VERSION\s+(\d+)/.exec(header)![1]);
  t.log(`system header is 7.${minor}; abi.ts is 7.${abi.FUSE_KERNEL_MINOR_VERSION}`);
  const names: Array<[string, number]> = [];
  for (const [k, v] of Object.entries(abi.Opcode)) if (header.includes(`FUSE_${k}`) || header.includes(k)) names.push([k === 'CUSE_INIT' ? k : `FUSE_${k}`, v]);
  for (const [k, v] of Object.entries(abi.NotifyCode)) if (header.includes(`FUSE_NOTIFY_${k} `) || header.includes(`FUSE_NOTIFY_${k}\t`) || header.includes(`FUSE_NOTIFY_${k} =`)) names.push([`FUSE_NOTIFY_${k}`, v]);
  for (const [k, v] of Object.entries(abi.InitFlags)) if (header.includes(`FUSE_${k}`)) names.push([`FUSE_${k}`, v]);
  for (const [k, v] of Object.entries(abi.InitFlags2)) if (new RegExp(`#define FUSE_${k}\\s`).test(header)) names.push([`(FUSE_${k} >> 32)`, v]);
  for (const [k, v] of Object.entries(abi.FopenFlags)) if (header.includes(`FOPEN_${k}`)) names.push([`FOPEN_${k}`, v]);
  for (const [k, v] of Object.entries(abi.FattrFlags)) if (header.includes(`FATTR_${k}`)) names.push([`FATTR_${k}`, v]);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fuse-abi-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const src = path.join(dir, 'consts.c');
  fs.writeFileSync(
    src,
    `#include <stdio.h>\n#include <stdint.h>\n#include <linux/fuse.h>\nint main(void) {\n${names
      .map(([n]) => `printf("%s %llu\\n", ${JSON.stringify(n)}, (unsigned long long)(uint32_t)(${n}));`)
      .join('\n')}\nreturn 0;\n}\n`,
  );
  execFileSync('gcc', ['-o', path.join(dir, 'consts'), src]);
  const got = execFileSync(path.join(dir, 'consts'), { encoding: 'utf8' }).trim().split('\n');
  t.deepEqual(got, names.map(([n, v]) => `${n} ${v >>> 0}`));
  t.true(names.length > 80, `checked ${names.length} constants`);
});

test('opcodeName / errnoName', (t) => {
  t.is(abi.opcodeName(1), 'LOOKUP');
  t.is(abi.opcodeName(44), 'READDIRPLUS');
  t.is(abi.opcodeName(9999), 'OP_9999');
  t.is(abi.errnoName(2), 'ENOENT');
  t.is(abi.errnoName(30), 'EROFS');
  t.is(abi.errnoName(4000), 'E4000');
});
