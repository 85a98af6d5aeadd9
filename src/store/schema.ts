/**
 * The state database schema, versioned with `PRAGMA user_version` and tagged with
 * `PRAGMA application_id` so that a file written by something else is never mistaken for ours.
 * Migrations run in one transaction on open; docs/store.md documents the tables for operators.
 */
import Database from 'better-sqlite3';

/** `PRAGMA application_id`: ASCII "hdlf". */
export const APPLICATION_ID = 0x68646c66;

/** The schema this build writes. Files with a higher user_version are refused, lower ones migrated. */
export const SCHEMA_VERSION = 2;

interface Migration {
  /** user_version after this migration. */
  readonly version: number;
  readonly description: string;
  readonly up: (db: Database.Database) => void;
}

/** Append-only: never edit a released migration, add a new one with the next version. */
const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'meta, kinds, scopes, inodes, runs; view identities',
    up(db) {
      db.exec(`
        -- One row: the durable counters. checksum covers generation, high_water and created_at.
        CREATE TABLE meta (
          id          INTEGER PRIMARY KEY CHECK (id = 1),
          generation  INTEGER NOT NULL,  -- run counter, incremented on every open
          high_water  INTEGER NOT NULL,  -- every number ever granted is below this
          created_at  TEXT    NOT NULL,  -- ISO-8601 time the state was created
          checksum    TEXT    NOT NULL
        );
        -- Dictionaries: a row stores small ids instead of repeating these strings.
        CREATE TABLE kinds (
          id        INTEGER PRIMARY KEY,
          kind      TEXT    NOT NULL UNIQUE,  -- 'process', 'namespace', ...
          checksum  INTEGER NOT NULL
        );
        CREATE TABLE scopes (
          id        INTEGER PRIMARY KEY,
          scope     TEXT    NOT NULL UNIQUE,  -- what incarnations are relative to (the boot id)
          checksum  INTEGER NOT NULL
        );
        -- The identity table: which object owns which number.
        CREATE TABLE inodes (
          ino          INTEGER PRIMARY KEY,                     -- never reused
          generation   INTEGER NOT NULL,                        -- run that issued the number
          kind_id      INTEGER NOT NULL REFERENCES kinds (id),
          key          INTEGER NOT NULL,                        -- host-visible number (pid, nsfs inode); reused by the host
          incarnation  INTEGER NOT NULL,                        -- tells objects with the same key apart (start time, ns id)
          scope_id     INTEGER NOT NULL REFERENCES scopes (id),
          checksum     INTEGER NOT NULL                         -- 32-bit FNV-1a over the other columns
        );
        -- What an operator usually wants: the identity table with names joined in.
        CREATE VIEW identities AS
          SELECT i.ino, i.generation, k.kind, i.key, i.incarnation, s.scope
          FROM inodes AS i JOIN kinds AS k ON k.id = i.kind_id JOIN scopes AS s ON s.id = i.scope_id;
        -- One row per open: an operator's history of restarts and recoveries.
        CREATE TABLE runs (
          generation  INTEGER PRIMARY KEY,
          opened_at   TEXT    NOT NULL,
          closed_at   TEXT,                  -- NULL: still running, or it crashed
          pid         INTEGER NOT NULL,
          high_water  INTEGER NOT NULL,      -- high-water mark at open
          origin      TEXT    NOT NULL,      -- 'new', 'restart', 'recovered'
          note        TEXT                   -- why a recovery was needed
        );
      `);
      db.pragma(`application_id = ${APPLICATION_ID}`);
    },
  },
  {
    version: 2,
    description: 'inodes.state: what the tree recorded about the object (a process: last known fields, how it ended)',
    up(db) {
      // NULL in every row written before: rows of schema 1 read as before.
      db.exec('ALTER TABLE inodes ADD COLUMN state TEXT');
    },
  },
];

export class SchemaError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SchemaError';
  }
}

export interface SchemaInfo {
  readonly applicationId: number;
  readonly userVersion: number;
  readonly tables: number;
}

export function schemaInfo(db: Database.Database): SchemaInfo {
  return {
    applicationId: db.pragma('application_id', { simple: true }) as number,
    userVersion: db.pragma('user_version', { simple: true }) as number,
    tables: (db.prepare("SELECT count(*) AS n FROM sqlite_schema WHERE type = 'table'").get() as { n: number }).n,
  };
}

/**
 * Refuses files that are not ours or are newer than this build. Returns true when the file is an
 * uninitialised database (created but never migrated: a crash during the very first open).
 */
export function checkSchema(info: SchemaInfo, file: string): 'uninitialised' | 'current' | 'older' {
  if (info.applicationId === 0 && info.userVersion === 0) {
    if (info.tables === 0) return 'uninitialised';
    throw new SchemaError(`${file} is an SQLite database that handlefs did not write (application_id 0, ${info.tables} tables); refusing to touch it`);
  }
  if (info.applicationId !== APPLICATION_ID) {
    throw new SchemaError(
      `${file} is not a handlefs state file (application_id 0x${info.applicationId.toString(16)}, expected 0x${APPLICATION_ID.toString(16)}); refusing to touch it`,
    );
  }
  if (info.userVersion > SCHEMA_VERSION) {
    throw new SchemaError(`${file} has schema version ${info.userVersion}, written by a newer handlefs; this build supports up to ${SCHEMA_VERSION}`);
  }
  return info.userVersion === SCHEMA_VERSION ? 'current' : 'older';
}

/** Brings the schema to SCHEMA_VERSION in one transaction. Returns the versions migrated from/to. */
export function migrate(db: Database.Database, file: string): { from: number; to: number } {
  const from = checkSchema(schemaInfo(db), file) === 'uninitialised' ? 0 : (db.pragma('user_version', { simple: true }) as number);
  if (from === SCHEMA_VERSION) return { from, to: from };
  db.transaction(() => {
    for (const m of MIGRATIONS) {
      if (m.version <= from) continue;
      m.up(db);
      db.pragma(`user_version = ${m.version}`);
    }
  }).immediate();
  return { from, to: SCHEMA_VERSION };
}

let expected: Map<string, string> | undefined;

/** name -> SQL of every schema object the migrations create (built once, in memory). */
function expectedSchema(): Map<string, string> {
  if (!expected) {
    const mem = new Database(':memory:');
    try {
      migrate(mem, ':memory:');
      expected = schemaObjects(mem);
    } finally {
      mem.close();
    }
  }
  return expected;
}

function schemaObjects(db: Database.Database): Map<string, string> {
  const rows = db.prepare("SELECT type, name, sql FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'").all() as { type: string; name: string; sql: string | null }[];
  return new Map(rows.map((r) => [`${r.type} ${r.name}`, r.sql ?? '']));
}

/**
 * Every table and view of the current schema must be present with exactly the SQL the migrations
 * wrote: bytes flipped inside the schema text can leave a file that SQLite still opens. Objects an
 * operator added (an index for queries) are tolerated. Returns what differs, or undefined.
 */
export function verifySchema(db: Database.Database): string | undefined {
  const want = expectedSchema();
  const have = schemaObjects(db);
  for (const [name, sql] of want) {
    if (!have.has(name)) return `schema object ${name} is missing`;
    if (have.get(name) !== sql) return `schema of ${name} differs from schema version ${SCHEMA_VERSION}`;
  }
  return undefined;
}
