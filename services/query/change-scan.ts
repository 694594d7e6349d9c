// The change tables DuckDB queries: a table function, `tidemark_changes('<db>.<table>')`, that decodes the
// selected archive files straight into DuckDB's column vectors, and a view per table in the `changes`
// schema that gives every column its SQL type. DuckDB tells the function which columns a query uses, and
// only those are decoded (Avro schema resolution skips the rest), so `count(*)` or a group-by on two
// columns does not pay for message bodies.
//
// Rows are deduplicated by position as every reader of the archive must (a capture crash may re-send):
// within a partition positions only grow, so an event at or below the highest position already seen in
// its partition is a re-send and is dropped.

import { readFileSync } from 'node:fs';
import {
  BIGINT,
  BLOB,
  BOOLEAN,
  DOUBLE,
  DuckDBBlobValue,
  DuckDBTableFunction,
  FLOAT,
  INTEGER,
  VARCHAR,
  type DuckDBConnection,
  type DuckDBDataChunk,
  type DuckDBType,
  type DuckDBVector,
} from '@duckdb/node-api';
import {
  avroType,
  columnAvroType,
  decrypt,
  isEncrypted,
  verifySha256,
  type Keyring,
  formatPosition,
  parsePosition,
  readAvroBlocks,
  rowSchema,
  TableCodec,
  TidemarkError,
  type AvroBlocks,
  type AvroType,
  type ColumnDef,
  type ManifestEntry,
  type RowValue,
} from '../core/index.js';

type Physical = 'int' | 'bigint' | 'float' | 'double' | 'text' | 'blob';

const DUCK_TYPES: Record<Physical, DuckDBType> = {
  int: INTEGER,
  bigint: BIGINT,
  float: FLOAT,
  double: DOUBLE,
  text: VARCHAR,
  blob: BLOB,
};

export interface QueryColumn {
  /** The name in SQL. */
  name: string;
  /** The table column it comes from; undefined for the change's own fields (_op, _ts, …). */
  column: ColumnDef | undefined;
  meta: 'op' | 'ts' | 'pos' | 'tx' | 'key' | undefined;
  physical: Physical;
  /** The SQL type the view gives it. */
  sqlType: string;
}

export const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;
export const quoteString = (text: string) => `'${text.replace(/'/g, "''")}'`;

/** How a MySQL column travels into DuckDB (physical) and the SQL type the view casts it to. */
export function columnTypes(c: ColumnDef): { physical: Physical; sqlType: string } {
  // Binary, BLOB, BIT and geometry (WKB): whatever the archive holds as Avro bytes.
  if (columnAvroType(c) === 'bytes') return { physical: 'blob', sqlType: 'BLOB' };
  switch (c.type) {
    case 'tinyint':
      return { physical: 'int', sqlType: c.unsigned ? 'UTINYINT' : 'TINYINT' };
    case 'smallint':
      return { physical: 'int', sqlType: c.unsigned ? 'USMALLINT' : 'SMALLINT' };
    case 'mediumint':
    case 'year':
      return { physical: 'int', sqlType: 'INTEGER' };
    case 'int':
      return c.unsigned
        ? { physical: 'bigint', sqlType: 'UINTEGER' }
        : { physical: 'int', sqlType: 'INTEGER' };
    case 'bigint':
      return c.unsigned
        ? { physical: 'text', sqlType: 'UBIGINT' }
        : { physical: 'bigint', sqlType: 'BIGINT' };
    case 'decimal': {
      const precision = c.precision ?? 10;
      // DuckDB's DECIMAL stops at 38 digits; wider MySQL decimals stay exact as text.
      return {
        physical: 'text',
        sqlType: precision <= 38 ? `DECIMAL(${precision},${c.scale ?? 0})` : 'VARCHAR',
      };
    }
    case 'float':
      return { physical: 'float', sqlType: 'FLOAT' };
    case 'double':
      return { physical: 'double', sqlType: 'DOUBLE' };
    case 'date':
      return { physical: 'text', sqlType: 'DATE' };
    case 'datetime':
    case 'timestamp':
      return { physical: 'text', sqlType: 'TIMESTAMP' };
    case 'json':
      return { physical: 'text', sqlType: 'JSON' };
    default:
      // TIME (MySQL's range passes DuckDB's), CHAR/VARCHAR/TEXT, ENUM, SET.
      return { physical: 'text', sqlType: 'VARCHAR' };
  }
}

const META: { meta: NonNullable<QueryColumn['meta']>; name: string; physical: Physical; sqlType: string }[] =
  [
    { meta: 'op', name: '_op', physical: 'text', sqlType: 'VARCHAR' },
    { meta: 'ts', name: '_ts', physical: 'double', sqlType: 'TIMESTAMP' },
    { meta: 'pos', name: '_pos', physical: 'text', sqlType: 'VARCHAR' },
    { meta: 'tx', name: '_tx', physical: 'text', sqlType: 'VARCHAR' },
    { meta: 'key', name: '_key', physical: 'text', sqlType: 'VARCHAR' },
  ];

/** The columns of a change table: the change's own fields, then the table's columns (newest version). */
export function changeColumns(columns: readonly ColumnDef[]): QueryColumn[] {
  const taken = new Set(columns.map((c) => c.name.toLowerCase()));
  const meta = META.map((m) => {
    let name = m.name;
    while (taken.has(name)) name = `_${name}`;
    return { ...m, name, column: undefined };
  });
  return [...meta, ...columns.map((c) => ({ name: c.name, column: c, meta: undefined, ...columnTypes(c) }))];
}

/** The view expression giving a physical column its SQL type. */
export function viewExpression(c: QueryColumn): string {
  const id = quoteIdent(c.name);
  if (c.meta === 'ts') return `epoch_ms(CAST(${id} AS BIGINT)) AS ${id}`;
  if (['VARCHAR', 'INTEGER', 'BIGINT', 'DOUBLE', 'FLOAT', 'BLOB'].includes(c.sqlType)) return id;
  // Zero dates ('0000-00-00') have no SQL value and read as NULL.
  const cast = c.sqlType === 'DATE' || c.sqlType === 'TIMESTAMP' ? 'TRY_CAST' : 'CAST';
  return `${cast}(${id} AS ${c.sqlType}) AS ${id}`;
}

export interface ScanFile {
  entry: ManifestEntry;
  /** Where the file's stored bytes lie on local disk (the store's own file, or a fetched copy). */
  path: string;
  /** The highest position of the files before it in its partition, read or not. */
  after: string | undefined;
  /** Its events straddle --from/--to: each is checked. */
  trim: boolean;
}

export interface ScanTable {
  table: string;
  /** Decrypts files written with client-side encryption. */
  keyring: Keyring | undefined;
  columns: QueryColumn[];
  files: ScanFile[];
  fromMs: number | undefined;
  toMs: number | undefined;
}

interface Envelope {
  op?: string;
  before?: Record<string, RowValue> | null;
  after?: Record<string, RowValue> | null;
  key?: string;
  ts_ms?: bigint;
  pos: { file: bigint; offset: bigint; row: bigint };
  tx?: string | null;
}

/** A reader of one schema version with only the fields a scan needs. */
interface VersionReader {
  type: AvroType;
  resolver: unknown;
  /** Per projected column: the Avro field of the row that holds it in this version (undefined: NULL). */
  fields: (string | undefined)[];
}

const setters: Record<Physical, (v: RowValue) => unknown> = {
  int: (v) => (v === null || typeof v === 'number' ? v : Number(v)),
  bigint: (v) => (v === null || typeof v === 'bigint' ? v : BigInt(typeof v === 'number' ? v : String(v))),
  float: (v) => (v === null || typeof v === 'number' ? v : Number(v)),
  double: (v) => (v === null || typeof v === 'number' ? v : Number(v)),
  text: (v) =>
    v === null || typeof v === 'string' ? v : Buffer.isBuffer(v) ? v.toString('utf8') : String(v),
  blob: (v) => (v === null ? null : new DuckDBBlobValue(Buffer.isBuffer(v) ? v : Buffer.from(String(v)))),
};

/** DuckDB types of the physical columns. */
export function physicalTypes(columns: readonly QueryColumn[]): DuckDBType[] {
  return columns.map((c) => DUCK_TYPES[c.physical]);
}

/** Per column, the conversion of a row value into what its vector takes. */
export function physicalSetters(columns: readonly QueryColumn[]): ((v: RowValue) => unknown)[] {
  return columns.map((c) => setters[c.physical]);
}

/** One scan of one change table: files in partition and offset order, decoded block by block. */
class Cursor {
  private file = -1;
  private blocks: Generator<{ count: number; data: Buffer }> | undefined;
  private data: Buffer = Buffer.alloc(0);
  private at = 0;
  private left = 0;
  private decoded = 0;
  private reader: VersionReader | undefined;
  private maxFile = -1n;
  private maxOffset = -1n;
  private maxRow = -1n;
  private partition = -1;
  private readonly needs: { op: boolean; row: boolean; key: boolean; ts: boolean; tx: boolean };
  private readonly readers = new Map<string, VersionReader>();

  constructor(
    private readonly scan: ScanTable,
    /** The projected columns, in output order; undefined for the placeholder column. */
    private readonly projected: (QueryColumn | undefined)[],
    private readonly onRows: (rows: number) => void,
  ) {
    const used = projected.filter((c): c is QueryColumn => c !== undefined);
    this.needs = {
      op: used.some((c) => c.meta === 'op'),
      row: used.some((c) => c.column !== undefined),
      key: used.some((c) => c.meta === 'key'),
      ts: used.some((c) => c.meta === 'ts') || scan.files.some((f) => f.trim),
      tx: used.some((c) => c.meta === 'tx'),
    };
  }

  private readerFor(avro: AvroBlocks, name: string): VersionReader {
    // Files of one schema version carry the same schema text: a reader is built once per version.
    const text = avro.metadata['tidemark.schema'] ?? JSON.stringify(avro.schema);
    const known = this.readers.get(text);
    if (known) return known;
    const schema = avro.schema as Record<string, unknown>;
    const codec = TableCodec.fromSchema(schema);
    const { schema: row, fields: avroFields } = rowSchema(codec.table);
    const byColumn = new Map(codec.table.columns.map((c, i) => [c.name, avroFields[i] as string]));
    const fields = this.projected.map((c) => (c?.column ? byColumn.get(c.column.name) : undefined));
    const wanted = new Set(fields.filter((f): f is string => f !== undefined));
    const writerFields = schema.fields as Record<string, unknown>[];
    const keep = (n: string) => writerFields.find((f) => f.name === n) as Record<string, unknown>;
    const readerFields: Record<string, unknown>[] = [];
    if (this.needs.op) readerFields.push(keep('op'));
    if (this.needs.row) {
      const rowFields = (row.fields as Record<string, unknown>[]).filter((f) => wanted.has(String(f.name)));
      readerFields.push(
        { name: 'before', type: ['null', { ...row, fields: rowFields }], default: null },
        { name: 'after', type: ['null', 'tidemark.Row'], default: null },
      );
    }
    if (this.needs.key) readerFields.push(keep('key'));
    if (this.needs.ts) readerFields.push(keep('ts_ms'));
    readerFields.push(keep('pos'));
    if (this.needs.tx) readerFields.push(keep('tx'));
    const reader = avroType({ ...schema, fields: readerFields } as never);
    let resolver: unknown;
    try {
      resolver = reader.createResolver(avroType(schema as never));
    } catch (err) {
      throw new TidemarkError(
        'OBJECT_CORRUPT',
        `${name}: its schema cannot be read: ${(err as Error).message}`,
      );
    }
    const made = { type: reader, resolver, fields };
    this.readers.set(text, made);
    return made;
  }

  /** Moves to the next block with records; false when every file is read. */
  private nextBlock(): boolean {
    for (;;) {
      if (this.blocks) {
        const next = this.blocks.next();
        if (!next.done) {
          this.data = next.value.data;
          this.at = 0;
          this.left = next.value.count;
          if (this.left > 0) return true;
          continue;
        }
        this.finishFile();
      }
      this.file++;
      const f = this.scan.files[this.file];
      if (!f) return false;
      const name = f.entry.object_key;
      const avro = readAvroBlocks(this.body(f), name);
      this.reader = this.readerFor(avro, name);
      this.blocks = avro.blocks();
      this.decoded = 0;
      if (f.entry.partition !== this.partition) {
        this.partition = f.entry.partition;
        this.maxFile = this.maxOffset = this.maxRow = -1n;
      }
      if (f.after !== undefined) {
        const p = parsePosition(f.after);
        this.raise(BigInt(p.file), BigInt(p.offset), BigInt(p.row));
      }
    }
  }

  /** A file's bytes, checked against its manifest's SHA-256 and decrypted. */
  private body(f: ScanFile): Buffer {
    const stored = readFileSync(f.path);
    verifySha256(f.path, f.entry.object_key, stored, f.entry.sha256);
    if (!isEncrypted(stored)) return stored;
    if (!this.scan.keyring) {
      throw new TidemarkError(
        'KEY_MISSING',
        `${f.entry.object_key} is encrypted (key "${f.entry.key_id}") and no keys are configured`,
        {
          hint: 'configure tier.cold.encryption.keys with the master key that wrote the archive',
        },
      );
    }
    return decrypt(stored, this.scan.keyring, f.entry.object_key);
  }

  private finishFile(): void {
    const f = this.scan.files[this.file];
    if (f && BigInt(this.decoded) !== f.entry.rows) {
      throw new TidemarkError(
        'OBJECT_CORRUPT',
        `${f.entry.object_key} holds ${this.decoded} events, its manifest says ${f.entry.rows}`,
      );
    }
    this.blocks = undefined;
  }

  private raise(file: bigint, offset: bigint, row: bigint): void {
    if (
      file > this.maxFile ||
      (file === this.maxFile && (offset > this.maxOffset || (offset === this.maxOffset && row > this.maxRow)))
    ) {
      this.maxFile = file;
      this.maxOffset = offset;
      this.maxRow = row;
    }
  }

  /** Fills one output chunk; a chunk of zero rows ends the scan. */
  fill(out: DuckDBDataChunk, size: number): void {
    out.rowCount = size;
    const vectors: (DuckDBVector | undefined)[] = this.projected.map((c, i) =>
      c ? out.getColumnVector(i) : undefined,
    );
    const set = this.projected.map((c) => (c ? setters[c.physical] : undefined));
    const { fromMs, toMs } = this.scan;
    let k = 0;
    while (k < size) {
      if (this.left === 0 && !this.nextBlock()) break;
      const reader = this.reader as VersionReader;
      const file = this.scan.files[this.file] as ScanFile;
      let decoded: { value: unknown; offset: number };
      try {
        decoded = (
          reader.type as unknown as { decode(b: Buffer, at: number, r: unknown): typeof decoded }
        ).decode(this.data, this.at, reader.resolver);
      } catch (err) {
        throw new TidemarkError(
          'OBJECT_CORRUPT',
          `${file.entry.object_key}: record ${this.decoded} does not decode: ${(err as Error).message}`,
        );
      }
      if (decoded.offset < 0) {
        throw new TidemarkError('OBJECT_CORRUPT', `${file.entry.object_key}: a record runs past its block`);
      }
      this.at = decoded.offset;
      this.left--;
      this.decoded++;
      const e = decoded.value as Envelope;
      const { file: pf, offset: po, row: pr } = e.pos;
      if (
        pf < this.maxFile ||
        (pf === this.maxFile && (po < this.maxOffset || (po === this.maxOffset && pr <= this.maxRow)))
      ) {
        continue;
      }
      this.maxFile = pf;
      this.maxOffset = po;
      this.maxRow = pr;
      if (file.trim) {
        const ts = Number(e.ts_ms);
        if ((fromMs !== undefined && ts < fromMs) || (toMs !== undefined && ts > toMs)) continue;
      }
      const row = e.after ?? e.before ?? null;
      for (let j = 0; j < vectors.length; j++) {
        const vector = vectors[j];
        if (!vector) continue;
        const c = this.projected[j] as QueryColumn;
        let v: RowValue;
        switch (c.meta) {
          case 'op':
            v = e.op as string;
            break;
          case 'ts':
            v = Number(e.ts_ms);
            break;
          case 'pos':
            v = formatPosition({ file: Number(pf), offset: Number(po), row: Number(pr) });
            break;
          case 'tx':
            v = e.tx ?? null;
            break;
          case 'key':
            v = e.key as string;
            break;
          default: {
            const field = reader.fields[j];
            v = field === undefined || row === null ? null : (row[field] ?? null);
            v = (set[j] as (x: RowValue) => RowValue)(v);
          }
        }
        vector.setItem(k, v as never);
      }
      k++;
    }
    for (const v of vectors) v?.flush();
    out.rowCount = k;
    this.onRows(k);
  }
}

/** Registers `tidemark_changes` on a connection, serving the given tables. */
export function registerChangeScan(
  connection: DuckDBConnection,
  tables: ReadonlyMap<string, ScanTable>,
  onRows: (rows: number) => void = () => {},
  onError: (err: TidemarkError) => void = () => {},
): void {
  connection.registerTableFunction(
    DuckDBTableFunction.create({
      name: 'tidemark_changes',
      parameterTypes: [VARCHAR],
      supportsProjectionPushdown: true,
      bindFunction: (info) => {
        const name = String(info.getParameter(0));
        const scan = tables.get(name);
        if (!scan) {
          info.setError(`tidemark_changes: no table ${name} is loaded`);
          return;
        }
        // Column 0 stands in when a query needs rows but no values (count(*)): nothing is decoded for it.
        info.addResultColumn('_row', BOOLEAN);
        for (const c of scan.columns) info.addResultColumn(c.name, DUCK_TYPES[c.physical]);
        info.setCardinality(
          scan.files.reduce((n, f) => n + Number(f.entry.rows), 0),
          false,
        );
        info.setBindData({ scan });
      },
      initFunction: (info) => {
        const { scan } = info.bindData as { scan: ScanTable };
        const projected = info.getColumnIndexes().map((i) => (i === 0 ? undefined : scan.columns[i - 1]));
        info.setInitData({ cursor: new Cursor(scan, projected, onRows) });
      },
      mainFunction: (info, out) => {
        const { cursor } = info.initData as { cursor: Cursor };
        try {
          cursor.fill(out, 2048);
        } catch (err) {
          out.rowCount = 0;
          const failure =
            err instanceof TidemarkError
              ? err
              : new TidemarkError('INTERNAL', `reading the archive failed: ${(err as Error).message}`, {
                  cause: err,
                });
          onError(failure);
          info.setError(failure.describe());
        }
      },
    }),
  );
}

/** The view of one change table in the `changes` schema. */
export function changeViewSql(scan: ScanTable): string {
  return (
    `CREATE OR REPLACE VIEW changes.${quoteIdent(scan.table)} AS SELECT ` +
    `${scan.columns.map(viewExpression).join(', ')} FROM tidemark_changes(${quoteString(scan.table)})`
  );
}
