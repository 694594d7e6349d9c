#!/usr/bin/env bash
# Installs (once, into a cache outside the repository) and runs the real servers tidemark is tested
# against, on loopback only: MariaDB (binlog source), Kafka in KRaft mode, FerretDB (MongoDB protocol)
# and MinIO (S3).
#
#   deploy/local/services.sh install             install what is missing, start nothing
#   deploy/local/services.sh up [service…]       install if needed, start, wait until healthy
#   deploy/local/services.sh down [service…]     stop what this script started (PID files)
#   deploy/local/services.sh status              one line per service
#   deploy/local/services.sh env                 connection settings as shell exports
#   deploy/local/services.sh logs <service>      path of a service's log file
#
# Services: mariadb kafka ferretdb minio. Settings (environment, with defaults):
#   TIDEMARK_CACHE   ~/.cache/tidemark               binaries, jars, Go build cache
#   TIDEMARK_STATE   ~/.local/state/tidemark/local    data, logs, PID files, generated credentials
#   TIDEMARK_MARIADB_PORT=23306  TIDEMARK_KAFKA_PORT=29092  TIDEMARK_KAFKA_CONTROLLER_PORT=29093
#   TIDEMARK_FERRETDB_PORT=27517 TIDEMARK_FERRETDB_DEBUG_PORT=27518
#   TIDEMARK_MINIO_PORT=29000    TIDEMARK_MINIO_CONSOLE_PORT=29001
#   TIDEMARK_HEALTH_TIMEOUT=120  seconds each server may take to become healthy
set -euo pipefail

readonly KAFKA_VERSION=3.9.2
readonly FERRETDB_VERSION=v1.24.2
readonly MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
readonly ALL_SERVICES=(mariadb kafka ferretdb minio)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${TIDEMARK_CACHE:-$HOME/.cache/tidemark}
STATE=${TIDEMARK_STATE:-${XDG_STATE_HOME:-$HOME/.local/state}/tidemark/local}
MARIADB_PORT=${TIDEMARK_MARIADB_PORT:-23306}
KAFKA_PORT=${TIDEMARK_KAFKA_PORT:-29092}
KAFKA_CONTROLLER_PORT=${TIDEMARK_KAFKA_CONTROLLER_PORT:-29093}
FERRETDB_PORT=${TIDEMARK_FERRETDB_PORT:-27517}
FERRETDB_DEBUG_PORT=${TIDEMARK_FERRETDB_DEBUG_PORT:-27518}
MINIO_PORT=${TIDEMARK_MINIO_PORT:-29000}
MINIO_CONSOLE_PORT=${TIDEMARK_MINIO_CONSOLE_PORT:-29001}
HEALTH_TIMEOUT=${TIDEMARK_HEALTH_TIMEOUT:-120}
readonly S3_BUCKET=tidemark-test
readonly S3_REGION=us-east-1

log() { printf '[services] %s\n' "$*" >&2; }
die() {
  printf '[services] error: %s\n' "$*" >&2
  exit 1
}

# ---------------------------------------------------------------------------------------------------
# Small building blocks

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pid_alive() {
  local pidfile=$1 pid
  [[ -s $pidfile ]] || return 1
  pid=$(<"$pidfile")
  kill -0 "$pid" 2>/dev/null
}

# A port that is taken by something this script did not start is an error, named with its setting.
require_free_port() {
  local port=$1 setting=$2 service=$3
  if port_open "$port"; then
    die "$service: port $port on 127.0.0.1 is already in use by another process. Stop that process or choose another port with $setting=<port>."
  fi
}

# wait_healthy <service> <log file> <check command…>: polls the check until it passes or the timeout.
wait_healthy() {
  local service=$1 logfile=$2 pidfile=$3
  shift 3
  local deadline=$((SECONDS + HEALTH_TIMEOUT))
  if ! declare -F "$1" >/dev/null && ! command -v "$1" >/dev/null; then
    die "$service: the health check needs '$1', which is not installed"
  fi
  until "$@" >/dev/null 2>&1; do
    if ! pid_alive "$pidfile"; then
      tail -n 20 "$logfile" >&2 || true
      die "$service exited during start-up; see its log: $logfile"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 20 "$logfile" >&2 || true
      die "$service did not become healthy within ${HEALTH_TIMEOUT}s (TIDEMARK_HEALTH_TIMEOUT); see its log: $logfile"
    fi
    sleep 0.5
  done
}

stop_pidfile() {
  local service=$1 pidfile=$2 pid
  if ! pid_alive "$pidfile"; then
    rm -f "$pidfile"
    log "$service: not running"
    return 0
  fi
  pid=$(<"$pidfile")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 120); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.25
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$service: did not stop within 30s, killing pid $pid"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
  log "$service: stopped"
}

random_secret() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }

# Passwords are generated once per state directory, so none is written in the repository.
credentials() {
  local file=$STATE/credentials.env
  if [[ ! -s $file ]]; then
    mkdir -p "$STATE"
    umask 077
    cat >"$file" <<EOF
MARIADB_ADMIN_PASSWORD=$(random_secret)
MARIADB_REPL_PASSWORD=$(random_secret)
MINIO_SECRET_KEY=$(random_secret)
EOF
  fi
  # shellcheck disable=SC1090
  source "$file"
}

apt_install() {
  log "installing Debian packages: $*"
  if [[ $(id -u) -ne 0 ]]; then
    die "the Debian packages '$*' are missing and installing them needs root; run: sudo apt-get install -y $*"
  fi
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"; } >"$CACHE/apt.log" 2>&1; then
    tail -n 20 "$CACHE/apt.log" >&2
    die "apt-get install $* failed (from the Debian package archive); full output: $CACHE/apt.log"
  fi
}

go_env() {
  export GOMODCACHE=$CACHE/go/mod GOCACHE=$CACHE/go/build GOFLAGS=-buildvcs=false CGO_ENABLED=0
}

# ---------------------------------------------------------------------------------------------------
# MariaDB: Debian's mariadb-server, private datadir, ROW binlog with full metadata.

MARIADB_DIR() { echo "$STATE/mariadb"; }

install_mariadb() {
  local tool missing=()
  for tool in mariadb mariadb-admin mariadb-install-db; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  [[ -x $(mariadb_bin) ]] || missing+=(mariadbd)
  ((${#missing[@]} == 0)) && return 0
  log "mariadb: missing ${missing[*]}"
  apt_install mariadb-server mariadb-client
}

mariadb_bin() {
  if command -v mariadbd >/dev/null 2>&1; then command -v mariadbd; else echo /usr/sbin/mariadbd; fi
}

mariadb_cnf() {
  local d
  d=$(MARIADB_DIR)
  cat >"$d/my.cnf" <<EOF
# Written by deploy/local/services.sh; edits are overwritten at the next 'up'.
[client]
socket=$d/run/mariadb.sock
port=$MARIADB_PORT
default-character-set=utf8mb4

[mariadbd]
datadir=$d/data
socket=$d/run/mariadb.sock
pid-file=$d/run/mariadbd.pid
port=$MARIADB_PORT
bind-address=127.0.0.1
skip-name-resolve
log_error=$d/log/error.log
character-set-server=utf8mb4
collation-server=utf8mb4_unicode_ci
server_id=1
log_bin=$d/binlog/mariadb-bin
binlog_format=ROW
binlog_row_image=FULL
binlog_row_metadata=FULL
max_binlog_size=256M
max_allowed_packet=256M
innodb_buffer_pool_size=512M
innodb_log_file_size=256M
# A local test server: durability per commit is traded for speed (benchmarks write 100k single-row
# transactions). Production sources keep their own settings.
innodb_flush_log_at_trx_commit=2
sync_binlog=0
EOF
}

# The server runs as the invoking user; as root, as root (the state directory usually lives under
# /root, which the mysql user cannot enter).
mariadb_user() { id -un; }

mariadb_sql() { mariadb --defaults-file="$(MARIADB_DIR)/my.cnf" --user=root --batch --skip-column-names "$@"; }

up_mariadb() {
  local d pidfile
  d=$(MARIADB_DIR)
  pidfile=$d/run/mariadbd.pid
  if pid_alive "$pidfile"; then
    log "mariadb: already running (pid $(<"$pidfile"), port $MARIADB_PORT)"
    return 0
  fi
  require_free_port "$MARIADB_PORT" TIDEMARK_MARIADB_PORT mariadb
  install_mariadb
  mkdir -p "$d"/{data,run,log,binlog}
  mariadb_cnf
  if [[ ! -d $d/data/mysql ]]; then
    log "mariadb: initialising datadir $d/data"
    if ! mariadb-install-db --defaults-file="$d/my.cnf" --user="$(mariadb_user)" \
      --auth-root-authentication-method=socket --skip-test-db >"$d/log/install-db.log" 2>&1; then
      die "mariadb: mariadb-install-db failed; see $d/log/install-db.log"
    fi
  fi
  log "mariadb: starting on 127.0.0.1:$MARIADB_PORT"
  # mariadbd rewrites the same pid file with the same pid once it is up.
  nohup "$(mariadb_bin)" --defaults-file="$d/my.cnf" --user="$(mariadb_user)" >>"$d/log/stdout.log" 2>&1 &
  echo $! >"$pidfile"
  : >>"$d/log/error.log"
  wait_healthy mariadb "$d/log/error.log" "$pidfile" mariadb-admin --defaults-file="$d/my.cnf" --user=root ping
  mariadb_users
}

# An admin user for tests and a least-privilege replication user for capture: REPLICATION SLAVE and
# REPLICATION CLIENT only; SELECT is granted per captured database by whoever creates it.
mariadb_users() {
  credentials
  mariadb_sql <<EOF
CREATE USER IF NOT EXISTS 'tidemark_admin'@'127.0.0.1' IDENTIFIED BY '$MARIADB_ADMIN_PASSWORD';
CREATE USER IF NOT EXISTS 'tidemark_admin'@'localhost' IDENTIFIED BY '$MARIADB_ADMIN_PASSWORD';
GRANT ALL PRIVILEGES ON *.* TO 'tidemark_admin'@'127.0.0.1' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON *.* TO 'tidemark_admin'@'localhost' WITH GRANT OPTION;
CREATE USER IF NOT EXISTS 'tidemark_repl'@'127.0.0.1' IDENTIFIED BY '$MARIADB_REPL_PASSWORD';
CREATE USER IF NOT EXISTS 'tidemark_repl'@'localhost' IDENTIFIED BY '$MARIADB_REPL_PASSWORD';
GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'tidemark_repl'@'127.0.0.1';
GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'tidemark_repl'@'localhost';
EOF
}

down_mariadb() { stop_pidfile mariadb "$(MARIADB_DIR)/run/mariadbd.pid"; }

# ---------------------------------------------------------------------------------------------------
# Kafka: broker + controller in one JVM (KRaft), jars resolved from Maven Central by deploy/local/kafka/pom.xml.

KAFKA_HOME() { echo "$CACHE/kafka-$KAFKA_VERSION"; }
KAFKA_DIR() { echo "$STATE/kafka"; }

install_kafka() {
  local home
  home=$(KAFKA_HOME)
  [[ -f $home/.complete ]] && return 0
  command -v java >/dev/null 2>&1 || apt_install default-jre-headless
  command -v mvn >/dev/null 2>&1 || apt_install maven
  log "kafka: resolving Apache Kafka $KAFKA_VERSION broker jars from Maven Central into $home/libs"
  rm -rf "$home"
  mkdir -p "$home"
  if ! mvn -B -q -f "$here/kafka/pom.xml" -Dkafka.version="$KAFKA_VERSION" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$home/libs" >"$home/mvn.log" 2>&1; then
    tail -n 20 "$home/mvn.log" >&2
    die "kafka: resolving org.apache.kafka:kafka_2.13:$KAFKA_VERSION from Maven Central failed; see $home/mvn.log"
  fi
  touch "$home/.complete"
}

kafka_java() {
  local d
  d=$(KAFKA_DIR)
  java -Xms256m -Xmx1g -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$d/log4j.properties" -Dkafka.logs.dir="$d/log" \
    -cp "$(KAFKA_HOME)/libs/*" "$@"
}

# The broker runs in the background, so it is started through nohup, which needs a program, not a function.
kafka_start_broker() {
  local d
  d=$(KAFKA_DIR)
  nohup java -Xms256m -Xmx1g -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$d/log4j.properties" -Dkafka.logs.dir="$d/log" \
    -cp "$(KAFKA_HOME)/libs/*" kafka.Kafka "$d/server.properties" >>"$d/log/stdout.log" 2>&1 &
  echo $! >"$d/kafka.pid"
}

kafka_config() {
  local d
  d=$(KAFKA_DIR)
  cat >"$d/server.properties" <<EOF
# Written by deploy/local/services.sh; edits are overwritten at the next 'up'.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$d/data
num.partitions=1
# tidemark creates its own topics; a typo must not create a new one.
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=8
group.initial.rebalance.delay.ms=0
EOF
  cat >"$d/log4j.properties" <<EOF
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=$d/log/server.log
log4j.appender.file.MaxFileSize=50MB
log4j.appender.file.MaxBackupIndex=2
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
EOF
}

kafka_healthy() {
  port_open "$KAFKA_PORT" && grep -q 'Kafka Server started' "$(KAFKA_DIR)/log/server.log"
}

up_kafka() {
  local d pidfile
  d=$(KAFKA_DIR)
  pidfile=$d/kafka.pid
  if pid_alive "$pidfile"; then
    log "kafka: already running (pid $(<"$pidfile"), port $KAFKA_PORT)"
    return 0
  fi
  require_free_port "$KAFKA_PORT" TIDEMARK_KAFKA_PORT kafka
  require_free_port "$KAFKA_CONTROLLER_PORT" TIDEMARK_KAFKA_CONTROLLER_PORT kafka
  install_kafka
  mkdir -p "$d"/{data,log}
  kafka_config
  if [[ ! -f $d/data/meta.properties ]]; then
    local cluster_id
    cluster_id=$(kafka_java kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)
    log "kafka: formatting storage $d/data (cluster $cluster_id)"
    if ! kafka_java kafka.tools.StorageTool format -t "$cluster_id" -c "$d/server.properties" >"$d/log/format.log" 2>&1; then
      die "kafka: formatting storage failed; see $d/log/format.log"
    fi
  fi
  log "kafka: starting on 127.0.0.1:$KAFKA_PORT (controller $KAFKA_CONTROLLER_PORT)"
  # A restart must not see the previous start's success line.
  [[ -f $d/log/server.log ]] && mv -f "$d/log/server.log" "$d/log/server.log.previous"
  kafka_start_broker
  : >>"$d/log/server.log"
  wait_healthy kafka "$d/log/server.log" "$pidfile" kafka_healthy
}

down_kafka() { stop_pidfile kafka "$(KAFKA_DIR)/kafka.pid"; }

# ---------------------------------------------------------------------------------------------------
# FerretDB 1.x with its SQLite backend. The module is built from the Go module proxy's copy; its source
# archive lacks build/version/version.txt (made by FerretDB's own release task), which is written here.

FERRETDB_DIR() { echo "$STATE/ferretdb"; }

install_ferretdb() {
  local bin=$CACHE/bin/ferretdb-$FERRETDB_VERSION
  [[ -x $bin ]] && return 0
  command -v go >/dev/null 2>&1 || die "ferretdb: the Go toolchain is needed to build FerretDB $FERRETDB_VERSION; install Go 1.22 or newer"
  go_env
  log "ferretdb: building github.com/FerretDB/FerretDB $FERRETDB_VERSION from the Go module proxy"
  mkdir -p "$CACHE/bin" "$CACHE/src"
  local modlog=$CACHE/ferretdb-build.log dir src=$CACHE/src/ferretdb-$FERRETDB_VERSION
  if ! dir=$(cd /tmp && go mod download -json "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" 2>"$modlog" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p') || [[ -z $dir ]]; then
    die "ferretdb: downloading github.com/FerretDB/FerretDB@$FERRETDB_VERSION from the Go module proxy failed; see $modlog"
  fi
  rm -rf "$src"
  cp -r "$dir" "$src"
  chmod -R u+w "$src"
  echo "$FERRETDB_VERSION" >"$src/build/version/version.txt"
  if ! (cd "$src" && go build -trimpath -o "$bin.tmp" ./cmd/ferretdb) >>"$modlog" 2>&1; then
    tail -n 20 "$modlog" >&2
    die "ferretdb: building FerretDB $FERRETDB_VERSION failed; see $modlog"
  fi
  mv "$bin.tmp" "$bin"
}

ferretdb_healthy() {
  port_open "$FERRETDB_PORT" && curl -fsS "http://127.0.0.1:$FERRETDB_DEBUG_PORT/debug/readyz"
}

up_ferretdb() {
  local d pidfile
  d=$(FERRETDB_DIR)
  pidfile=$d/ferretdb.pid
  if pid_alive "$pidfile"; then
    log "ferretdb: already running (pid $(<"$pidfile"), port $FERRETDB_PORT)"
    return 0
  fi
  require_free_port "$FERRETDB_PORT" TIDEMARK_FERRETDB_PORT ferretdb
  require_free_port "$FERRETDB_DEBUG_PORT" TIDEMARK_FERRETDB_DEBUG_PORT ferretdb
  install_ferretdb
  mkdir -p "$d"/{data,state,log}
  log "ferretdb: starting on 127.0.0.1:$FERRETDB_PORT"
  nohup "$CACHE/bin/ferretdb-$FERRETDB_VERSION" --handler=sqlite --sqlite-url="file:$d/data/" \
    --state-dir="$d/state" --listen-addr="127.0.0.1:$FERRETDB_PORT" \
    --debug-addr="127.0.0.1:$FERRETDB_DEBUG_PORT" --telemetry=disable --log-level=warn --log-format=json \
    >>"$d/log/ferretdb.log" 2>&1 &
  echo $! >"$pidfile"
  wait_healthy ferretdb "$d/log/ferretdb.log" "$pidfile" ferretdb_healthy
}

down_ferretdb() { stop_pidfile ferretdb "$(FERRETDB_DIR)/ferretdb.pid"; }

# ---------------------------------------------------------------------------------------------------
# MinIO, built with go install at a pinned pseudo-version (MinIO tags releases outside Go's semver).

MINIO_DIR() { echo "$STATE/minio"; }

install_minio() {
  local bin=$CACHE/bin/minio-$MINIO_VERSION
  [[ -x $bin ]] && return 0
  command -v go >/dev/null 2>&1 || die "minio: the Go toolchain is needed to build MinIO; install Go 1.24 or newer"
  go_env
  log "minio: building github.com/minio/minio@$MINIO_VERSION from the Go module proxy (a few minutes, once)"
  mkdir -p "$CACHE/bin" "$CACHE/gobin"
  if ! (cd /tmp && GOBIN=$CACHE/gobin go install "github.com/minio/minio@$MINIO_VERSION") >"$CACHE/minio-build.log" 2>&1; then
    tail -n 20 "$CACHE/minio-build.log" >&2
    die "minio: go install github.com/minio/minio@$MINIO_VERSION failed (Go module proxy); see $CACHE/minio-build.log"
  fi
  mv "$CACHE/gobin/minio" "$bin"
}

minio_healthy() { curl -fsS "http://127.0.0.1:$MINIO_PORT/minio/health/ready"; }

up_minio() {
  local d pidfile
  d=$(MINIO_DIR)
  pidfile=$d/minio.pid
  credentials
  if pid_alive "$pidfile"; then
    log "minio: already running (pid $(<"$pidfile"), port $MINIO_PORT)"
    return 0
  fi
  require_free_port "$MINIO_PORT" TIDEMARK_MINIO_PORT minio
  require_free_port "$MINIO_CONSOLE_PORT" TIDEMARK_MINIO_CONSOLE_PORT minio
  install_minio
  mkdir -p "$d"/{data,log}
  log "minio: starting on 127.0.0.1:$MINIO_PORT"
  MINIO_ROOT_USER=tidemark MINIO_ROOT_PASSWORD=$MINIO_SECRET_KEY MINIO_BROWSER=off \
    MINIO_UPDATE=off MINIO_CALLHOME_ENABLE=off \
    nohup "$CACHE/bin/minio-$MINIO_VERSION" server "$d/data" --quiet --anonymous \
    --address "127.0.0.1:$MINIO_PORT" --console-address "127.0.0.1:$MINIO_CONSOLE_PORT" \
    >>"$d/log/minio.log" 2>&1 &
  echo $! >"$pidfile"
  wait_healthy minio "$d/log/minio.log" "$pidfile" minio_healthy
  # Create the test bucket with a signed request (curl speaks SigV4); 409 means it exists already.
  local code
  code=$(curl -sS -o "$d/log/bucket.out" -w '%{http_code}' -X PUT \
    --aws-sigv4 "aws:amz:$S3_REGION:s3" --user "tidemark:$MINIO_SECRET_KEY" \
    "http://127.0.0.1:$MINIO_PORT/$S3_BUCKET")
  [[ $code == 200 || $code == 409 ]] || die "minio: creating bucket $S3_BUCKET failed with HTTP $code; see $d/log/bucket.out"
}

down_minio() { stop_pidfile minio "$(MINIO_DIR)/minio.pid"; }

# ---------------------------------------------------------------------------------------------------

pidfile_of() {
  case $1 in
    mariadb) echo "$(MARIADB_DIR)/run/mariadbd.pid" ;;
    kafka) echo "$(KAFKA_DIR)/kafka.pid" ;;
    ferretdb) echo "$(FERRETDB_DIR)/ferretdb.pid" ;;
    minio) echo "$(MINIO_DIR)/minio.pid" ;;
  esac
}

logfile_of() {
  case $1 in
    mariadb) echo "$(MARIADB_DIR)/log/error.log" ;;
    kafka) echo "$(KAFKA_DIR)/log/server.log" ;;
    ferretdb) echo "$(FERRETDB_DIR)/log/ferretdb.log" ;;
    minio) echo "$(MINIO_DIR)/log/minio.log" ;;
  esac
}

port_of() {
  case $1 in
    mariadb) echo "$MARIADB_PORT" ;;
    kafka) echo "$KAFKA_PORT" ;;
    ferretdb) echo "$FERRETDB_PORT" ;;
    minio) echo "$MINIO_PORT" ;;
  esac
}

services_from_args() {
  local s
  if (($# == 0)); then
    printf '%s\n' "${ALL_SERVICES[@]}"
    return
  fi
  for s in "$@"; do
    case $s in
      mariadb | kafka | ferretdb | minio) echo "$s" ;;
      *) die "unknown service '$s'; the services are: ${ALL_SERVICES[*]}" ;;
    esac
  done
}

cmd_status() {
  local s pidfile
  for s in "${ALL_SERVICES[@]}"; do
    pidfile=$(pidfile_of "$s")
    if pid_alive "$pidfile"; then
      printf '%-9s running  pid %-8s 127.0.0.1:%-6s log %s\n' "$s" "$(<"$pidfile")" "$(port_of "$s")" "$(logfile_of "$s")"
    else
      printf '%-9s stopped\n' "$s"
    fi
  done
}

cmd_env() {
  credentials
  cat <<EOF
export TIDEMARK_MYSQL_HOST=127.0.0.1
export TIDEMARK_MYSQL_PORT=$MARIADB_PORT
export TIDEMARK_MYSQL_USER=tidemark_repl
export TIDEMARK_MYSQL_PASSWORD=$MARIADB_REPL_PASSWORD
export TIDEMARK_MYSQL_ADMIN_USER=tidemark_admin
export TIDEMARK_MYSQL_ADMIN_PASSWORD=$MARIADB_ADMIN_PASSWORD
export TIDEMARK_MYSQL_SOCKET=$(MARIADB_DIR)/run/mariadb.sock
export TIDEMARK_KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT
export TIDEMARK_MONGODB_URI=mongodb://127.0.0.1:$FERRETDB_PORT/
export TIDEMARK_S3_ENDPOINT=http://127.0.0.1:$MINIO_PORT
export TIDEMARK_S3_REGION=$S3_REGION
export TIDEMARK_S3_BUCKET=$S3_BUCKET
export TIDEMARK_S3_ACCESS_KEY_ID=tidemark
export TIDEMARK_S3_SECRET_ACCESS_KEY=$MINIO_SECRET_KEY
export TIDEMARK_LOCAL_STATE=$STATE
EOF
}

main() {
  local cmd=${1:-}
  shift || true
  case $cmd in
    install)
      mkdir -p "$CACHE"
      install_mariadb
      install_kafka
      install_ferretdb
      install_minio
      ;;
    up)
      mkdir -p "$CACHE" "$STATE"
      local s
      for s in $(services_from_args "$@"); do "up_$s"; done
      cmd_status
      ;;
    down)
      local s
      for s in $(services_from_args "$@"); do "down_$s"; done
      ;;
    status) cmd_status ;;
    env) cmd_env ;;
    logs)
      [[ $# -eq 1 ]] || die "usage: $0 logs <service>"
      logfile_of "$(services_from_args "$1")"
      ;;
    -h | --help | help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' ;;
    *) die "usage: $0 install|up|down|status|env|logs [service…] (see --help)" ;;
  esac
}

main "$@"
