// Restore into a directory: one file per table (`<db>.<table>.jsonl|csv|avro`) and `restore.json`, which
// records the point restored to. JSON Lines and CSV give every value exactly: BIGINT as digits, DECIMAL
// and temporal values as the text MySQL shows, binary values as base64; CSV tells NULL (empty) from ''
// (quoted).

import {
  createWriteStream,
  existsSync,
  mkdirSync,
  renameSync,
  writeFileSync,
  type WriteStream,
} from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'csv-stringify/sync';
import {
  avroFileEncoder,
  rowSchema,
  TidemarkError,
  type Row,
  type RowValue,
  type TableCodec,
} from '../../core/index.js';
import {
  asideName,
  projectRow,
  type RestoredRow,
  type RestoreSummaryRecord,
  type RestoreTarget,
  type TableSink,
} from './target.js';

export type DirFormat = 'jsonl' | 'csv' | 'avro';

function jsonValue(v: RowValue): string {
  if (v === null) return 'null';
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : JSON.stringify(String(v));
  if (Buffer.isBuffer(v)) return JSON.stringify(v.toString('base64'));
  return JSON.stringify(v);
}

export function jsonLine(row: Row, columns: readonly string[]): string {
  let line = '{';
  for (let i = 0; i < columns.length; i++) {
    const c = columns[i] as string;
    line += `${i === 0 ? '' : ','}${JSON.stringify(c)}:${jsonValue(row[c] ?? null)}`;
  }
  return `${line}}\n`;
}

function csvValue(v: RowValue): string | null {
  if (v === null) return null;
  if (Buffer.isBuffer(v)) return v.toString('base64');
  return String(v);
}

/** NULL is an empty field, an empty string a quoted one (""), so the two stay apart. */
const CSV_OPTIONS = {
  cast: { string: (value: string) => (value === '' ? { value, quoted_empty: true } : value) },
};

/** Writes to a stream, waiting when it asks to. */
function writeTo(out: WriteStream, chunk: string | Buffer): Promise<void> {
  return out.write(chunk) ? Promise.resolve() : new Promise((resolve) => out.once('drain', () => resolve()));
}

function closeStream(out: WriteStream): Promise<void> {
  return new Promise((resolve, reject) => {
    out.on('error', reject);
    out.end(() => resolve());
  });
}

export class DirTarget implements RestoreTarget {
  readonly description: string;

  constructor(
    private readonly dir: string,
    private readonly format: DirFormat,
    private readonly startedMs: number,
  ) {
    this.description = `dir:${dir} (${format})`;
  }

  private file(table: string): string {
    return join(this.dir, `${table}.${this.format}`);
  }

  check(tables: readonly string[], force: boolean): Promise<void> {
    if (!existsSync(this.dir) || force) return Promise.resolve();
    const present = tables.map((t) => this.file(t)).filter((f) => existsSync(f));
    if (existsSync(join(this.dir, 'restore.json'))) present.push(join(this.dir, 'restore.json'));
    if (present.length > 0) {
      return Promise.reject(
        new TidemarkError('TARGET_NOT_EMPTY', `${this.dir} already holds a restore: ${present.join(', ')}`, {
          hint: 'restore into a new directory, or pass --force to replace those files',
        }),
      );
    }
    return Promise.resolve();
  }

  async openTable(table: string, codec: TableCodec, force: boolean): Promise<TableSink> {
    mkdirSync(this.dir, { recursive: true });
    const path = this.file(table);
    let keptAside: string | undefined;
    if (force && existsSync(path)) {
      keptAside = join(this.dir, asideName(`${table}.${this.format}`, this.startedMs));
      renameSync(path, keptAside);
    }
    const out = createWriteStream(path, { flags: 'wx' });
    await new Promise<void>((resolve, reject) => {
      out.once('open', () => resolve());
      out.once('error', (err) =>
        reject(
          new TidemarkError('TARGET_UNAVAILABLE', `cannot write ${path}: ${err.message}`, { cause: err }),
        ),
      );
    });
    const columns = codec.table.columns.map((c) => c.name);
    let rows = 0;
    if (this.format === 'avro') {
      const { schema, fields } = rowSchema(codec.table);
      const encoder = avroFileEncoder(schema, { name: path, metadata: { 'tidemark.table': table } });
      encoder.pipe(out);
      return {
        write: async (batch) => {
          for (const r of batch) {
            const projected = projectRow(r.row, codec);
            const record: Record<string, RowValue> = {};
            columns.forEach((c, i) => (record[fields[i] as string] = projected[c] ?? null));
            if (!encoder.write(record)) await new Promise((resolve) => encoder.once('drain', resolve));
          }
          rows += batch.length;
        },
        end: async () => {
          const closed = new Promise<void>((resolve, reject) => {
            out.on('finish', () => resolve());
            out.on('error', reject);
            encoder.on('error', reject);
          });
          encoder.end();
          await closed;
          return { rows, bytes: out.bytesWritten, location: path, ...(keptAside ? { keptAside } : {}) };
        },
      };
    }
    if (this.format === 'csv') await writeTo(out, stringify([columns]));
    return {
      write: async (batch: readonly RestoredRow[]) => {
        if (this.format === 'jsonl') {
          let text = '';
          for (const r of batch) text += jsonLine(projectRow(r.row, codec), columns);
          await writeTo(out, text);
        } else {
          const records = batch.map((r) => {
            const row = projectRow(r.row, codec);
            return columns.map((c) => csvValue(row[c] ?? null));
          });
          await writeTo(out, stringify(records, CSV_OPTIONS));
        }
        rows += batch.length;
      },
      end: async () => {
        await closeStream(out);
        return { rows, bytes: out.bytesWritten, location: path, ...(keptAside ? { keptAside } : {}) };
      },
    };
  }

  finish(summary: RestoreSummaryRecord): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    writeFileSync(join(this.dir, 'restore.json'), `${JSON.stringify(summary, null, 2)}\n`);
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
