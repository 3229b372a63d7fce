#!/usr/bin/env bash
# A local Shoal cluster on loopback: N nodes plus HAProxy on 127.0.0.1:5000
# (round-robin, no stickiness).
#   deploy/local-cluster.sh up [N]        start N nodes (default 3) and the LB
#   deploy/local-cluster.sh down          stop everything, keep the data
#   deploy/local-cluster.sh status        PID, URLs and Raft role of each node
#   deploy/local-cluster.sh stop-node I   stop node I (SIGTERM)
#   deploy/local-cluster.sh start-node I  start node I again (it rejoins)
# Environment: SHOAL_CLUSTER_DIR (default ./shoal-cluster), SHOAL_BIN
# (default ./build/node/shoal), SHOAL_LB (default 127.0.0.1:5000),
# SHOAL_BASE_PORT (default 5100: node I listens on BASE+I, Raft on BASE+100+I),
# SHOAL_NODE_ARGS (more `shoal serve` options for every node, e.g.
# "--redirects false"), SHOAL_AUTH (basic or token: turn access control on;
# the admin password is SHOAL_ADMIN_PASSWORD, or generated once into
# $SHOAL_CLUSTER_DIR/admin-password).
# The nodes share a cluster secret, generated into $SHOAL_CLUSTER_DIR/secret
# on first start; node-to-node requests carry it (curl the /internal/
# endpoints with -H "X-Shoal-Secret: $(cat .../secret)").
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${SHOAL_CLUSTER_DIR:-$PWD/shoal-cluster}
bin=${SHOAL_BIN:-$root/build/node/shoal}
lb=${SHOAL_LB:-127.0.0.1:5000}
base=${SHOAL_BASE_PORT:-5100}

node_port() { echo $((base + $1)); }
secret_header() { echo "X-Shoal-Secret: $(cat "$dir/secret")"; }
# internal I PATH: GET a node's internal endpoint.
internal() { curl -s --max-time 2 -H "$(secret_header)" "http://127.0.0.1:$(node_port "$1")$2" 2>/dev/null; }
raft_port() { echo $((base + 100 + $1)); }
# A process is alive while it exists and is not a zombie waiting to be
# reaped (PID 1 of some containers reaps slowly).
alive() {
  local pid
  [ -f "$1" ] || return 1
  pid=$(cat "$1")
  kill -0 "$pid" 2>/dev/null || return 1
  ! grep -q '^[0-9]* (.*) Z' "/proc/$pid/stat" 2>/dev/null
}

start_node() {
  local i=$1 n=$2 join=() more=()
  mkdir -p "$dir/node$i"
  if alive "$dir/node$i.pid"; then echo "node $i already running"; return; fi
  # Node 1 forms the cluster; the others join it (and rejoin on restart).
  if [ "$i" != 1 ]; then join=(--join "http://127.0.0.1:$(node_port 1)"); fi
  # shellcheck disable=SC2206  # word splitting of SHOAL_NODE_ARGS is intended
  if [ -n "${SHOAL_NODE_ARGS:-}" ]; then more=($SHOAL_NODE_ARGS); fi
  if [ ! -s "$dir/secret" ]; then
    (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/secret")
  fi
  if [ -n "${SHOAL_AUTH:-}" ]; then
    # Behind the LB the client's address is in X-Forwarded-For (rate
    # limits of wrong passwords are per client).
    more+=(--auth "$SHOAL_AUTH" --trust-forwarded true)
    if [ ! -s "$dir/admin-password" ]; then
      (umask 077
       printf '%s' "${SHOAL_ADMIN_PASSWORD:-$(head -c 18 /dev/urandom | base64 | tr '+/' 'xy')}" \
         >"$dir/admin-password")
    fi
  fi
  SHOAL_ADMIN_PASSWORD=$(cat "$dir/admin-password" 2>/dev/null || true) \
  "$bin" serve --node-id "$i" --listen "127.0.0.1:$(node_port "$i")" \
    --raft "127.0.0.1:$(raft_port "$i")" --data "$dir/node$i" "${join[@]}" \
    --cluster-secret-file "$dir/secret" ${more[@]+"${more[@]}"} \
    >>"$dir/node$i.log" 2>&1 &
  echo $! >"$dir/node$i.pid"
  for _ in $(seq 1 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$(node_port "$i")/readyz" && break
    sleep 0.1
  done
  echo "node $i: pid $(cat "$dir/node$i.pid"), http://127.0.0.1:$(node_port "$i")"
  echo "$n" >"$dir/nodes"
}

# The load balancer answers /v2/ once its health checks found a node up
# (401 with auth on: the registry answers, asking for credentials).
wait_lb() {
  local code
  for _ in $(seq 1 100); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://$lb/v2/" || true)
    if [ "$code" = 200 ] || [ "$code" = 401 ]; then
      [ -s "$dir/admin-password" ] && [ -n "${SHOAL_AUTH:-}" ] &&
        echo "admin password: in $dir/admin-password (user admin)"
      return 0
    fi
    sleep 0.1
  done
  echo "load balancer $lb does not answer yet" >&2
}

start_lb() {
  local n=$1 addrs=()
  for i in $(seq 1 "$n"); do
    addrs+=("127.0.0.1:$(node_port "$i")")
  done
  "$root/deploy/haproxy-cfg.sh" "$lb" "${addrs[@]}" >"$dir/haproxy.cfg"
  haproxy -f "$dir/haproxy.cfg" -D -p "$dir/haproxy.pid"
  # Ready once its health checks let requests through.
  for _ in $(seq 1 100); do
    curl -sf -o /dev/null "http://$lb/v2/" && break
    sleep 0.1
  done
  echo "load balancer: http://$lb (haproxy pid $(cat "$dir/haproxy.pid"))"
}

stop_pidfile() {
  local f=$1
  if alive "$f"; then
    local pid; pid=$(cat "$f")
    kill -TERM "$pid"
    for _ in $(seq 1 100); do alive "$f" || break; sleep 0.1; done
  fi
  rm -f "$f"
}

cmd=${1:-}
case "$cmd" in
  up)
    n=${2:-3}
    [ -x "$bin" ] || { echo "no shoal binary at $bin (build first)"; exit 1; }
    command -v haproxy >/dev/null || { echo "haproxy is not installed"; exit 1; }
    mkdir -p "$dir"
    for i in $(seq 1 "$n"); do start_node "$i" "$n"; done
    # Wait for every node to be a member before opening the LB.
    for _ in $(seq 1 100); do
      m=$(internal 1 /internal/v1/members | grep -o '"id":' | wc -l || true)
      [ "$m" -ge "$n" ] && break
      sleep 0.1
    done
    start_lb "$n"
    wait_lb
    ;;
  down)
    stop_pidfile "$dir/haproxy.pid"
    # Every node started here, also those added with start-node beyond the
    # count `up` was given; highest id first.
    for i in $(ls "$dir" | sed -n 's/^node\([0-9][0-9]*\)\.pid$/\1/p' | sort -rn); do
      stop_pidfile "$dir/node$i.pid"
    done
    echo "stopped (data kept in $dir)"
    ;;
  status)
    n=$(cat "$dir/nodes" 2>/dev/null || echo 0)
    leader= members=
    for i in $(seq 1 "$n"); do
      alive "$dir/node$i.pid" || continue
      members=$(internal "$i" /internal/v1/members || true)
      leader=$(printf '%s' "$members" | sed -n 's/.*"leader":\([0-9]*\).*/\1/p')
      [ -n "$leader" ] && [ "$leader" != 0 ] && break
    done
    for i in $(seq 1 "$n"); do
      if alive "$dir/node$i.pid"; then
        role=follower
        [ "$i" = "${leader:-}" ] && role=leader
        # voter or standby, as the node that answered knows it
        vote=$(printf '%s' "$members" | tr '}' '\n' |
          sed -n "s/.*\"id\":$i,.*\"role\":\"\([a-z]*\)\".*/\1/p")
        role="$role${vote:+ ($vote)}"
        echo "node $i: pid $(cat "$dir/node$i.pid"), http://127.0.0.1:$(node_port "$i"), raft 127.0.0.1:$(raft_port "$i"), $role"
      else
        echo "node $i: stopped"
      fi
    done
    if alive "$dir/haproxy.pid"; then echo "load balancer: http://$lb"; else echo "load balancer: stopped"; fi
    ;;
  stop-node) stop_pidfile "$dir/node${2:?node number}.pid" ;;
  start-node) start_node "${2:?node number}" "$(cat "$dir/nodes")" ;;
  *) sed -n '2,12p' "$0"; exit 2 ;;
esac
