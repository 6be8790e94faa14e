#!/usr/bin/env bash
# A local Apache Spark for loadbay's spark destination: the Thrift JDBC/ODBC server (HiveThriftServer2)
# that the DB-API driver talks to, on a standalone master and one worker (MODE=standalone, what CI runs)
# or on an in-process local[2] executor (MODE=local, half the memory). Everything binds to 127.0.0.1; logs,
# pid files, the warehouse and the Derby metastore live under .loadbay/spark (ignored by git).
#
#   scripts/spark.sh start    # starts what is not running, waits until a DB-API connection answers
#   scripts/spark.sh stop     # stops every process this script started (by its pid file)
#   scripts/spark.sh status   # which processes run, and whether the Thrift server answers
#
# Settings (environment): LOADBAY_SPARK_MODE (standalone | local), LOADBAY_SPARK_PORT (Thrift, 10000),
# LOADBAY_SPARK_MASTER_PORT (7077), LOADBAY_SPARK_WAIT (seconds to wait for an answer, 240),
# LOADBAY_SPARK_DIR (state folder), PYTHON (the interpreter with the `spark` extra: .venv/bin/python),
# LOADBAY_SPARK_EXTRA_CONF (more spark-submit options for the Thrift server, e.g. "--conf spark.x=y"; the JVM
# options are JIT_OPTIONS below: a spark.{driver,executor}.extraJavaOptions given here replaces them).
# SPARK_HOME is the installed pyspark package (`pip install -e '.[spark]'`); Java 17 must be on PATH, and javac
# for the warehouse's file system (scripts/spark/NioLocalFileSystem.java; without javac, Hadoop's own, slower).
# Stopping the worker stops the executors it launched (their parent); nothing else is killed.
set -euo pipefail
cd "$(dirname "$0")/.."

MODE="${LOADBAY_SPARK_MODE:-standalone}"
PORT="${LOADBAY_SPARK_PORT:-10000}"
MASTER_PORT="${LOADBAY_SPARK_MASTER_PORT:-7077}"
WAIT="${LOADBAY_SPARK_WAIT:-240}"
STATE="${LOADBAY_SPARK_DIR:-$PWD/.loadbay/spark}"
PYTHON="${PYTHON:-$PWD/.venv/bin/python}"
HOST=127.0.0.1
PROCESSES=(master worker thrift)
# C2 (the JIT's optimizing compiler) only for methods three times as hot as by default: a test cluster lives for
# minutes, and on two cores the compiler's threads took the CPU the statements needed (the dispositions tests:
# 325 -> 300 s, the C2 threads' CPU 135 -> 88 s)
JIT_OPTIONS="-XX:Tier4InvocationThreshold=15000 -XX:Tier4MinInvocationThreshold=2000 -XX:Tier4CompileThreshold=45000 -XX:Tier4BackEdgeThreshold=120000"

die() { echo "spark.sh: $*" >&2; exit 1; }

spark_home() {
  "$PYTHON" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))' 2>/dev/null \
    || die "no pyspark in $PYTHON: install the extra (.venv/bin/pip install -e '.[spark]') or set PYTHON"
}

pid_of() {  # the pid in .loadbay/spark/<name>.pid if that process still runs, else nothing
  local file="$STATE/$1.pid"
  [ -f "$file" ] || return 0
  local pid; pid="$(cat "$file")"
  if kill -0 "$pid" 2>/dev/null; then echo "$pid"; fi
}

answers() {  # a DB-API connection through the destination's driver (impyla) runs SELECT 1
  "$PYTHON" - "$HOST" "$PORT" <<'PY' >/dev/null 2>&1
import sys
from impala.dbapi import connect
conn = connect(host=sys.argv[1], port=int(sys.argv[2]), user="loadbay", password="x", auth_mechanism="PLAIN")
cursor = conn.cursor()
cursor.execute("SELECT 1")
assert cursor.fetchall() == [(1,)]
conn.close()
PY
}

launch() {  # launch NAME COMMAND...: in the background, in the state folder (Derby writes metastore_db there)
  local name="$1"; shift
  (cd "$STATE" && exec nohup "$@" >"$STATE/$name.log" 2>&1 </dev/null) &
  echo $! >"$STATE/$name.pid"
}

wait_for_port() {  # wait_for_port NAME PORT: until something listens on PORT, or NAME's process died
  local name="$1" port="$2" deadline=$((SECONDS + WAIT))
  until (echo >"/dev/tcp/$HOST/$port") 2>/dev/null; do
    [ -n "$(pid_of "$name")" ] || die "$name exited before listening on $port; see $STATE/$name.log"
    [ "$SECONDS" -lt "$deadline" ] || die "$name did not listen on $HOST:$port within ${WAIT}s; see $STATE/$name.log"
    sleep 0.5
  done
}

local_fs_classes() {  # scripts/spark/*.java compiled into $STATE/classes, again when a source or Spark's jars
  # changed; the folder, or nothing where javac is missing. NioLocalFileSystem.java: the warehouse's file system
  # (without it Hadoop's own, which forks chmod per file); LlapSigner.java: the one LLAP class Hive's function
  # registry needs to load (without it a Thrift server can hang closing a session: see the file)
  local src=(scripts/spark/NioLocalFileSystem.java scripts/spark/LlapSigner.java) classes="$STATE/classes" stamp
  stamp="$(cat "${src[@]}" | cksum) $(ls "$SPARK_HOME/jars" | cksum)"
  if [ "$(cat "$classes/stamp" 2>/dev/null)" != "$stamp" ]; then
    if ! command -v javac >/dev/null; then
      echo "spark.sh: no javac (apt-get install openjdk-17-jdk-headless): the warehouse forks chmod for every file," \
        "and the Thrift server may hang closing a session (scripts/spark/LlapSigner.java)" >&2
      return 0
    fi
    rm -rf "$classes" && mkdir -p "$classes"
    javac -nowarn --release 17 -cp "$SPARK_HOME/jars/*" -d "$classes" "${src[@]}" >&2 || die "javac failed on ${src[*]}"
    echo "$stamp" >"$classes/stamp"
  fi
  echo "$classes"
}

start() {
  command -v java >/dev/null || die "java not found: install Java 17 (apt-get install openjdk-17-jdk-headless)"
  mkdir -p "$STATE/warehouse" "$STATE/work"
  export SPARK_HOME; SPARK_HOME="$(spark_home)"
  export SPARK_LOCAL_IP=$HOST SPARK_LOG_DIR="$STATE" SPARK_WORKER_DIR="$STATE/work" SPARK_NO_DAEMONIZE=1
  if [ -n "$(pid_of thrift)" ] && answers; then echo "spark: already answering on $HOST:$PORT"; return 0; fi
  local began=$SECONDS master=local[2]
  if [ "$MODE" = standalone ]; then
    master="spark://$HOST:$MASTER_PORT"
    if [ -z "$(pid_of master)" ]; then
      launch master "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.master.Master \
        --host $HOST --port "$MASTER_PORT" --webui-port 0
    fi
    wait_for_port master "$MASTER_PORT"
    if [ -z "$(pid_of worker)" ]; then
      launch worker "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.worker.Worker \
        --host $HOST --webui-port 0 --cores 2 --memory 2g "$master"
    fi
  elif [ "$MODE" != local ]; then
    die "LOADBAY_SPARK_MODE must be standalone or local, not $MODE"
  fi
  if [ -z "$(pid_of thrift)" ]; then
    local classes local_fs=()
    classes="$(local_fs_classes)"
    if [ -n "$classes" ]; then
      local_fs=(--driver-class-path "$classes" --conf "spark.executor.extraClassPath=$classes"
                --conf spark.hadoop.fs.file.impl=loadbay.spark.NioLocalFileSystem)
    fi
    # few shuffle partitions: loadbay's merges and swaps shuffle small data, 200 tasks each would dominate;
    # adaptive query execution off: it re-plans every shuffle stage, which costs more than it saves on statements
    # this size (the conformance suite's merges: 6-14% of its time on a cold cluster, two trials each);
    # no _SUCCESS file per INSERT; a new table's folder does not copy its parent's owner and permissions (Hive
    # forks `ls -ld` for them); four background threads, kept: HiveServer2 starts a new one for each statement
    # until it has 100 (its core pool size), and each new thread builds its own metastore client and HiveConf;
    # operation logs in the state folder: the default, /tmp/<user>/operation_logs, is shared by every server on the
    # machine, and one that stops deletes it under the others ("Couldn't find log associated with operation handle")
    launch thrift "$SPARK_HOME/bin/spark-submit" --master "$master" \
      --class org.apache.spark.sql.hive.thriftserver.HiveThriftServer2 --name loadbay-thrift \
      --driver-memory 1g --executor-memory 1g ${local_fs[@]+"${local_fs[@]}"} \
      --driver-java-options "$JIT_OPTIONS" --conf "spark.executor.extraJavaOptions=$JIT_OPTIONS" \
      --conf spark.ui.enabled=false --conf spark.driver.host=$HOST --conf spark.driver.bindAddress=$HOST \
      --conf spark.sql.warehouse.dir="$STATE/warehouse" --conf spark.sql.shuffle.partitions=2 \
      --conf spark.sql.adaptive.enabled=false \
      --conf spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs=false \
      --conf spark.default.parallelism=2 --conf spark.sql.session.timeZone=UTC ${LOADBAY_SPARK_EXTRA_CONF:-} \
      --hiveconf hive.server2.thrift.port="$PORT" --hiveconf hive.server2.thrift.bind.host=$HOST \
      --hiveconf hive.server2.transport.mode=binary --hiveconf hive.warehouse.subdir.inherit.perms=false \
      --hiveconf hive.server2.async.exec.threads=4 --hiveconf hive.server2.async.exec.keepalive.time=86400 \
      --hiveconf hive.server2.logging.operation.log.location="$STATE/operation_logs"
  fi
  local deadline=$((SECONDS + WAIT))
  until answers; do
    [ -n "$(pid_of thrift)" ] || die "the Thrift server exited; see $STATE/thrift.log"
    [ "$SECONDS" -lt "$deadline" ] || die "the Thrift server did not answer on $HOST:$PORT within ${WAIT}s; see $STATE/thrift.log"
    sleep 1
  done
  echo "spark ($MODE): answering on $HOST:$PORT after $((SECONDS - began)) s"
}

stop() {
  local name pid
  for name in thrift worker master; do  # the reverse order of start
    pid="$(pid_of "$name")"
    if [ -n "$pid" ]; then
      kill "$pid" 2>/dev/null || true  # it may have ended since pid_of looked
      for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; fi
      echo "spark: stopped $name ($pid)"
    fi
    rm -f "$STATE/$name.pid"
  done
}

resident_mb() {  # resident memory of a process and its children (the worker's executor), in MB
  local total=0 pid
  for pid in "$1" $(pgrep -P "$1" || true); do
    total=$((total + $(awk '/VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)))
  done
  echo $((total / 1024))
}

status() {
  local name pid up=0
  for name in "${PROCESSES[@]}"; do
    pid="$(pid_of "$name")"
    if [ -n "$pid" ]; then
      echo "$name: running (pid $pid, $(resident_mb "$pid") MB resident with its children)"
      up=1
    else
      echo "$name: not running"
    fi
  done
  if answers; then echo "thrift server: answering on $HOST:$PORT"; else echo "thrift server: not answering on $HOST:$PORT"; [ $up = 0 ] || return 1; return 3; fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
