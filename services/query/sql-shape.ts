// What a query asks of the archive, read from DuckDB's own parse tree (json_serialize_sql): which tables it
// names, and for each reference of a change table the simple WHERE predicates that bound the files it needs.
// Only conditions every answer row must meet are taken (top-level AND, comparisons of a column with a
// constant, BETWEEN, IN), so skipping the files they exclude never changes a result.

export type Literal =
  | { kind: 'number'; text: string }
  | { kind: 'string'; text: string }
  /** A TIMESTAMP or DATE constant, as written (no zone: UTC). */
  | { kind: 'time'; text: string };

export type CompareOp = '=' | '<' | '<=' | '>' | '>=';

export interface Predicate {
  /** Lower-cased column name. */
  column: string;
  op: CompareOp;
  value: Literal;
  /** The predicate as the query wrote it, for --explain. */
  text: string;
}

export interface TableReference {
  schema: string;
  name: string;
  /** Conditions this reference's rows must meet; empty when every file may hold an answer. */
  predicates: Predicate[];
}

type Node = Record<string, unknown>;

const OPS: Record<string, CompareOp> = {
  COMPARE_EQUAL: '=',
  COMPARE_LESSTHAN: '<',
  COMPARE_LESSTHANOREQUALTO: '<=',
  COMPARE_GREATERTHAN: '>',
  COMPARE_GREATERTHANOREQUALTO: '>=',
};
const FLIP: Record<CompareOp, CompareOp> = { '=': '=', '<': '>', '<=': '>=', '>': '<', '>=': '<=' };
const NUMERIC = new Set([
  'TINYINT',
  'SMALLINT',
  'INTEGER',
  'BIGINT',
  'HUGEINT',
  'UTINYINT',
  'USMALLINT',
  'UINTEGER',
  'UBIGINT',
  'UHUGEINT',
  'FLOAT',
  'DOUBLE',
  'DECIMAL',
]);

const isNode = (v: unknown): v is Node => typeof v === 'object' && v !== null && !Array.isArray(v);

function walk(v: unknown, visit: (n: Node) => void): void {
  if (Array.isArray(v)) for (const x of v) walk(x, visit);
  else if (isNode(v)) {
    visit(v);
    for (const x of Object.values(v)) walk(x, visit);
  }
}

/** A constant, or a constant cast to a type (TIMESTAMP '…', DATE '…', '…'::TIMESTAMP). */
export function literalOf(n: unknown): Literal | undefined {
  if (!isNode(n)) return undefined;
  if (n.class === 'CONSTANT') {
    const value = n.value as {
      type: { id: string; type_info?: { scale?: number } };
      is_null: boolean;
      value: unknown;
    };
    if (value.is_null) return undefined;
    const id = value.type.id;
    if (id === 'VARCHAR') return { kind: 'string', text: String(value.value) };
    if (id === 'DECIMAL') {
      // Decimal constants arrive as their unscaled integer and the scale.
      const scale = value.type.type_info?.scale ?? 0;
      // The parse tree is JSON: an unscaled value beyond 2^53 arrived rounded, so it bounds nothing.
      if (typeof value.value !== 'number' || !Number.isSafeInteger(value.value)) return undefined;
      const digits = String(value.value);
      const negative = digits.startsWith('-');
      const abs = (negative ? digits.slice(1) : digits).padStart(scale + 1, '0');
      const text = scale === 0 ? abs : `${abs.slice(0, -scale)}.${abs.slice(-scale)}`;
      return { kind: 'number', text: negative ? `-${text}` : text };
    }
    if (NUMERIC.has(id)) {
      if (typeof value.value !== 'number' || !Number.isFinite(value.value)) return undefined;
      if (id !== 'FLOAT' && id !== 'DOUBLE' && !Number.isSafeInteger(value.value)) return undefined;
      return { kind: 'number', text: String(value.value) };
    }
    return undefined;
  }
  if (n.class === 'CAST' && n.try_cast !== true) {
    const inner = literalOf(n.child);
    const to = (n.cast_type as { id: string }).id;
    if (!inner) return undefined;
    if (to === 'TIMESTAMP' || to === 'DATE' || to === 'TIMESTAMP_MS' || to === 'TIMESTAMP_NS') {
      if (inner.kind !== 'string') return undefined;
      // A DATE cast drops the time of day: '2026-03-01 10:00'::DATE is midnight.
      return { kind: 'time', text: to === 'DATE' ? inner.text.trim().slice(0, 10) : inner.text };
    }
    if (to === 'VARCHAR') return inner.kind === 'string' ? inner : undefined;
    if (NUMERIC.has(to)) return inner.kind === 'number' ? inner : undefined;
  }
  return undefined;
}

function columnOf(
  n: unknown,
): { schema: string | undefined; qualifier: string | undefined; column: string } | undefined {
  if (!isNode(n) || n.class !== 'COLUMN_REF') return undefined;
  const names = (n.column_names as string[]).map((s) => s.toLowerCase());
  if (names.length === 1) return { schema: undefined, qualifier: undefined, column: names[0] as string };
  return {
    // schema.table.column (catalog.schema.table.column): the schema must match too.
    schema: names.length >= 3 ? names[names.length - 3] : undefined,
    qualifier: names[names.length - 2],
    column: names[names.length - 1] as string,
  };
}

const show = (l: Literal) => (l.kind === 'number' ? l.text : `'${l.text}'`);

/** The AND-ed comparisons of a WHERE clause, each with the column's qualifier as written. */
type Qualified = { schema: string | undefined; qualifier: string | undefined; p: Predicate };

function conjuncts(where: unknown): Qualified[] {
  if (!isNode(where)) return [];
  if (where.type === 'CONJUNCTION_AND') return (where.children as unknown[]).flatMap(conjuncts);
  const out: Qualified[] = [];
  const add = (col: ReturnType<typeof columnOf>, op: CompareOp, value: Literal) => {
    if (!col) return;
    out.push({
      schema: col.schema,
      qualifier: col.qualifier,
      p: { column: col.column, op, value, text: `${col.column} ${op} ${show(value)}` },
    });
  };
  const op = OPS[where.type as string];
  if (op && where.class === 'COMPARISON') {
    const l = literalOf(where.right);
    const r = literalOf(where.left);
    if (l) add(columnOf(where.left), op, l);
    else if (r) add(columnOf(where.right), FLIP[op], r);
  } else if (where.type === 'COMPARE_BETWEEN') {
    const lo = literalOf(where.lower);
    const hi = literalOf(where.upper);
    const col = columnOf(where.input);
    if (lo) add(col, '>=', lo);
    if (hi) add(col, '<=', hi);
  } else if (where.type === 'COMPARE_IN') {
    const [input, ...list] = where.children as unknown[];
    const values = list.map(literalOf);
    const col = columnOf(input);
    if (col && values.length > 0 && values.every((v) => v?.kind === 'number')) {
      const nums = (values as Literal[]).map((v) => v.text);
      // Bounds of the list; files outside [min, max] cannot hold any of its values.
      const sorted = [...nums].sort((a, b) => Number(a) - Number(b));
      add(col, '>=', { kind: 'number', text: sorted[0] as string });
      add(col, '<=', { kind: 'number', text: sorted[sorted.length - 1] as string });
    }
  }
  return out;
}

/** Base tables under a FROM clause (through joins), with the names a column may be qualified by. */
function baseTables(from: unknown): Node[] {
  if (!isNode(from)) return [];
  if (from.type === 'BASE_TABLE') return [from];
  if (from.type === 'JOIN') return [...baseTables(from.left), ...baseTables(from.right)];
  return [];
}

/** Every table reference of a statement tree, with the WHERE predicates that bound it. */
export function tableReferences(statements: unknown): TableReference[] {
  const predicates = new Map<Node, Predicate[]>();
  const tables: Node[] = [];
  walk(statements, (n) => {
    if (n.type === 'BASE_TABLE') tables.push(n);
    if (n.type !== 'SELECT_NODE') return;
    const bases = baseTables(n.from_table);
    if (bases.length === 0) return;
    for (const { schema, qualifier, p } of conjuncts(n.where_clause)) {
      const schemaOf = (b: Node) => String(b.schema_name).toLowerCase() || 'main';
      const target =
        qualifier === undefined
          ? bases.length === 1
            ? bases[0]
            : undefined
          : bases.find(
              (b) =>
                (schema === undefined && b.alias !== '' && String(b.alias).toLowerCase() === qualifier) ||
                (b.alias === '' &&
                  String(b.table_name).toLowerCase() === qualifier &&
                  (schema === undefined || schemaOf(b) === schema)),
            );
      if (!target) continue;
      const list = predicates.get(target) ?? [];
      list.push(p);
      predicates.set(target, list);
    }
  });
  return tables.map((t) => ({
    schema: String(t.schema_name),
    name: String(t.table_name),
    predicates: predicates.get(t) ?? [],
  }));
}

/** The names a statement tree gives its common table expressions (they shadow tables of the same name). */
export function cteNames(statements: unknown): Set<string> {
  const names = new Set<string>();
  walk(statements, (n) => {
    const map = (n.cte_map as { map?: { key: string }[] } | undefined)?.map;
    for (const entry of map ?? []) names.add(entry.key.toLowerCase());
  });
  return names;
}
