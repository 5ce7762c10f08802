#!/usr/bin/env bash
# Server benchmark: `gym serve` vs OpenEnv's reference Python server
# (openenv-core 0.3.0 create_app + uvicorn), same machine, same workload,
# same load generator (`gym bench server`).
#
# Usage: scripts/openenv-bench.sh [SESSIONS] [OUT_DIR]
#   SESSIONS  concurrency levels (default 1,16,64,256,1024)
#   OUT_DIR   where JSON reports go (default bench-out/server)
# Needs: a release build (cargo build --release -p gym) and the venv the
# Python-client test creates ($CARGO_TARGET_DIR/openenv-venv-core), or set
# OPENENV_PYTHON to a python with openenv-core==0.3.0.
set -euo pipefail
cd "$(dirname "$0")/.."
SESSIONS="${1:-1,16,64,256,1024}"
OUT="${2:-bench-out/server}"
TARGET="${CARGO_TARGET_DIR:-target}"
GYM="$TARGET/release/gym"
PY="${OPENENV_PYTHON:-$TARGET/openenv-venv-core/bin/python}"
mkdir -p "$OUT"
GYM_PORT=18700
PY_PORT=18701
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

wait_health() {
  for _ in $(seq 1 100); do
    if curl -sf "http://127.0.0.1:$1/health" >/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "server on port $1 did not come up" >&2
  return 1
}

bench() { # label port pid episode sessions extra-args...
  local label=$1 port=$2 pid=$3 episode=$4 sessions=$5
  shift 5
  "$GYM" bench server --url "http://127.0.0.1:$port" --sessions "$sessions" --episode "$episode" \
    --server-pid "$pid" --label "$label" --reps "${REPS:-3}" --out "$OUT/$label-$episode.json" "$@"
}

# 1. Trivial echo env, one-step sessions (OpenEnv's scaling-study workload, wait = 0).
"$GYM" serve echo --port $GYM_PORT --max-sessions 4096 2>/dev/null &
pids+=($!); GPID=$!
"$PY" scripts/openenv_reference_server.py --port $PY_PORT --max-sessions 4096 2>/dev/null &
pids+=($!); PPID_=$!
wait_health $GYM_PORT
wait_health $PY_PORT
# Memory per held session first, on fresh servers (1024 sessions held open
# 2 s so they all overlap; later batches would reuse freed heap).
REPS=1 bench gym-serve-echo-hold $GYM_PORT $GPID one-step 1024 --hold-ms 2000
REPS=1 bench openenv-python-echo-hold $PY_PORT $PPID_ one-step 1024 --hold-ms 2000
bench gym-serve-echo $GYM_PORT $GPID one-step "$SESSIONS"
bench openenv-python-echo $PY_PORT $PPID_ one-step "$SESSIONS"
cleanup; pids=()

# 2. Full 2048 games on gym serve (OpenEnv's Python server has no 2048 env of
#    its own; OpenSpiel's needs the C++ library).
if "$GYM" list | grep -q '^  2048 '; then
  "$GYM" serve 2048 --port $GYM_PORT --max-sessions 4096 2>/dev/null &
  pids+=($!); GPID=$!
  wait_health $GYM_PORT
  bench gym-serve-2048 $GYM_PORT $GPID full "${SESSIONS_2048:-1,16,64,256}"
fi
echo "reports in $OUT"
