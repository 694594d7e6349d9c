// The change event, the one contract between capture and every reader, and its Avro encoding per table.

import { createHash } from 'node:crypto';
import { avroType, type AvroSchema, type AvroType } from './avro.js';
import { TidemarkError } from './errors.js';
import { loadSchemaFile } from './package-root.js';
import type { Position } from './position.js';
import { keyColumns, type ColumnDef, type TableSchema } from './table-schema.js';

export type Op = 'c' | 'u' | 'd' | 'r';

/**
 * A column value in memory: int/year → number; long-backed (BIGINT, INT UNSIGNED) → bigint; DECIMAL and
 * BIGINT UNSIGNED → exact decimal string; FLOAT/DOUBLE → number; temporal, text, JSON, ENUM, SET → string;
 * binary, BLOB, BIT, geometry (WKB) → Buffer.
 */
export type RowValue = number | bigint | string | Buffer | null;
export type Row = Record<string, RowValue>;

export interface EventSource {
  serverId: number;
  db: string;
  table: string;
  schemaVersion: string;
}

export interface ChangeEvent {
  op: Op;
  before: Row | null;
  after: Row | null;
  /** Primary-key values as a JSON array (see encodeKey). */
  key: string;
  tsMs: number;
  pos: Position;
  tx: string | null;
  source: EventSource;
}

/** The Avro type of one column (always nullable) and the name of its MySQL type for readers. */
export function columnAvroType(c: ColumnDef): AvroSchema {
  switch (c.type) {
    case 'tinyint':
    case 'smallint':
    case 'mediumint':
    case 'year':
      return 'int';
    case 'int':
      return c.unsigned ? 'long' : 'int';
    case 'bigint':
      return c.unsigned ? { type: 'bytes', logicalType: 'decimal', precision: 20, scale: 0 } : 'long';
    case 'decimal':
      return { type: 'bytes', logicalType: 'decimal', precision: c.precision ?? 10, scale: c.scale ?? 0 };
    case 'float':
      return 'float';
    case 'double':
      return 'double';
    case 'date':
    case 'time':
    case 'datetime':
    case 'timestamp':
    case 'char':
    case 'varchar':
    case 'tinytext':
    case 'text':
    case 'mediumtext':
    case 'longtext':
    case 'json':
    case 'enum':
    case 'set':
      return 'string';
    case 'bit':
    case 'binary':
    case 'varbinary':
    case 'tinyblob':
    case 'blob':
    case 'mediumblob':
    case 'longblob':
    case 'geometry':
      return 'bytes';
  }
}

/** MySQL column names may hold any character; Avro names may not. Invalid ones are spelled safely. */
export function avroFieldName(column: string, taken: Set<string>): string {
  let name = column.replace(/[^A-Za-z0-9_]/g, '_');
  if (!/^[A-Za-z_]/.test(name)) name = `_${name}`;
  let candidate = name;
  for (let i = 2; taken.has(candidate); i++) candidate = `${name}_${i}`;
  taken.add(candidate);
  return candidate;
}

function columnDescription(c: ColumnDef): string {
  const parts: string[] = [c.type];
  if (c.type === 'decimal') parts[0] = `decimal(${c.precision},${c.scale})`;
  if (c.fsp) parts[0] = `${c.type}(${c.fsp})`;
  if (c.type === 'bit') parts[0] = `bit(${c.bits})`;
  if (c.unsigned) parts.push('unsigned');
  return parts.join(' ');
}

/** The row record of a table: one nullable field per column, in column order. */
export function rowSchema(table: TableSchema): { schema: Record<string, unknown>; fields: string[] } {
  const taken = new Set<string>();
  const fields = table.columns.map((c) => avroFieldName(c.name, taken));
  const schema = {
    type: 'record',
    name: 'Row',
    namespace: 'tidemark',
    'tidemark.table': `${table.db}.${table.table}`,
    'tidemark.key': keyColumns(table),
    fields: table.columns.map((c, i) => ({
      name: fields[i],
      type: ['null', columnAvroType(c)],
      default: null,
      'tidemark.column': c.name,
      'tidemark.type': columnDescription(c),
      ...(c.values ? { 'tidemark.values': c.values } : {}),
    })),
  };
  return { schema, fields: fields };
}

/** The whole envelope schema of a table: schemas/envelope.avsc with the table's row record inside. */
export function envelopeSchema(table: TableSchema): Record<string, unknown> {
  const envelope = loadSchemaFile('envelope');
  const { schema: row } = rowSchema(table);
  const fields = (envelope.fields as Record<string, unknown>[]).map((f) => {
    if (f.name === 'before') return { ...f, type: ['null', row] };
    if (f.name === 'after') return { ...f, type: ['null', 'tidemark.Row'] };
    return f;
  });
  return { ...envelope, fields };
}

/** Fingerprint of a schema: the first 16 hex digits of the SHA-256 of its JSON. */
export function schemaFingerprint(schema: Record<string, unknown>): string {
  return createHash('sha256').update(JSON.stringify(schema)).digest('hex').slice(0, 16);
}

/** Primary-key values as one stable string: a JSON array, bigint as digits, bytes as 0x-hex. */
export function encodeKey(values: readonly RowValue[]): string {
  return JSON.stringify(
    values.map((v) =>
      typeof v === 'bigint' ? v.toString() : Buffer.isBuffer(v) ? `0x${v.toString('hex')}` : v,
    ),
  );
}

/** Longs are written from numbers or bigints and always read back as bigints. */
interface AvroEnvelope {
  op: Op;
  before: Record<string, RowValue> | null;
  after: Record<string, RowValue> | null;
  key: string;
  ts_ms: bigint | number;
  pos: { file: bigint | number; offset: bigint | number; row: bigint | number; gtid: string | null };
  tx: string | null;
  source: { server_id: bigint | number; db: string; table: string; schema_version: string };
}

/** Encodes and decodes one table's change events at one schema version. */
export class TableCodec {
  readonly schema: Record<string, unknown>;
  readonly version: string;
  readonly table: TableSchema;
  readonly keyColumns: readonly string[];
  private readonly type: AvroType;
  /** The envelope without its last field, `source`, which is the same for every event of one source. */
  private readonly head: AvroType;
  private readonly sourceType: AvroType;
  private source: { serverId: number; bytes: Buffer } | undefined;
  private readonly scratch: Omit<AvroEnvelope, 'source'> = {
    op: 'c',
    before: null,
    after: null,
    key: '',
    ts_ms: 0,
    pos: { file: 0, offset: 0, row: 0, gtid: null },
    tx: null,
  };
  private readonly columns: readonly string[];
  private readonly fields: readonly string[];
  private readonly renamed: boolean;

  constructor(table: TableSchema) {
    this.table = table;
    this.schema = envelopeSchema(table);
    this.version = schemaFingerprint(this.schema);
    this.type = avroType(this.schema as AvroSchema);
    const fields = this.schema.fields as { name: string; type: AvroSchema }[];
    const last = fields[fields.length - 1];
    if (last?.name !== 'source') {
      throw new TidemarkError('INTERNAL', 'the envelope schema must end with its source field');
    }
    this.head = avroType({ ...this.schema, fields: fields.slice(0, -1) } as AvroSchema);
    this.sourceType = avroType(last.type);
    this.columns = table.columns.map((c) => c.name);
    this.fields = rowSchema(table).fields;
    this.renamed = this.fields.some((f, i) => f !== this.columns[i]);
    this.keyColumns = keyColumns(table);
  }

  /** A codec for schema JSON read back from the archive or the schemas topic. */
  static fromSchema(schema: Record<string, unknown>): TableCodec {
    const row = (
      (schema.fields as Record<string, unknown>[]).find((f) => f.name === 'before')?.type as unknown[]
    )[1] as Record<string, unknown>;
    const [db = '', table = ''] = String(row['tidemark.table']).split(/\.(.*)/s);
    const codec = new TableCodec({
      db,
      table,
      columns: (row.fields as Record<string, unknown>[]).map((f) => ({
        name: String(f['tidemark.column']),
        ...descriptionToColumn(String(f['tidemark.type']), f['tidemark.values'] as string[] | undefined),
      })),
      primaryKey: row['tidemark.key'] as string[],
    });
    if (codec.version !== schemaFingerprint(schema)) {
      throw new TidemarkError(
        'INTERNAL',
        `schema of ${db}.${table} does not round-trip to the same fingerprint`,
      );
    }
    return codec;
  }

  keyOf(row: Row): string {
    if (this.keyColumns.length === 1) {
      // The usual single integer key, without the array and JSON.stringify of encodeKey (same text).
      const v = row[this.keyColumns[0]!];
      if (typeof v === 'bigint') return `["${v}"]`;
      if (typeof v === 'number' && Number.isSafeInteger(v)) return `[${v}]`;
    }
    return encodeKey(this.keyColumns.map((c) => row[c] ?? null));
  }

  encode(event: ChangeEvent): Buffer {
    const envelope: AvroEnvelope = {
      op: event.op,
      before: event.before && this.toFields(event.before),
      after: event.after && this.toFields(event.after),
      key: event.key,
      ts_ms: event.tsMs,
      pos: {
        file: event.pos.file,
        offset: event.pos.offset,
        row: event.pos.row,
        gtid: event.pos.gtid ?? null,
      },
      tx: event.tx,
      source: {
        server_id: event.source.serverId,
        db: event.source.db,
        table: event.source.table,
        schema_version: event.source.schemaVersion,
      },
    };
    return this.type.toBuffer(envelope);
  }

  /**
   * Writes the event's Avro bytes (the same as `encode`, which stays the plain whole-envelope encoding its
   * tests compare with) into `buf` at `pos`. Returns the end, or, when
   * `buf` is too short, minus the number of bytes missing.
   */
  encodeInto(event: ChangeEvent, buf: Buffer, pos: number): number {
    const source = this.sourceBytes(event.source);
    // One envelope object, refilled for every event: the encoder only reads it, synchronously.
    const head = this.scratch;
    head.op = event.op;
    head.before = event.before && this.toFields(event.before);
    head.after = event.after && this.toFields(event.after);
    head.key = event.key;
    head.ts_ms = event.tsMs;
    head.pos.file = event.pos.file;
    head.pos.offset = event.pos.offset;
    head.pos.row = event.pos.row;
    head.pos.gtid = event.pos.gtid ?? null;
    head.tx = event.tx;
    const end = this.head.encode(head, buf, pos);
    head.before = null;
    head.after = null;
    if (end < 0) return end - source.length;
    if (end + source.length > buf.length) return buf.length - (end + source.length);
    buf.set(source, end);
    return end + source.length;
  }

  private sourceBytes(source: EventSource): Buffer {
    const usual =
      source.db === this.table.db &&
      source.table === this.table.table &&
      source.schemaVersion === this.version;
    if (usual && this.source?.serverId === source.serverId) return this.source.bytes;
    const bytes = this.sourceType.toBuffer({
      server_id: source.serverId,
      db: source.db,
      table: source.table,
      schema_version: source.schemaVersion,
    });
    if (usual) this.source = { serverId: source.serverId, bytes };
    return bytes;
  }

  decode(buf: Buffer): ChangeEvent {
    return this.fromEnvelope(this.type.fromBuffer(buf) as AvroEnvelope);
  }

  /** Decodes one record at `offset` of a buffer of concatenated records; returns the event and the next offset. */
  decodeAt(buf: Buffer, offset: number): { event: ChangeEvent; next: number } {
    const decoded = this.type.decode(buf, offset);
    const value: unknown = decoded.value;
    const next = decoded.offset;
    if (next < 0) throw new TidemarkError('OBJECT_CORRUPT', 'a record runs past the end of its block');
    return { event: this.fromEnvelope(value as AvroEnvelope), next };
  }

  /** For readers of Avro container files, which decode records themselves. */
  fromEnvelope(e: AvroEnvelope): ChangeEvent {
    const pos: Position =
      e.pos.gtid === null
        ? { file: Number(e.pos.file), offset: Number(e.pos.offset), row: Number(e.pos.row) }
        : {
            file: Number(e.pos.file),
            offset: Number(e.pos.offset),
            row: Number(e.pos.row),
            gtid: e.pos.gtid,
          };
    return {
      op: e.op,
      before: e.before && this.fromFields(e.before),
      after: e.after && this.fromFields(e.after),
      key: e.key,
      tsMs: Number(e.ts_ms),
      pos,
      tx: e.tx,
      source: {
        serverId: Number(e.source.server_id),
        db: e.source.db,
        table: e.source.table,
        schemaVersion: e.source.schema_version,
      },
    };
  }

  private toFields(row: Row): Record<string, RowValue> {
    if (!this.renamed) return row;
    const out: Record<string, RowValue> = {};
    this.columns.forEach((c, i) => (out[this.fields[i] as string] = row[c] ?? null));
    return out;
  }

  /** Decoded records are fresh objects: taken as they are unless fields were renamed. */
  private fromFields(record: Record<string, RowValue>): Row {
    if (!this.renamed) return record;
    const out: Row = {};
    this.fields.forEach((f, i) => (out[this.columns[i] as string] = record[f] ?? null));
    return out;
  }
}

/** Inverse of columnDescription, for schemas read back from storage. */
function descriptionToColumn(description: string, values: string[] | undefined): Omit<ColumnDef, 'name'> {
  const unsigned = description.endsWith(' unsigned');
  const head = unsigned ? description.slice(0, -' unsigned'.length) : description;
  const m = /^([a-z]+)(?:\((\d+)(?:,(\d+))?\))?$/.exec(head);
  if (!m) throw new TidemarkError('INTERNAL', `unreadable column type "${description}" in a stored schema`);
  const type = m[1] as ColumnDef['type'];
  const a = m[2] === undefined ? undefined : Number(m[2]);
  const b = m[3] === undefined ? undefined : Number(m[3]);
  return {
    type,
    ...(unsigned ? { unsigned } : {}),
    ...(type === 'decimal' ? { precision: a, scale: b } : {}),
    ...(type === 'bit' ? { bits: a } : {}),
    ...((type === 'time' || type === 'datetime' || type === 'timestamp') && a ? { fsp: a } : {}),
    ...(values ? { values } : {}),
  };
}
