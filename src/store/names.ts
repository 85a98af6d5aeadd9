/**
 * The dictionary tables (kinds, scopes): rows store small ids, the strings live here once. Ids
 * are assigned by the store (max + 1); names added for a batch are staged and become visible only
 * if the batch commits.
 */
import type Database from 'better-sqlite3';
import { StoreDamageError, nameChecksum } from './damage.js';

/** One staged name, as the commit transaction inserts it: [table, id, name, checksum]. */
export type NameRow = [table: 'kinds' | 'scopes', id: number, name: string, checksum: number];

export class Names {
  private byName = new Map<string, number>();
  private byId: (string | undefined)[] = [];
  private readonly staged = new Map<string, number>();
  private nextId = 1;

  constructor(
    readonly table: 'kinds' | 'scopes',
    private readonly column: 'kind' | 'scope',
  ) {}

  /** (Re)reads the table, verifying checksums (throws StoreDamageError). */
  load(db: Database.Database): this {
    this.byName = new Map();
    this.byId = [];
    this.staged.clear();
    this.nextId = 1;
    for (const raw of db.prepare(`SELECT id, ${this.column}, checksum FROM ${this.table}`).raw(true).iterate() as IterableIterator<unknown[]>) {
      const [id, name, sum] = raw;
      if (typeof id !== 'number' || typeof name !== 'string' || nameChecksum(id, name) !== sum) {
        throw new StoreDamageError(`${this.table} row ${String(id)} checksum mismatch`);
      }
      this.byName.set(name, id);
      this.byId[id] = name;
      if (id >= this.nextId) this.nextId = id + 1;
    }
    return this;
  }

  name(id: unknown): string | undefined {
    return typeof id === 'number' ? this.byId[id] : undefined;
  }

  id(name: string): number | undefined {
    return this.byName.get(name);
  }

  /** The id of `name`; a new name gets the next id, staged until the batch carrying it commits. */
  stage(name: string): number {
    let id = this.byName.get(name) ?? this.staged.get(name);
    if (id === undefined) {
      id = this.nextId + this.staged.size;
      this.staged.set(name, id);
    }
    return id;
  }

  /** Rows to insert for the staged names. */
  stagedRows(out: NameRow[]): void {
    for (const [name, id] of this.staged) out.push([this.table, id, name, nameChecksum(id, name)]);
  }

  settle(committed: boolean): void {
    if (this.staged.size === 0) return;
    if (committed) {
      for (const [name, id] of this.staged) {
        this.byName.set(name, id);
        this.byId[id] = name;
      }
      this.nextId += this.staged.size;
    }
    this.staged.clear();
  }
}

/** Both dictionaries, read and verified from `db`. */
export function loadNames(db: Database.Database): { kinds: Names; scopes: Names } {
  return { kinds: new Names('kinds', 'kind').load(db), scopes: new Names('scopes', 'scope').load(db) };
}
