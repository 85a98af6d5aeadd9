/**
 * Micro-benchmark: the session's own cost per request (decode, dispatch, handler, encode), with a
 * channel that discards replies — no kernel, no syscalls. The stat path's three requests in turn.
 *
 *   node --import tsx bench/fuse-stat/micro.ts
 */
import pino from 'pino';
import { FuseSession, Opcode, type ChannelSink, type FuseChannel } from '../../src/fuse/index.js';
import { StatTreeFs } from './ts-server.js';
import { encodeRequest, requestBody } from '../../src/testing/kernel-codec.js';

class NullChannel implements FuseChannel {
  readonly bufferSize = 1024 * 1024 + 4096;
  closed = false;
  sink!: ChannelSink;
  writes = 0;
  start(s: ChannelSink): void {
    this.sink = s;
  }
  write(): void {
    this.writes++;
  }
  writev(): void {
    this.writes++;
  }
  async writeNotify(): Promise<void> {}
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sink.onEnd();
  }
}

const ch = new NullChannel();
const session = new FuseSession(new StatTreeFs(1000), ch, pino({ level: 'warn' }));
void session.run();
const rbuf = Buffer.alloc(1 << 20);
const deliver = (r: Buffer): void => {
  r.copy(rbuf);
  ch.sink.onData(rbuf, r.length);
};
deliver(encodeRequest({ opcode: Opcode.INIT, unique: 2 }, requestBody.init({ flags: 0x7fffffff })));
const reqs = [
  encodeRequest({ opcode: Opcode.LOOKUP, unique: 4, nodeId: 1 }, requestBody.lookup('pid')),
  encodeRequest({ opcode: Opcode.LOOKUP, unique: 6, nodeId: 2 }, requestBody.lookup('f123')),
  encodeRequest({ opcode: Opcode.GETATTR, unique: 8, nodeId: 1123 }, requestBody.getattr()),
];
for (const round of [1, 2, 3]) {
  const n = 1_000_000;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) deliver(reqs[i % 3]!);
  const ns = Number(process.hrtime.bigint() - t0) / n;
  console.log(`round ${round}: ${ns.toFixed(0)} ns/request (${ch.writes} replies so far)`);
}
await session.stop('done');
