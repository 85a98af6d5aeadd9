/** `status --prometheus`: what ServiceMetrics exposes, read back as Prometheus would parse it. */
import test from 'ava';
import { ServiceMetrics } from '../../src/service/metrics.js';
import type { ServiceStatus } from '../../src/service/status.js';
import { Opcode } from '../../src/fuse/abi.js';

function status(over: Partial<ServiceStatus> = {}): ServiceStatus {
  return {
    version: '9.9.9',
    pid: 4242,
    mountpoint: '/run/handles',
    uptimeSeconds: 61,
    protocol: '7.45',
    reader: 'native',
    kinds: { process: { live: 7, pinned: 1, dead: 2, instantiated: 5 }, namespace: { live: 3, pinned: 0, dead: 0, instantiated: 3 } },
    counters: { inodes: 12, dentries: 8, pinned: 1, open: 0, allocations: 15, lookups: 40, forgets: 31, underflows: 0, lastAllocated: 1038, highWater: 1100 },
    requests: { requests: 77, replies: 70, failedReplies: 1, givenBack: 0, malformed: 0, forgets: 6 },
    store: { path: '/var/lib/handlefs/state.db', bytes: 8192, generation: 3, highWater: 1100 },
    storeStats: { reserves: 2, commits: 9, failedCommits: 0, rowsWritten: 15, rowsDeleted: 3 },
    keeperPid: null,
    restarts: 0,
    lastRestart: null,
    logPath: null,
    ...over,
  };
}

/** name{labels} value lines of a metric, without HELP/TYPE. */
function samples(text: string, name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m && m[1] === name) out.set(m[2] ?? '', Number(m[3]));
  }
  return out;
}

test('counts from the status: handles by kind and state, allocations, lookups, forgets, store commits and fsyncs', async (t) => {
  let scrapes = 0;
  const m = new ServiceMetrics(() => {
    scrapes++;
    return status();
  });
  const text = await m.text();
  t.is(scrapes, 1, 'one status snapshot per scrape');
  t.regex(text, /^# HELP handlefs_handles /m);
  t.regex(text, /^# TYPE handlefs_handles gauge$/m);
  const handles = samples(text, 'handlefs_handles');
  t.is(handles.get('{kind="process",state="live"}'), 7);
  t.is(handles.get('{kind="process",state="dead"}'), 2);
  t.is(handles.get('{kind="namespace",state="in_kernel"}'), 3);
  t.regex(text, /^# TYPE handlefs_allocations_total counter$/m);
  t.is(samples(text, 'handlefs_allocations_total').get(''), 15);
  t.is(samples(text, 'handlefs_lookups_total').get(''), 40);
  t.is(samples(text, 'handlefs_forgets_total').get(''), 31);
  t.is(samples(text, 'handlefs_store_commits_total').get(''), 9);
  t.is(samples(text, 'handlefs_store_fsyncs_total').get(''), 9 + 3 * 2);
  t.is(samples(text, 'handlefs_fuse_requests_total').get(''), 77);
  t.is(samples(text, 'handlefs_info').get('{version="9.9.9",protocol="7.45",reader="native",mountpoint="/run/handles"}'), 1);
  t.is(samples(text, 'handlefs_restarts').get(''), 0, 'no keeper: no restarts');
  t.is(samples(await new ServiceMetrics(() => status({ keeperPid: 99, restarts: 2 })).text(), 'handlefs_restarts').get(''), 2);
  t.true(samples(text, 'handlefs_process_resident_memory_bytes').get('')! > 0, "the process's own figures");
  t.is(scrapes, 1);
  await m.text();
  t.is(scrapes, 2, 'a new snapshot for the next scrape');
});

test('requests by opcode, commits and exit notifications are histograms of what was observed', async (t) => {
  const m = new ServiceMetrics(() => status());
  m.observeRequest(Opcode.LOOKUP, 0.00002);
  m.observeRequest(Opcode.LOOKUP, 0.003);
  m.observeRequest(Opcode.GETATTR, 0.00001);
  m.observeCommit(0.0004);
  m.observeExitNotification(0.0002);
  const text = await m.text();
  t.regex(text, /^# TYPE handlefs_fuse_request_duration_seconds histogram$/m);
  const counts = samples(text, 'handlefs_fuse_request_duration_seconds_count');
  t.is(counts.get('{opcode="LOOKUP"}'), 2);
  t.is(counts.get('{opcode="GETATTR"}'), 1);
  const buckets = samples(text, 'handlefs_fuse_request_duration_seconds_bucket');
  t.is(buckets.get('{le="0.0001",opcode="LOOKUP"}'), 1);
  t.is(buckets.get('{le="0.005",opcode="LOOKUP"}'), 2);
  t.is(buckets.get('{le="+Inf",opcode="LOOKUP"}'), 2);
  t.is(samples(text, 'handlefs_store_commit_duration_seconds_count').get(''), 1);
  t.is(samples(text, 'handlefs_store_commit_duration_seconds_bucket').get('{le="0.0005"}'), 1);
  t.is(samples(text, 'handlefs_exit_notification_delay_seconds_count').get(''), 1);
});

test('the exit-notification delay is observed once per dead handle the kernel holds, when its INVAL_INODE is delivered', async (t) => {
  const { createTestFilesystem } = await import('../../src/testing/index.js');
  const fs = createTestFilesystem();
  t.teardown(() => fs.close());
  const seen: number[] = [];
  fs.tree.invalidator.onInodeDelivered = (s) => seen.push(s);
  const held = fs.host.start();
  const dormant = fs.host.start();
  await fs.lookupPath(`pid/${held.pid}`); // the kernel holds it: its exit must be told
  await fs.ino(`pid/${dormant.pid}`); // looked up and forgotten: nothing to tell
  fs.host.exit(held.pid);
  fs.host.exit(dormant.pid);
  await fs.settle();
  t.is(seen.length, 1);
  t.true(seen[0]! >= 0 && seen[0]! < 5);
});
