#!/usr/bin/env bash
# Runs a real 3-broker Danube v0.15.1 cluster on 127.0.0.1 for the conformance
# suite (see README.md): client ports 6701-6703, admin 50101-50103, Raft
# 7701-7703, each broker with fresh data under $CLUSTER_DIR.
#
#   DANUBE_CONFIG=~/danube/config/danube_broker.yml test/realbroker/cluster.sh start
#   test/realbroker/cluster.sh stop
#
# STORAGE=shared_fs makes the brokers export segments to $CLUSTER_DIR/shared,
# a durable root all of them read (the default is local storage, as in
# Danube's quickstart). DANUBE_BROKER_BIN names the broker binary.
set -euo pipefail
BIN=${DANUBE_BROKER_BIN:-danube-broker}
DIR=${CLUSTER_DIR:-./danube-cluster}
case "${1:-}" in
start)
  : "${DANUBE_CONFIG:?set DANUBE_CONFIG to config/danube_broker.yml of a Danube v0.15.1 checkout}"
  rm -rf "$DIR"
  mkdir -p "$DIR"
  DIR=$(cd "$DIR" && pwd)
  for i in 1 2 3; do
    d="$DIR/b$i"
    mkdir -p "$d"
    # All three Raft addresses as seed nodes; no Prometheus port (the three
    # would clash on it); this broker's own WAL directory.
    sed -e '/^  ports:/,/^    prometheus:/{/prometheus:/d}' \
        -e 's|# seed_nodes:|seed_nodes:|' \
        -e 's|#   - "0.0.0.0:7650"|  - "127.0.0.1:7701"|' \
        -e 's|#   - "0.0.0.0:7651"|  - "127.0.0.1:7702"|' \
        -e 's|#   - "0.0.0.0:7652"|  - "127.0.0.1:7703"|' \
        -e "s|local_wal_root: \"./danube-data/wal\"|local_wal_root: \"$d/wal\"|" \
        "$DANUBE_CONFIG" >"$d/broker.yml"
    if [ "${STORAGE:-local}" = shared_fs ]; then
      sed -i -e "s|^  mode: local|  mode: shared_fs\n  durable:\n    root: \"$DIR/shared\"|" \
             -e '/^  local_wal_root:/d' "$d/broker.yml"
    fi
    grep -q '127.0.0.1:7703' "$d/broker.yml" || { echo "$DANUBE_CONFIG: no seed_nodes block to fill in" >&2; exit 1; }
    RUST_LOG=${RUST_LOG:-info} setsid "$BIN" --config-file "$d/broker.yml" --data-dir "$d/raft" \
      --broker-addr "127.0.0.1:670$i" --admin-addr "127.0.0.1:5010$i" \
      --raft-addr "127.0.0.1:770$i" --advertised-addr "127.0.0.1:670$i" \
      >"$d/broker.log" 2>&1 &
    echo $! >"$d/pid"
  done
  echo "brokers starting; logs in $DIR/b*/broker.log (wait ~30 s for the first load reports)"
  ;;
stop)
  for i in 1 2 3; do
    f="$DIR/b$i/pid"
    if [ -f "$f" ]; then
      kill "$(cat "$f")" 2>/dev/null || true
      rm -f "$f"
    fi
  done
  ;;
*)
  echo "usage: $0 start|stop" >&2
  exit 2
  ;;
esac
