#!/usr/bin/env bash
# Print an HAProxy configuration for Shoal nodes: deploy/haproxy.cfg.in with
# its listen address and, for node I (its node id, 1 first), a server line
# and the rule that sends the requests of the upload sessions node I owns
# to it (see the template).
#   deploy/haproxy-cfg.sh LISTEN HOST:PORT...   e.g. 127.0.0.1:5000 127.0.0.1:5101 ...
# Used by deploy/local-cluster.sh and the tests' load balancer.
set -euo pipefail
if (($# < 2)); then
    echo "usage: $0 LISTEN HOST:PORT..." >&2
    exit 2
fi
listen=$1
shift
servers=""
i=0
for addr in "$@"; do
    i=$((i + 1))
    servers+="    server node$i $addr check inter 1s"$'\n'
    servers+="    use-server node$i if { path_reg ^/v2/.+/blobs/uploads/$i- }"$'\n'
done
sed -e "s|@LISTEN@|$listen|" -e "/@SERVERS@/{
r /dev/stdin
d
}" "$(dirname "${BASH_SOURCE[0]}")/haproxy.cfg.in" <<<"$servers"
