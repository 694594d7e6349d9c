#!/bin/bash
# First start of the mongo service only (empty data directory): the user tidemark tier and restore
# connect as. readWriteAnyDatabase, because a restore writes into a new database of its own
# (tidemark_restore_<time>) besides the hot replica's `tidemark`. The password is read by mongosh from
# the environment, never written into a command line.
mongosh --quiet --host 127.0.0.1 \
  --username "${MONGO_INITDB_ROOT_USERNAME}" --password "${MONGO_INITDB_ROOT_PASSWORD}" \
  --authenticationDatabase admin admin \
  --eval "db.createUser({ user: 'tidemark', pwd: process.env.TIDEMARK_MONGO_PASSWORD, roles: [{ role: 'readWriteAnyDatabase', db: 'admin' }] })"
