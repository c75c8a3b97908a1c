#!/usr/bin/env bash
# The cluster's figures (docs/CLUSTER.md, docs/PERFORMANCE.md), release build, on a private
# PostgreSQL started here (scripts/cluster-postgres), LSTM 2x256 (the committed model):
#   1. one node on PostgreSQL against one node on SQLite, --durability strict, alternating ROUNDS
#      times: one client's one-character round trip p50/p99, and 1000 clients' tokens/s;
#   2. a forwarded request against a local one: two nodes with peer links, one client on node a
#      feeding a stream a serves, then one b serves (forwarded), alternating ROUNDS times;
#   3. aggregate tokens/s of 1000 clients spread over 1, 2 and 3 nodes, each node confined to the
#      same CPU share (cgroup v1 cpu.cfs_quota_us: NODE_CPU of a core, default 0.4), ROUNDS times
#      (SCALE_FEEDS feeds of 50 characters per client, default 10: about 10 minutes in all);
#   4. time from a node's death (SIGKILL, 1 of 3) to every one of its streams served again, for
#      1000 streams, at --lease-ttl TTL (default 2; recurd's default is 5);
#   5. PostgreSQL's own commit rate for recur_commit at group-commit sizes 1, 16 and 128 appends
#      (50 tokens each), 8 concurrent committers, fsync on (pgbench, 5 s each): what bounds a
#      cluster's token log (docs/CLUSTER.md, "What bounds a cluster").
#   scripts/bench-cluster.sh [ROUNDS (default 3)]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
node_cpu=${NODE_CPU:-0.4}
ttl=${TTL:-2}
ulimit -n 8192
swift build -c release --product recur-bench >/dev/null
swift build -c release --product recurd >/dev/null
swift build -c release --product recur >/dev/null
bin=$(swift build -c release --show-bin-path)
model=samples/shakespeare-lstm.safetensors
dir=$(mktemp -d /tmp/recur-bench-cluster.XXXXXX)
chmod 755 "$dir"  # the PostgreSQL server runs as nobody when this runs as root
out=$dir/results.jsonl
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  scripts/cluster-postgres stop "$dir/pg" >/dev/null 2>&1 || true
  for g in "$cgroot"/recur-bench-*; do [ -d "$g" ] && rmdir "$g" 2>/dev/null || true; done
  rm -rf "$dir"
}
cgroot=/sys/fs/cgroup/cpu
trap cleanup EXIT
export PGPORT_RECUR=55432
url=$(scripts/cluster-postgres start "$dir/pg")
scripts/cluster-certs "$dir/certs" a b c >/dev/null
psql_() { psql -h "$dir/pg" -p 55432 -U recur -d recur -Atqc "$1"; }
reset_db() { psql -h "$dir/pg" -p 55432 -U recur -d postgres -qc "DROP DATABASE recur WITH (FORCE)" -c "CREATE DATABASE recur"; }

# start_node NAME [extra args...]: a cluster node with peer links; waits for its socket.
start_node() {
  local name=$1; shift
  "$bin/recurd" --model "$model" --socket "$dir/$name.sock" --cluster "$url" --node "$name" --lease-ttl "$ttl" \
    --key-groups 256 --max-connections 2000 --log-level warning \
    --peer-listen 127.0.0.1:0 --peer-cert "$dir/certs/$name.pem" --peer-key "$dir/certs/$name.key" --peer-ca "$dir/certs/ca.pem" "$@" \
    2>>"$dir/$name.log" &
  pids+=($!)
  eval "pid_$name=$!"
  for _ in $(seq 200); do [ -S "$dir/$name.sock" ] && break; sleep 0.05; done
}
stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
  rm -f "$dir"/*.sock
}
balanced() { "$bin/recur" cluster status --cluster "$url" --wait 30 >/dev/null || true; sleep $(echo "$ttl" | awk '{print $1}'); }
record() { echo "{\"who\":\"$1\",\"r\":$2}" | tee -a "$out" >&2; }

# 1. PostgreSQL against SQLite, one node each.
for i in $(seq "$rounds"); do
  "$bin/recurd" --model "$model" --socket "$dir/sqlite.sock" --state-dir "$dir/state-$i" --durability strict \
    --max-connections 2000 --log-level warning &
  sq=$!; pids+=($sq)
  for _ in $(seq 200); do [ -S "$dir/sqlite.sock" ] && break; sleep 0.05; done
  record sqlite_latency "$("$bin/recur-bench" --only latency --socket "$dir/sqlite.sock" --tokens 2000)"
  record sqlite_clients "$("$bin/recur-bench" --only clients --socket "$dir/sqlite.sock" --clients 1000 --feeds 10)"
  stop_all
  reset_db
  start_node a
  balanced
  record pg_latency "$("$bin/recur-bench" --only latency --socket "$dir/a.sock" --tokens 2000)"
  record pg_clients "$("$bin/recur-bench" --only clients --socket "$dir/a.sock" --clients 1000 --feeds 10)"
  stop_all
  reset_db
done

# 2. Forwarded against local: the same client on node a, a stream of a's and one of b's.
start_node a
start_node b
balanced
owners=$(psql_ "SELECT grp || ' ' || node FROM recur_lease")
read -r local_stream remote_stream < <(python3 - "$owners" <<'PY'
import sys
owner = dict(line.split() for line in sys.argv[1].splitlines())
def group(name):
    h = 0xcbf29ce484222325
    for b in name.encode(): h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h % 256
names = [f"lat{i}" for i in range(1000)]
print(next(n for n in names if owner[str(group(n))] == "a"), next(n for n in names if owner[str(group(n))] == "b"))
PY
)
for i in $(seq "$rounds"); do
  record local "$("$bin/recur-bench" --only latency --socket "$dir/a.sock" --tokens 2000 --stream "$local_stream")"
  record forwarded "$("$bin/recur-bench" --only latency --socket "$dir/a.sock" --tokens 2000 --stream "$remote_stream")"
done
stop_all
reset_db

# 3. Scaling: N nodes, each in a cgroup with the same CPU quota; 1000 clients spread over them.
can_quota=false
if mkdir -p "$cgroot/recur-bench-probe" 2>/dev/null && echo 100000 > "$cgroot/recur-bench-probe/cpu.cfs_period_us" 2>/dev/null; then
  can_quota=true; rmdir "$cgroot/recur-bench-probe"
fi
quota_us=$(awk -v c="$node_cpu" 'BEGIN { printf "%d", c * 100000 }')
for i in $(seq "$rounds"); do
  for n in 1 2 3; do
    names=(a b c); names=("${names[@]:0:$n}")
    for name in "${names[@]}"; do
      start_node "$name"
      if $can_quota; then
        g="$cgroot/recur-bench-$name"; mkdir -p "$g"
        echo 100000 > "$g/cpu.cfs_period_us"; echo "$quota_us" > "$g/cpu.cfs_quota_us"
        echo "$(eval echo \$pid_$name)" > "$g/cgroup.procs"
      fi
    done
    balanced
    per=$((1000 / n))
    files=(); benches=()
    for name in "${names[@]}"; do
      f=$dir/scale-$n-$name.json; files+=("$f")
      "$bin/recur-bench" --only clients --socket "$dir/$name.sock" --clients "$per" --feeds "${SCALE_FEEDS:-10}" > "$f" &
      benches+=($!)
    done
    for b in "${benches[@]}"; do wait "$b"; done
    total=$(python3 -c 'import json,sys; print(sum(json.load(open(f))["clients_tokens_per_s"] for f in sys.argv[1:]))' "${files[@]}")
    errors=$(python3 -c 'import json,sys; print(sum(json.load(open(f))["clients_errors"] for f in sys.argv[1:]))' "${files[@]}")
    record "scale_$n" "{\"tokens_per_s\":$total,\"errors\":$errors,\"quota\":$($can_quota && echo "$node_cpu" || echo null)}"
    stop_all
    reset_db
  done
done

# 4. Failover: 1000 streams over 3 nodes, kill -9 one, time until each of its streams answers.
start_node a; start_node b; start_node c
balanced
python3 - "$dir" "$ttl" "$pid_c" "$url" <<'PY' | tee -a "$out" >&2
import json, os, socket, sys, time, subprocess
d, ttl, victim = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
def client(path):
    s = socket.socket(socket.AF_UNIX); s.connect(path); return s, s.makefile("rb")
def request(conn, obj):
    s, f = conn
    s.sendall((json.dumps(obj) + "\n").encode())
    while True:
        m = json.loads(f.readline())
        if "done" in m or "error" in m or m.get("op") == "info": return m
a = client(f"{d}/a.sock")
names = [f"fo{i}" for i in range(1000)]
for n in names:
    r = request(a, {"op": "feed", "stream": n, "text": "To be, or not to be", "k": 1})
    assert "error" not in r, r
owners = dict(l.split() for l in subprocess.run(["psql", "-h", f"{d}/pg", "-p", "55432", "-U", "recur", "-d", "recur", "-Atqc",
              "SELECT grp || ' ' || node FROM recur_lease"], capture_output=True, text=True).stdout.splitlines())
def group(name):
    h = 0xcbf29ce484222325
    for b in name.encode(): h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h % 256
mine = [n for n in names if owners[str(group(n))] == "c"]
os.kill(victim, 9)
t0 = time.monotonic()
b = client(f"{d}/b.sock")
pending = list(mine)
while pending:
    still = []
    for n in pending:
        r = request(b, {"op": "info", "stream": n})
        if r.get("offset") != 19: still.append(n)
    pending = still
    if pending: time.sleep(0.01)
print(json.dumps({"who": "failover", "r": {"streams": len(names), "on_dead_node": len(mine), "ttl": ttl,
                                            "served_again_s": time.monotonic() - t0}}))
PY
stop_all

# 5. recur_commit's rate in PostgreSQL itself, at several group-commit sizes.
psql_ "UPDATE recur_lease SET node = 'bench', epoch = 1, expires = now() + interval '1 hour'" >/dev/null
for n in 1 16 128; do
  cat > "$dir/commit.sql" <<SQL
SELECT recur_commit('bench', ARRAY[0], ARRAY[1::bigint], array_fill('append'::text, ARRAY[$n]),
  (SELECT array_agg('pgb-' || :client_id || '-' || g) FROM generate_series(1, $n) g), array_fill(0, ARRAY[$n]),
  array_fill(1::bigint, ARRAY[$n]), array_fill(51::bigint, ARRAY[$n]), array_fill(decode(repeat('00', 200), 'hex'), ARRAY[$n]),
  array_fill(''::bytea, ARRAY[$n]), array_fill(0::bigint, ARRAY[$n]), array_fill(0::float8, ARRAY[$n]),
  array_fill(0::bigint, ARRAY[$n]), array_fill(0::bigint, ARRAY[$n]), array_fill(''::bytea, ARRAY[$n]),
  array_fill(''::text, ARRAY[$n]), 10000);
SQL
  tps=$(pgbench -h "$dir/pg" -p 55432 -U recur -n -c 8 -j 2 -T 5 -f "$dir/commit.sql" recur 2>/dev/null \
        | awk '/^tps/ { print $3; exit }')
  record "commit_$n" "{\"commits_per_s\":$tps,\"appends\":$n}"
done

python3 - "$out" "$rounds" "$node_cpu" <<'PY'
import json, sys, statistics as st
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(who, key): return st.median(r["r"][key] for r in rows if r["who"] == who)
cpu = open("/proc/cpuinfo").read().split("model name")[1].split("\n")[0].strip(" :\t")
print(f"machine: {cpu}, {sys.argv[2]} rounds, medians; --durability strict; PostgreSQL private, on a Unix socket")
print("| store (one node) | round trip p50 | p99 | 1000 clients tokens/s | errors |")
print("|---|---|---|---|---|")
for who, label in [("sqlite", "SQLite (--state-dir)"), ("pg", "PostgreSQL (--cluster)")]:
    print(f"| {label} | {med(who+'_latency','socket_feed_1token_p50_us'):.0f} µs | {med(who+'_latency','socket_feed_1token_p99_us'):.0f} µs "
          f"| {med(who+'_clients','clients_tokens_per_s'):,.0f} | {sum(r['r']['clients_errors'] for r in rows if r['who']==who+'_clients')} |")
print("| request (client on node a) | p50 | p99 |")
print("|---|---|---|")
for who in ["local", "forwarded"]:
    print(f"| {who} | {med(who,'socket_feed_1token_p50_us'):.0f} µs | {med(who,'socket_feed_1token_p99_us'):.0f} µs |")
print(f"| nodes (each {sys.argv[3]} of a core) | 1000 clients tokens/s | errors |")
print("|---|---|---|")
for n in (1, 2, 3):
    print(f"| {n} | {med(f'scale_{n}','tokens_per_s'):,.0f} | {sum(r['r']['errors'] for r in rows if r['who']==f'scale_{n}')} |")
f = next(r["r"] for r in rows if r["who"] == "failover")
print("| appends per commit | commits/s | appends/s | tokens/s (50 per append) |")
print("|---|---|---|---|")
for n in (1, 16, 128):
    c = next(r["r"]["commits_per_s"] for r in rows if r["who"] == f"commit_{n}")
    print(f"| {n} | {c:,.0f} | {c*n:,.0f} | {c*n*50:,.0f} |")
print(f"failover: {f['streams']} streams, {f['on_dead_node']} on the killed node, lease TTL {f['ttl']:.0f} s: "
      f"all served again {f['served_again_s']:.2f} s after the kill")
PY
