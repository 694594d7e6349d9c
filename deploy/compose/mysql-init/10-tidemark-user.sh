#!/bin/bash
# First start of the mysql service only (empty data directory): the least-privilege capture user, as
# tidemark capture checks it at start. The MySQL image runs (or sources) this file with the root
# password set and the server listening on its socket only.
#   REPLICATION SLAVE, REPLICATION CLIENT  read the binlog, SHOW MASTER STATUS, SHOW BINARY LOGS
#   RELOAD                                 the initial snapshot's brief FLUSH TABLES WITH READ LOCK (MySQL)
#   SELECT on chat.*                       the snapshot's reads, and seeing which tables exist
# Capture's leadership lock (GET_LOCK) needs no privilege.
MYSQL_PWD="${MYSQL_ROOT_PASSWORD}" mysql --user=root <<SQL
CREATE DATABASE IF NOT EXISTS chat CHARACTER SET utf8mb4 COLLATE utf8mb4_0900_ai_ci;
CREATE USER IF NOT EXISTS 'tidemark_repl'@'%' IDENTIFIED BY '${TIDEMARK_SOURCE_PASSWORD}';
GRANT REPLICATION SLAVE, REPLICATION CLIENT, RELOAD ON *.* TO 'tidemark_repl'@'%';
GRANT SELECT ON chat.* TO 'tidemark_repl'@'%';
SQL
