// The change tables DuckDB queries: a table function, `tidemark_changes('<db>.<table>')`, that hands the
// selected archive files to the decode workers and copies their columns into DuckDB's vectors, and a view
// per table in the `changes` schema that gives every column its SQL type. DuckDB tells the function which
// columns a query uses, and only those are decoded, so `count(*)` or a group-by on two columns does not pay
// for message bodies.

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
} from '@duckdb/node-api';
import {
  columnAvroType,
  TidemarkError,
  type ColumnDef,
  type ManifestEntry,
  type RowValue,
} from '../core/index.js';
import type { DecodePool, LocalDecoder, ScanChannel } from './decode-pool.js';
import { toPhysical, type DecodedFile, type Physical, type ProjectedColumn } from './file-decoder.js';

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
    // Decoded as a small code; the view spells it.
    { meta: 'op', name: '_op', physical: 'int', sqlType: 'VARCHAR' },
    { meta: 'ts', name: '_ts', physical: 'double', sqlType: 'TIMESTAMP' },
    { meta: 'pos', name: '_pos', physical: 'text', sqlType: 'VARCHAR' },
    { meta: 'tx', name: '_tx', physical: 'text', sqlType: 'VARCHAR' },
    { meta: 'key', name: '_key', physical: 'text', sqlType: 'VARCHAR' },
  ];

/** The columns of a change table: the change's own fields, then the table's columns (newest version). */
export function changeColumns(columns: readonly ColumnDef[]): QueryColumn[] {
  // The change's own fields keep their names (file choice reads _ts and _pos as event time and position); a
  // table column of the same name is shown with a trailing underscore.
  const taken = new Set(META.map((m) => m.name));
  const named = columns.map((c) => {
    let name = c.name;
    while (taken.has(name.toLowerCase())) name = `${name}_`;
    taken.add(name.toLowerCase());
    return { name, column: c, meta: undefined, ...columnTypes(c) };
  });
  return [...META.map((m) => ({ ...m, column: undefined })), ...named];
}

/** The view expression giving a physical column its SQL type. */
export function viewExpression(c: QueryColumn): string {
  const id = quoteIdent(c.name);
  if (c.meta === 'ts') return `epoch_ms(CAST(${id} AS BIGINT)) AS ${id}`;
  if (c.meta === 'op') return `(['c', 'u', 'd', 'r'])[${id} + 1] AS ${id}`;
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
  columns: QueryColumn[];
  files: ScanFile[];
  fromMs: number | undefined;
  toMs: number | undefined;
}

/** DuckDB types of the physical columns. */
export function physicalTypes(columns: readonly QueryColumn[]): DuckDBType[] {
  return columns.map((c) => DUCK_TYPES[c.physical]);
}

/** Per column, the conversion of a row value into what its vector takes. */
export function physicalSetters(columns: readonly QueryColumn[]): ((v: RowValue) => unknown)[] {
  return columns.map((c) => {
    const to = toPhysical[c.physical];
    return c.physical === 'blob'
      ? (v: RowValue) => (v === null ? null : new DuckDBBlobValue(to(v) as Uint8Array))
      : to;
  });
}

/** What a decode worker must produce for a query column. */
function projection(c: QueryColumn | undefined): ProjectedColumn {
  if (!c) return { kind: 'none' };
  if (c.meta) return { kind: 'meta', meta: c.meta };
  return { kind: 'row', column: (c.column as ColumnDef).name, physical: c.physical };
}

/** One scan of one change table: files decoded ahead by the workers, taken in order, chunk by chunk. */
class Cursor {
  private submitted = 0;
  private taken = 0;
  private current: DecodedFile | undefined;
  private at = 0;
  private readonly columns: ProjectedColumn[];
  /** No column values are wanted (count(*)). */
  private readonly countOnly: boolean;

  constructor(
    private readonly scan: ScanTable,
    private readonly channel: ScanChannel,
    /** The projected columns, in output order; undefined for the placeholder column. */
    private readonly projected: (QueryColumn | undefined)[],
    private readonly onRows: (rows: number) => void,
  ) {
    this.columns = projected.map(projection);
    this.countOnly = this.columns.every((c) => c.kind === 'none');
  }

  private submitAhead(): void {
    const { files } = this.scan;
    while (this.submitted < files.length && this.submitted < this.taken + this.channel.depth) {
      const f = files[this.submitted] as ScanFile;
      // The manifest vouches for the file: no change in it is a re-send.
      const clean = f.entry.positions_ascending && (f.after === undefined || f.entry.first_pos > f.after);
      this.channel.submit(this.submitted, {
        path: f.path,
        objectKey: f.entry.object_key,
        sha256: f.entry.sha256,
        keyId: f.entry.key_id,
        rows: Number(f.entry.rows),
        after: f.after,
        fromMs: f.trim ? this.scan.fromMs : undefined,
        toMs: f.trim ? this.scan.toMs : undefined,
        columns: this.columns,
        countOnly: this.countOnly && !f.trim && clean,
        dedupe: !clean,
      });
      this.submitted++;
    }
  }

  /** Fills one output chunk; a chunk of zero rows ends the scan. */
  fill(out: DuckDBDataChunk, size: number): void {
    while (!this.current || this.at >= this.current.rows) {
      if (this.taken >= this.scan.files.length) {
        out.rowCount = 0;
        this.channel.close();
        return;
      }
      this.submitAhead();
      const f = this.scan.files[this.taken] as ScanFile;
      this.current = this.channel.take(this.taken++, f.entry.object_key);
      this.at = 0;
    }
    this.submitAhead();
    const n = Math.min(size, this.current.rows - this.at);
    out.rowCount = n;
    for (let j = 0; j < this.columns.length; j++) {
      const column = this.current.columns[j];
      if (!column) continue;
      const vector = out.getColumnVector(j);
      const from = this.at;
      if (column.kind === 'any') {
        const blob = this.projected[j]?.physical === 'blob';
        for (let k = 0; k < n; k++) {
          const v = column.values[from + k] ?? null;
          vector.setItem(k, (blob && v !== null ? new DuckDBBlobValue(v as Uint8Array) : v) as never);
        }
      } else {
        const { values, nulls } = column;
        for (let k = 0; k < n; k++) {
          vector.setItem(k, (nulls && nulls[from + k] ? null : values[from + k]) as never);
        }
      }
      vector.flush();
    }
    this.at += n;
    this.onRows(n);
  }
}

/** Registers `tidemark_changes` on a connection, serving the given tables. */
export function registerChangeScan(
  connection: DuckDBConnection,
  tables: ReadonlyMap<string, ScanTable>,
  pool: DecodePool | LocalDecoder,
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
        info.setInitData({ cursor: new Cursor(scan, pool.channel(), projected, onRows) });
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
