import test from 'ava';
import { guardKeptCopies } from '../../src/service/kept-copies.js';
import type { NsType } from '../../src/sources/types.js';

const info = (type: NsType, inum: number) => ({ type, inum, dev: 4, nsId: '7', owner: null });

function setUp(kept: Array<{ type: string; inum: number }>) {
  const sent: string[] = [];
  const holding = new Set<string>();
  const guard = guardKeptCopies(
    kept,
    { held: (i, fd) => sent.push(`held ${i.type}:${i.inum} fd ${fd}`), released: (type, inum) => sent.push(`released ${type}:${inum}`) },
    (type, inum) => holding.has(`${type}:${inum}`),
  );
  return { sent, holding, guard };
}

test('before the takeover is decided, releases of kept namespaces wait; others and holds pass at once', (t) => {
  const { sent, holding, guard } = setUp([
    { type: 'net', inum: 4026532001 },
    { type: 'uts', inum: 4026532002 },
  ]);
  guard.observer.held(info('net', 4026532001), 9);
  guard.observer.released('net', 4026532001); // a sweep's probe, a grace ending: the copy must stay
  guard.observer.released('uts', 4026532002);
  guard.observer.released('ipc', 4026532003); // never kept: the keeper drops its copy at once
  t.deepEqual(sent, ['held net:4026532001 fd 9', 'released ipc:4026532003']);
  holding.add('net:4026532001'); // taken over: held again by this process
  guard.decided();
  t.deepEqual(sent, ['held net:4026532001 fd 9', 'released ipc:4026532003', 'released uts:4026532002'], 'only what no hold keeps is let go');
  guard.observer.released('net', 4026532001);
  t.is(sent.at(-1), 'released net:4026532001', 'after the decision releases pass at once');
  guard.decided();
  t.is(sent.length, 4, 'deciding twice sends nothing again');
});

test('nothing kept: nothing is held back', (t) => {
  const { sent, guard } = setUp([]);
  guard.observer.released('net', 4026532001);
  t.deepEqual(sent, ['released net:4026532001']);
});
