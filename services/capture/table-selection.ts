// Which tables are captured and which of their columns leave the process, and how masked ones look.

import { createHmac } from 'node:crypto';
import { globToRegExp, TidemarkError, type RowValue } from '../core/index.js';

export interface TableId {
  readonly db: string;
  readonly table: string;
}

export function tableName(t: TableId): string {
  return `${t.db}.${t.table}`;
}

export type MaskKind = 'hash' | 'redact' | 'null';

export interface ColumnRules {
  /** Columns dropped before anything leaves the process (e.g. users.password_hash). */
  readonly exclude: readonly string[];
  /** Columns replaced before anything leaves the process (e.g. users.email hashed). */
  readonly mask: Readonly<Record<string, MaskKind>>;
}

export interface SelectionConfig {
  include: readonly string[];
  exclude: readonly string[];
  columns: Readonly<Record<string, ColumnRules>>;
  /** Key of the HMAC-SHA256 used by `hash` masks, so equal values stay joinable but cannot be looked up. */
  maskKey?: string | undefined;
}

function checkPattern(pattern: string, field: string): void {
  const parts = pattern.split('.');
  if (parts.length !== 2 || parts.some((p) => p.length === 0)) {
    throw new TidemarkError('CONFIG_INVALID', `${field}: "${pattern}" is not a db.table pattern`, {
      hint: 'write database and table separated by one dot, with * or ? as wildcards: chat.messages, chat.*, *.users',
    });
  }
}

export class TableSelection {
  private readonly includePatterns: readonly string[];
  private readonly includes: RegExp[];
  private readonly excludes: RegExp[];
  private readonly columns: ReadonlyMap<string, ColumnRules>;
  private readonly maskKey: string | undefined;

  constructor(config: SelectionConfig) {
    config.include.forEach((p) => checkPattern(p, 'source.tables.include'));
    config.exclude.forEach((p) => checkPattern(p, 'source.tables.exclude'));
    this.includePatterns = config.include;
    this.includes = config.include.map(globToRegExp);
    this.excludes = config.exclude.map(globToRegExp);
    this.columns = new Map(Object.entries(config.columns));
    this.maskKey = config.maskKey;
    for (const [name, rules] of this.columns) {
      checkPattern(name, 'source.columns');
      const hashed = Object.entries(rules.mask).filter(([, kind]) => kind === 'hash');
      if (hashed.length > 0 && this.maskKey === undefined) {
        throw new TidemarkError(
          'CONFIG_INVALID',
          `source.columns.${name}.mask hashes ${hashed[0]?.[0]} but no mask key is set`,
          {
            hint: 'set source.maskKey (or source.maskKeyFile) to a secret of 32 or more characters',
          },
        );
      }
    }
  }

  /** True when the table is captured: it matches an include pattern and no exclude pattern. */
  captures(t: TableId): boolean {
    const name = tableName(t);
    let known = this.decided.get(name);
    if (known === undefined) {
      known = this.includes.some((r) => r.test(name)) && !this.excludes.some((r) => r.test(name));
      this.decided.set(name, known);
    }
    return known;
  }

  /** Answers of captures() by table name: asked for every rows event, decided once per table. */
  private readonly decided = new Map<string, boolean>();

  rulesFor(t: TableId): ColumnRules {
    return this.columns.get(tableName(t)) ?? { exclude: [], mask: {} };
  }

  /** Include patterns without wildcards, as tables (they must exist and be readable). */
  literalTables(): TableId[] {
    return this.includePatterns
      .filter((p) => !/[*?]/.test(p))
      .map((p) => {
        const [db = '', table = ''] = p.split('.');
        return { db, table };
      })
      .filter((t) => this.captures(t));
  }

  /** The databases any include pattern can match, for binlog filtering at the client (undefined: any). */
  databases(): string[] | undefined {
    const dbs = this.includePatterns.map((pattern) => pattern.split('.')[0] ?? '');
    return dbs.some((db) => /[*?]/.test(db)) ? undefined : [...new Set(dbs)];
  }

  /** The masked value of a column, or the value itself when the column has no mask. */
  maskValue(kind: MaskKind, value: RowValue): RowValue {
    if (value === null || value === undefined) return null;
    switch (kind) {
      case 'null':
        return null;
      case 'redact':
        return '[redacted]';
      case 'hash': {
        const bytes = Buffer.isBuffer(value) ? value : Buffer.from(value.toString(), 'utf8');
        return createHmac('sha256', this.maskKey ?? '')
          .update(bytes)
          .digest('hex');
      }
    }
  }
}
