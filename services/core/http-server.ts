// The HTTP face of every daemon: Prometheus metrics at /metrics and a health report at /healthz.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { TidemarkError } from './errors.js';

export interface Health {
  /** Healthy means doing its job: streaming, or waiting as a standby on purpose. */
  healthy: boolean;
  status: string;
  details?: Record<string, unknown>;
}

export interface DaemonHttpServer {
  server: Server;
  port: number;
  close(): Promise<void>;
}

export async function startHttpServer(options: {
  host: string;
  port: number;
  registry: Registry;
  health: () => Health;
}): Promise<DaemonHttpServer> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/metrics') {
      options.registry
        .metrics()
        .then((text) => {
          res.writeHead(200, { 'content-type': options.registry.contentType });
          res.end(text);
        })
        .catch((err: Error) => {
          res.writeHead(500);
          res.end(err.message);
        });
      return;
    }
    if (path === '/healthz') {
      const health = options.health();
      res.writeHead(health.healthy ? 200 : 503, { 'content-type': 'application/json' });
      res.end(JSON.stringify(health));
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found: try /metrics or /healthz\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new TidemarkError(
          'CONFIG_INVALID',
          `cannot listen on ${options.host}:${options.port}: ${err.message}`,
          {
            cause: err,
            hint:
              err.code === 'EADDRINUSE'
                ? 'another process uses that port; set http.port (0 picks a free one)'
                : undefined,
          },
        ),
      ),
    );
    server.listen(options.port, options.host, resolve);
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
