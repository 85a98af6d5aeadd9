import test from 'ava';
import type { NamespaceSource, ProcessSource } from '../../src/sources/types.js';
import { NS_TYPES } from '../../src/sources/types.js';
import type { TreeContext } from '../../src/tree/context.js';
import type { HandleKind, HandleKindEntry } from '../../src/tree/kind.js';
import { HANDLE_KINDS, INCARNATIONS, KindTable } from '../../src/tree/kinds.js';
import { BY_INO_DIR, nsTypeDir, PID_DIR, ROOT_DIR } from '../../src/tree/layout.js';
import { NAMESPACES } from '../../src/tree/namespace-handles.js';

// Kinds only keep what they are built from until they serve: a bare setup is enough to build the table.
const setup = { ctx: {} as TreeContext, processSource: {} as ProcessSource, namespaceSource: {} as NamespaceSource, options: {} };

test('the table of kinds: one kind per handle directory, found by an inode\'s kind and by directory', (t) => {
  const kinds = new KindTable(setup);
  t.deepEqual([...kinds.all()].map((k) => k.name), HANDLE_KINDS.map((e) => e.name));
  t.is(kinds.forDir(PID_DIR)?.name, 'process');
  for (const type of NS_TYPES) t.is(kinds.forDir(nsTypeDir(type))?.name, 'namespace');
  t.is(kinds.forDir(BY_INO_DIR), undefined, 'by-ino/ lists every kind: the tree serves it');
  t.is(kinds.forDir(ROOT_DIR), undefined);
  t.is(kinds.of({ kind: 'process' }), kinds.forDir(PID_DIR));
  t.is(kinds.of({ kind: 'cgroup' }), undefined, 'a kind this tree does not make (a row of a newer version)');
  t.deepEqual({ ...INCARNATIONS }, { process: 'ordered', namespace: 'equality' });
});

test('the table refuses a second kind for a directory, a kind built under another name, and a kind twice', (t) => {
  const renamed = (name: string): HandleKindEntry => ({
    name,
    incarnations: 'equality',
    create: (s) => Object.assign(Object.create(NAMESPACES.create(s)) as HandleKind, { name }),
  });
  t.throws(() => new KindTable(setup, [NAMESPACES, renamed('namespace2')]), { message: /listed by two handle kinds/ });
  t.throws(() => new KindTable(setup, [{ ...NAMESPACES, name: 'other' }]), { message: /built as "namespace"/ });
  t.throws(() => new KindTable(setup, [NAMESPACES, NAMESPACES]), { message: /(twice|two handle kinds)/ });
});
