import test from 'ava';
import type { Incarnation, Key } from '../../src/core/numbers.js';
import { makeTable, proc } from '../helpers/core.js';

// The units are checked by the compiler: `npx tsc --noEmit` (run by `npm test`) fails if a line
// marked @ts-expect-error compiles, that is if one unit could be passed as another.
test('units: a key, a generation or an incarnation is refused where an inode number belongs, and the reverse', (t) => {
  const { table } = makeTable();
  const d = table.lookup(proc(1500, 7), 'p');
  const key: Key = d.inode.key;
  const incarnation: Incarnation = d.inode.incarnation;
  // @ts-expect-error a key (a pid) where an inode number belongs
  t.is(table.inode(key), undefined);
  // @ts-expect-error a generation where an inode number belongs
  t.is(table.dentry(d.inode.generation), undefined);
  // @ts-expect-error an incarnation where an inode number belongs
  t.is(table.inode(incarnation), undefined);
  // @ts-expect-error an inode number where a key belongs
  t.is(table.findByKey('process', d.ino), undefined);
  t.is(table.findByKey('process', key), d.inode);
  t.is(table.inode(d.ino), d.inode);
  // Unbranded numbers (a literal, a value decoded from the wire) convert to any unit, like Go's untyped constants.
  t.is(table.inode(Number(String(d.ino))), d.inode);
  t.is(table.findByKey('process', 1500), d.inode);
});
