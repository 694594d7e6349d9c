import ZongJi from '@vlasky/zongji';
import mysql from 'mysql2/promise';
import { localServices } from './local-services.js';
const s = localServices().mysql;
const admin = await mysql.createConnection({ host: s.host, port: s.port, user: s.adminUser, password: s.adminPassword, multipleStatements: true });
await admin.query(`DROP DATABASE IF EXISTS probe; CREATE DATABASE probe; USE probe;
CREATE TABLE t (
 id BIGINT UNSIGNED PRIMARY KEY, ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, mi MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT,
 d DECIMAL(30,10), d2 DECIMAL(5,2), f FLOAT, db DOUBLE, bt BIT(10), bt64 BIT(64), dt DATE, tm TIME(3), tmn TIME, dtm DATETIME(6), dtm0 DATETIME, ts TIMESTAMP(6) NULL, y YEAR,
 c CHAR(5), vc VARCHAR(100), tx TEXT, lat VARCHAR(20) CHARACTER SET latin1, gbk VARCHAR(20) CHARACTER SET gbk, bn BINARY(4), vb VARBINARY(10), bl BLOB, js JSON, e ENUM('a','in-progress',''), st SET('x','y','z'), g GEOMETRY, pt POINT
) CHARSET utf8mb4;
GRANT SELECT ON probe.* TO '${s.user}'@'127.0.0.1';`);
const z = new ZongJi({ host: s.host, port: s.port, user: s.user, password: s.password, dateStrings: true });
z.on('binlog', (e: any) => {
  const n = e.getEventName();
  if (n === 'tablemap') { console.log('TABLEMAP', e.tableName, JSON.stringify({types: e.columnTypes, meta: e.columnsMetadata, names: e.columnNames, pk: e.primaryKey, sign: e.signedness, self: e.hasSelfDescribingMetadata?.(), amb: e.hasAmbiguousTemporalColumns?.()})); console.log('SCHEMAS', JSON.stringify(e.tableMap[e.tableId].columnSchemas)); }
  else if (n.endsWith('rows')) { for (const r of e.rows) console.log('ROW', n, JSON.stringify(r, (k, v) => typeof v === 'bigint' ? `BIGINT:${v}` : v), Object.entries(r.after ?? r).map(([k, v]: any) => `${k}:${typeof v}${Buffer.isBuffer(v) ? ':buf' : ''}`).join(' ')); }
  else console.log(n, e.nextPosition, e.gtid ?? '');
});
z.on('error', (e: any) => console.log('ERR', e));
await new Promise<void>((r) => { z.on('ready', () => r()); z.start({ serverId: 777, startAtEnd: true, includeSchema: { probe: true } , includeEvents: ['tablemap','writerows','updaterows','deleterows','xid','rotate','query','mariadbgtid','heartbeat']}); });
await admin.query(`SET time_zone='+08:00'; INSERT INTO probe.t VALUES (18446744073709551615, -128, 255, -32768, 16777215, -2147483648, 4294967295, -9223372036854775808,
 12345678901234567890.0123456789, -999.99, 3.14159, 2.718281828459045, b'1010101010', b'1111111111111111111111111111111111111111111111111111111111111111', '2024-02-29', '-838:59:58.123', '12:34:56', '2024-03-01 10:03:11.123456', '0000-00-00 00:00:00', '2024-03-01 10:03:11.654321', 2024,
 'ab', '你好 👋 𝄞', REPEAT('x', 3), 'caf\xe9', '中文', x'00ff', x'0001', x'deadbeef', '{"a": [1, 2.50, "z"], "b": null}', 'in-progress', 'x,z', ST_GeomFromText('LINESTRING(0 0,1 1)'), ST_GeomFromText('POINT(1 2)', 4326));
 INSERT INTO probe.t (id, bi, e) VALUES (1, 9007199254740993, ''); UPDATE probe.t SET vc='edit' WHERE id=1; DELETE FROM probe.t WHERE id=1;`);
await new Promise((r) => setTimeout(r, 1500));
z.stop(); await admin.end();
