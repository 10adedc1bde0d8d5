#!/usr/bin/env bash
# Installs Sparrow on a Debian/Ubuntu host as systemd services (run as root).
#   deploy/install.sh --binary PATH --role shard|coordinator|both [--node-id ID] --tls DIR [--start]
#   deploy/install.sh --role etcd --etcd-name NAME --etcd-host HOST --etcd-members N1=https://H1:2380,… --tls DIR [--start]
# DIR holds ca.pem and this host's certificates, as `sparrow certs issue --out DIR` wrote them:
# node-ID.pem/.key for a shard node, coordinator-NAME.pem/.key for a coordinator (the CA's key
# stays with the operator). They go to /etc/sparrow/tls (readable by the sparrow user only). A
# coordinator host also gets /etc/sparrow/keys.json; on first install an admin API key is
# created and printed once.
# PATH is a release binary built on the same distribution release, preferably with the Swift
# runtime linked in:  swift build -c release --static-swift-stdlib --product sparrow
# With --role etcd: Debian's etcd-server as one member of the control plane's etcd, mutual TLS
# with DIR/etcd-NAME.pem/.key (`sparrow certs issue --role etcd --id NAME --host HOST`), settings
# in /etc/default/etcd (from deploy/etc/etcd.env); no binary needed.
# Layout: /usr/local/bin/sparrow, /etc/sparrow/{shard,coordinator}.env, /var/lib/sparrow
# (node data, the coordinator's cluster file, the model), journald for logs. Existing
# settings and data are never overwritten, so the script also upgrades a host in place.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
binary="" role="" node_id="" tls="" start=0 etcd_name="" etcd_host="" etcd_members=""
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) binary="$2"; shift 2 ;;
        --role) role="$2"; shift 2 ;;
        --node-id) node_id="$2"; shift 2 ;;
        --tls) tls="$2"; shift 2 ;;
        --start) start=1; shift ;;
        --etcd-name) etcd_name="$2"; shift 2 ;;
        --etcd-host) etcd_host="$2"; shift 2 ;;
        --etcd-members) etcd_members="$2"; shift 2 ;;
        *) echo "install.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
case "$role" in shard|coordinator|both|etcd) ;; *) echo "install.sh: --role takes shard, coordinator, both or etcd" >&2; exit 2 ;; esac
if [ "$role" != etcd ]; then
    [ -n "$binary" ] && [ -x "$binary" ] || { echo "install.sh: --binary PATH (an executable sparrow) is required" >&2; exit 2; }
fi
[ "$(id -u)" -eq 0 ] || { echo "install.sh: run as root" >&2; exit 1; }
[ -n "$tls" ] && [ -f "$tls/ca.pem" ] || { echo "install.sh: --tls DIR (with ca.pem and this host's certificates from 'sparrow certs issue') is required" >&2; exit 2; }

if [ "$role" = etcd ]; then
    [ -n "$etcd_name" ] && [ -n "$etcd_host" ] && [ -n "$etcd_members" ] \
        || { echo "install.sh: --role etcd needs --etcd-name, --etcd-host and --etcd-members" >&2; exit 2; }
    [ -f "$tls/etcd-$etcd_name.pem" ] || { echo "install.sh: no etcd-$etcd_name.pem in $tls (sparrow certs issue --role etcd --id $etcd_name --host $etcd_host)" >&2; exit 2; }
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q etcd-server etcd-client
    install -d -o root -g etcd -m 0750 /etc/etcd/tls
    install -o root -g etcd -m 0644 "$tls/ca.pem" /etc/etcd/tls/ca.pem
    install -o root -g etcd -m 0644 "$tls/etcd-$etcd_name.pem" /etc/etcd/tls/etcd.pem
    install -o root -g etcd -m 0640 "$tls/etcd-$etcd_name.key" /etc/etcd/tls/etcd.key
    sed -e "s|@NAME@|$etcd_name|; s|@HOST@|$etcd_host|g; s|@MEMBERS@|$etcd_members|" "$here/etc/etcd.env" > /etc/default/etcd
    install -d -o etcd -g etcd -m 0700 /var/lib/etcd/sparrow
    systemctl enable etcd.service
    [ "$start" -eq 0 ] || systemctl restart etcd.service
    echo "install.sh: etcd member $etcd_name on https://$etcd_host:2379; settings in /etc/default/etcd"
    exit 0
fi
# The one certificate of ROLE in DIR (node-ID, coordinator-NAME), copied as /etc/sparrow/tls/ROLE.{pem,key}.
install_certificate() {
    local role="$1" pattern="$2" found
    found="$(ls "$tls"/$pattern.pem 2>/dev/null | head -1)"
    [ -n "$found" ] || { echo "install.sh: no $pattern.pem in $tls (sparrow certs issue --role $role …)" >&2; exit 2; }
    install -o root -g sparrow -m 0644 "$found" "/etc/sparrow/tls/$role.pem"
    install -o root -g sparrow -m 0640 "${found%.pem}.key" "/etc/sparrow/tls/$role.key"
}

# Runtime libraries: RocksDB, OpenBLAS, zlib (the -dev package pulls the release's RocksDB soname).
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q librocksdb-dev libopenblas0 zlib1g ca-certificates

id sparrow >/dev/null 2>&1 || useradd --system --home-dir /var/lib/sparrow --shell /usr/sbin/nologin sparrow
install -d -o sparrow -g sparrow -m 0750 /var/lib/sparrow
install -d -m 0755 /etc/sparrow /usr/local/share/doc/sparrow
install -d -o root -g sparrow -m 0750 /etc/sparrow/tls
install -o root -g sparrow -m 0644 "$tls/ca.pem" /etc/sparrow/tls/ca.pem
install -m 0755 "$binary" /usr/local/bin/sparrow.new
mv /usr/local/bin/sparrow.new /usr/local/bin/sparrow
if ldd /usr/local/bin/sparrow | grep -q "not found"; then
    echo "install.sh: /usr/local/bin/sparrow misses libraries:" >&2
    ldd /usr/local/bin/sparrow | grep "not found" >&2
    echo "  (build it on this distribution release, with --static-swift-stdlib)" >&2
    exit 1
fi
install -m 0644 "$here/../ops/RUNBOOK.md" /usr/local/share/doc/sparrow/RUNBOOK.md

units=()
if [ "$role" = shard ] || [ "$role" = both ]; then
    if [ ! -f /etc/sparrow/shard.env ]; then
        install -m 0644 "$here/etc/shard.env" /etc/sparrow/shard.env
        [ -z "$node_id" ] || sed -i "s/^SPARROW_NODE_ID=.*/SPARROW_NODE_ID=$node_id/" /etc/sparrow/shard.env
    fi
    install_certificate node "node-${node_id:-*}"
    install -d -o sparrow -g sparrow -m 0750 /var/lib/sparrow/node
    install -m 0644 "$here/systemd/sparrow-shard.service" /etc/systemd/system/
    units+=(sparrow-shard)
fi
if [ "$role" = coordinator ] || [ "$role" = both ]; then
    [ -f /etc/sparrow/coordinator.env ] || install -m 0644 "$here/etc/coordinator.env" /etc/sparrow/coordinator.env
    [ -f /var/lib/sparrow/cluster.yaml ] || install -o sparrow -g sparrow -m 0640 "$here/cluster.example.yaml" /var/lib/sparrow/cluster.yaml
    install_certificate coordinator "coordinator-*"
    if [ ! -f /etc/sparrow/keys.json ]; then
        admin_key="$(/usr/local/bin/sparrow keys create --file /etc/sparrow/keys.json --scope admin --name "install-$(hostname)")"
        chown sparrow:sparrow /etc/sparrow/keys.json
        echo "install.sh: admin API key (shown once; keep it safe): $admin_key"
    fi
    install -m 0644 "$here/systemd/sparrow-coordinator.service" /etc/systemd/system/
    units+=(sparrow-coordinator)
fi
systemctl daemon-reload
systemctl enable "${units[@]/%/.service}"
if [ "$start" -eq 1 ]; then
    systemctl restart "${units[@]/%/.service}"
    systemctl --no-pager status "${units[@]/%/.service}" | head -20
fi
echo "install.sh: installed /usr/local/bin/sparrow as ${units[*]}; settings in /etc/sparrow, data in /var/lib/sparrow"
