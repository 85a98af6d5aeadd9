import test from 'ava';
import fc from 'fast-check';
import { CLOCK_LEAD, clockCeiling, formatHwm, parseHwm, rowChecksum } from '../../src/store/index.js';

test('FILE.hwm: format/parse round trip for any safe values', (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (highWater, generation) => {
        const r = parseHwm(formatHwm({ highWater, generation }));
        return r.state === 'ok' && r.record.highWater === highWater && r.record.generation === generation;
      }),
    ),
  );
});

test('FILE.hwm: any changed character is rejected, never misread', (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 1024, max: 2 ** 52 }), fc.nat(), fc.integer({ min: 0, max: 25 }), (highWater, pos, delta) => {
      const text = formatHwm({ highWater, generation: 7 });
      const i = pos % (text.length - 1); // keep the newline
      const changed = text.slice(0, i) + String.fromCharCode(((text.charCodeAt(i) - 32 + delta + 1) % 95) + 32) + text.slice(i + 1);
      const r = parseHwm(changed);
      return r.state === 'corrupt';
    }),
  );
  t.is(parseHwm('').state, 'corrupt');
  t.is(parseHwm(formatHwm({ highWater: 5, generation: 1 }).replace('high_water=5', 'high_water=6')).state, 'corrupt');
});

test('row checksums change when any column changes', (t) => {
  const base = [1_000_000, 3, 1, 4242, 5_000_123, 2] as const;
  const sum = rowChecksum(...base);
  for (let i = 0; i < base.length; i++) {
    for (const d of [1, -1, 2 ** 32, 0.5]) {
      const v = [...base] as [number, number, number, number, number, number];
      v[i] += d;
      t.not(rowChecksum(...v), sum, `column ${i} + ${d}`);
    }
  }
});

test('the wall-clock ceiling grows one number per microsecond, from CLOCK_LEAD at the epoch', (t) => {
  t.is(clockCeiling(0), CLOCK_LEAD);
  t.is(clockCeiling(1000) - clockCeiling(0), 1_000_000);
  // 2^53 µs after the epoch is in the year 2255: the bound stays exact until then.
  t.true(clockCeiling(Date.UTC(2255, 0, 1)) < Number.MAX_SAFE_INTEGER);
  t.true(clockCeiling(Date.UTC(2256, 0, 1)) > Number.MAX_SAFE_INTEGER);
});
