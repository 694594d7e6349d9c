// Chat-like traffic in small transactions (inserts, edits, deletes of one table), for the fault tests;
// counts the row changes it committed.

import type mysql from 'mysql2/promise';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The statement (SQL and parameters) of each kind of change, for one table keyed by an integer id. */
export interface RowStatements {
  insert(id: number): [string, unknown[]];
  update(id: number): [string, unknown[]];
  delete(id: number): [string, unknown[]];
}

export class Workload {
  committed = 0;
  private stopped = false;
  private nextId: number;
  private readonly live: number[] = [];
  private done: Promise<void> = Promise.resolve();

  /** Transactions that failed (the source restarting) and were given up; their changes never happened. */
  failed = 0;
  private readonly reconnect: (() => Promise<mysql.Connection>) | undefined;

  /**
   * `existing` rows with ids 1…existing are already there; new ones start at `firstNewId`. With `reconnect`,
   * a lost connection (the source restarting) is replaced and the traffic goes on.
   */
  constructor(
    private conn: mysql.Connection,
    private readonly statements: RowStatements,
    {
      existing = 0,
      firstNewId = 1_000_000,
      reconnect,
    }: { existing?: number; firstNewId?: number; reconnect?: () => Promise<mysql.Connection> } = {},
  ) {
    this.nextId = firstNewId;
    this.reconnect = reconnect;
    for (let i = 1; i <= existing; i++) this.live.push(i);
  }

  start(opsPerSecond: number): void {
    this.stopped = false;
    this.done = this.loop(opsPerSecond);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }

  private async loop(opsPerSecond: number): Promise<void> {
    while (!this.stopped) {
      try {
        await this.transaction(opsPerSecond);
      } catch (err) {
        if (!this.reconnect) throw err;
        this.failed++;
        for (;;) {
          await sleep(500);
          if (this.stopped) return;
          try {
            this.conn = await this.reconnect();
            break;
          } catch {
            // the source is still down
          }
        }
      }
    }
  }

  private async transaction(opsPerSecond: number): Promise<void> {
    const started = Date.now();
    const statements = 1 + Math.floor(Math.random() * 4);
    await this.conn.query('BEGIN');
    for (let s = 0; s < statements; s++) {
      const dice = Math.random();
      if (dice < 0.5 || this.live.length < 10) {
        const id = this.nextId++;
        await this.conn.query(...this.statements.insert(id));
        this.live.push(id);
      } else if (dice < 0.85) {
        const id = this.live[Math.floor(Math.random() * this.live.length)] as number;
        await this.conn.query(...this.statements.update(id));
      } else {
        const id = this.live.splice(Math.floor(Math.random() * this.live.length), 1)[0] as number;
        await this.conn.query(...this.statements.delete(id));
      }
    }
    await this.conn.query('COMMIT');
    this.committed += statements;
    const pause = (statements * 1000) / opsPerSecond - (Date.now() - started);
    if (pause > 0) await sleep(pause);
  }
}
