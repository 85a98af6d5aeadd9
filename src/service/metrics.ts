/**
 * `handlefs status --prometheus`: the service's figures in the Prometheus text exposition format,
 * built with prom-client on a registry of its own (nothing global). Gauges and counters that the
 * table, the store and the session already count are read at scrape time; what needs timing
 * (requests, commits, exit notifications) is observed as it happens into histograms.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { opcodeName } from '../fuse/abi.js';
import type { ServiceStatus } from './status.js';

/** FUSE requests answered from memory take microseconds; ones that read /proc or wait for a commit, milliseconds. */
const REQUEST_BUCKETS = [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];
/** A group commit ends in an fsync: 0.1 ms on an idle SSD, tens of ms on a busy disk. */
const COMMIT_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const DELAY_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

/** A counter whose value is read from a running total at scrape time. */
function totalCounter<L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[], read: () => Array<[Partial<Record<L, string>>, number]>) {
  return new Counter<L>({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const [labels, value] of read()) this.inc(labels, value);
    },
  });
}

/** One opcode's histogram: counts per bucket (the last is +Inf), sum, count. */
interface OpcodeCounts {
  buckets: Float64Array;
  sum: number;
  count: number;
}

/**
 * FUSE request latency by opcode, on the request path. prom-client's Histogram hashes its labels
 * on every observe (about a microsecond); this one counts into typed arrays by opcode (tens of
 * nanoseconds) and is exposed through prom-client's registry as a custom metric, in the same
 * histogram form (`_bucket{le,opcode}`, `_sum`, `_count`).
 */
class RequestHistogram {
  readonly name = 'handlefs_fuse_request_duration_seconds';
  readonly help = 'FUSE requests by opcode, from arrival to reply (FORGETs: to their handling).';
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private byOpcode: Array<OpcodeCounts | undefined> = [];

  observe(opcode: number, seconds: number): void {
    let c = this.byOpcode[opcode];
    if (c === undefined) {
      if (!(opcode >= 0 && opcode < 8192)) return; // the kernel sends nothing like it; keep the array small
      c = this.byOpcode[opcode] = { buckets: new Float64Array(REQUEST_BUCKETS.length + 1), sum: 0, count: 0 };
    }
    let i = 0;
    while (i < REQUEST_BUCKETS.length && seconds > REQUEST_BUCKETS[i]!) i++;
    c.buckets[i]!++;
    c.sum += seconds;
    c.count++;
  }

  /** The values in prom-client's metric form, opcodes by name. */
  get(): { name: string; help: string; type: string; aggregator: string; values: Array<{ labels: Record<string, string | number>; value: number; metricName: string }> } {
    const values: Array<{ labels: Record<string, string | number>; value: number; metricName: string }> = [];
    const ops = this.byOpcode.flatMap((c, op) => (c === undefined ? [] : [[opcodeName(op), c] as const])).sort(([a], [b]) => (a < b ? -1 : 1));
    for (const [opcode, c] of ops) {
      let acc = 0;
      REQUEST_BUCKETS.forEach((le, i) => {
        acc += c.buckets[i]!;
        values.push({ labels: { le, opcode }, value: acc, metricName: `${this.name}_bucket` });
      });
      values.push({ labels: { le: '+Inf', opcode }, value: c.count, metricName: `${this.name}_bucket` });
      values.push({ labels: { opcode }, value: c.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { opcode }, value: c.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    this.byOpcode = [];
  }
}

export class ServiceMetrics {
  readonly registry = new Registry();
  private readonly requestSeconds: RequestHistogram;
  private readonly commitSeconds: Histogram;
  private readonly exitDelaySeconds: Histogram;
  private current: ServiceStatus | null = null;
  /** Registered once a status carries `restarts` (the service runs under the keeper). */
  private restarts: Gauge | null = null;

  constructor(private readonly status: () => ServiceStatus) {
    const r = this.registry;
    const s = () => this.current ?? (this.current = this.status());
    // One status snapshot per scrape, taken by the first collector that asks.
    new Gauge({
      name: 'handlefs_info',
      help: 'The running service (value 1): version, FUSE protocol, how /dev/fuse is read.',
      labelNames: ['version', 'protocol', 'reader', 'mountpoint'],
      registers: [r],
      collect() {
        this.reset();
        const st = s();
        this.set({ version: st.version, protocol: st.protocol ?? '', reader: st.reader ?? '', mountpoint: st.mountpoint }, 1);
      },
    });
    new Gauge({
      name: 'handlefs_uptime_seconds',
      help: 'Seconds since the service started.',
      registers: [r],
      collect() {
        this.set(s().uptimeSeconds);
      },
    });
    new Gauge({
      name: 'handlefs_handles',
      help: 'Handles in the table by kind and state: live (object exists), dead (gone, still referenced), pinned (held by a pin or an open file), in_kernel (the kernel holds a lookup).',
      labelNames: ['kind', 'state'],
      registers: [r],
      collect() {
        this.reset();
        for (const [kind, k] of Object.entries(s().kinds)) {
          this.set({ kind, state: 'live' }, k.live);
          this.set({ kind, state: 'dead' }, k.dead);
          this.set({ kind, state: 'pinned' }, k.pinned);
          this.set({ kind, state: 'in_kernel' }, k.instantiated);
        }
      },
    });
    new Gauge({
      name: 'handlefs_high_water',
      help: 'The store high-water mark: no number at or above it was ever handed out.',
      registers: [r],
      collect() {
        this.set(s().store.highWater);
      },
    });
    new Gauge({
      name: 'handlefs_store_bytes',
      help: 'Bytes of the state database with its WAL and shared-memory files.',
      registers: [r],
      collect() {
        this.set(s().store.bytes);
      },
    });
    totalCounter(r, 'handlefs_allocations_total', 'Inode numbers allocated since the service started.', [], () => [[{}, s().counters.allocations]]);
    totalCounter(r, 'handlefs_lookups_total', 'Lookup references handed to the kernel (LOOKUP, READDIRPLUS entries).', [], () => [[{}, s().counters.lookups]]);
    totalCounter(r, 'handlefs_forgets_total', 'Lookup references the kernel gave back (FORGET, BATCH_FORGET items).', [], () => [[{}, s().counters.forgets]]);
    totalCounter(r, 'handlefs_count_underflows_total', 'Forgets or releases that would have taken a count below zero (each one a bug somewhere).', [], () => [[{}, s().counters.underflows]]);
    totalCounter(r, 'handlefs_fuse_requests_total', 'FUSE requests read from /dev/fuse.', [], () => [[{}, s().requests?.requests ?? 0]]);
    totalCounter(r, 'handlefs_fuse_failed_replies_total', 'Replies that could not be delivered (interrupted request, connection gone).', [], () => [[{}, s().requests?.failedReplies ?? 0]]);
    totalCounter(r, 'handlefs_fuse_malformed_requests_total', 'Requests that could not be decoded.', [], () => [[{}, s().requests?.malformed ?? 0]]);
    const store = (key: 'commits' | 'failedCommits' | 'reserves' | 'rowsWritten' | 'rowsDeleted') => () => [[{}, s().storeStats?.[key] ?? 0]] as Array<[Record<string, string>, number]>;
    totalCounter(r, 'handlefs_store_commits_total', 'Group commits of the state database; each ends in an fsync of the WAL (synchronous=FULL).', [], store('commits'));
    totalCounter(r, 'handlefs_store_failed_commits_total', 'Group commits that failed and were rolled back (their changes are retried).', [], store('failedCommits'));
    totalCounter(r, 'handlefs_store_reserves_total', 'Number ranges reserved; each makes its end durable with three fsyncs (WAL, high-water file, its directory).', [], store('reserves'));
    totalCounter(
      r,
      'handlefs_store_fsyncs_total',
      'fsyncs the store asks for: one per commit, three per range reservation (SQLite checkpoints not included).',
      [],
      () => {
        const st = s().storeStats;
        return [[{}, st ? st.commits + 3 * st.reserves : 0]];
      },
    );
    this.requestSeconds = new RequestHistogram();
    r.registerMetric(this.requestSeconds as unknown as Parameters<Registry['registerMetric']>[0]);
    this.commitSeconds = new Histogram({
      name: 'handlefs_store_commit_duration_seconds',
      help: 'Group commits of the state database, from start to fsync.',
      buckets: COMMIT_BUCKETS,
      registers: [r],
    });
    this.exitDelaySeconds = new Histogram({
      name: 'handlefs_exit_notification_delay_seconds',
      help: 'From the service noticing that the object of a handle the kernel holds died (exit watcher, sweep) to the kernel having its INVAL_INODE.',
      buckets: DELAY_BUCKETS,
      registers: [r],
    });
    collectDefaultMetrics({ register: r, prefix: 'handlefs_' });
  }

  /** A FUSE request was answered (the session's RequestObserver). */
  readonly observeRequest = (opcode: number, seconds: number): void => this.requestSeconds.observe(opcode, seconds);

  /** A group commit finished (the store's onCommit). */
  readonly observeCommit = (seconds: number): void => this.commitSeconds.observe(seconds);

  /** An exit reached the kernel (the invalidator's onInodeDelivered). */
  readonly observeExitNotification = (seconds: number): void => this.exitDelaySeconds.observe(seconds);

  /** The text exposition (format 0.0.4). */
  async text(): Promise<string> {
    this.current = this.status();
    const restarts = (this.current as { restarts?: unknown }).restarts;
    if (typeof restarts === 'number' && this.restarts === null) {
      const s = () => this.current;
      this.restarts = new Gauge({
        name: 'handlefs_restarts',
        help: 'Serving processes the keeper started after the first (crashes and restarts); 0 without a keeper.',
        registers: [this.registry],
        collect() {
          const n = (s() as { restarts?: unknown } | null)?.restarts;
          if (typeof n === 'number') this.set(n);
        },
      });
    }
    try {
      return await this.registry.metrics();
    } finally {
      this.current = null;
    }
  }
}
