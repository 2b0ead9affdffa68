#!/usr/bin/env bash
# Install redis-server and redis-benchmark (Debian/Ubuntu packages redis-server and
# redis-tools) when either is missing. Non-interactive; runs `apt-get update` only
# if the first install attempt fails. Uses sudo when not root.
set -euo pipefail

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-benchmark >/dev/null 2>&1 || need+=(redis-benchmark)
if [ ${#need[@]} -eq 0 ]; then
    echo "install_redis.sh: redis-server and redis-benchmark already installed"
    exit 0
fi
echo "install_redis.sh: missing: ${need[*]}; installing redis-server redis-tools"

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_redis.sh: apt-get not found; install redis-server and redis-benchmark" \
        "(Redis 7.x) with your package manager" >&2
    exit 1
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo -n)
    else
        echo "install_redis.sh: not root and no sudo; run as root:" \
            "apt-get install -y redis-server redis-tools" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
apt_install() {
    "${SUDO[@]}" apt-get install -y -q --no-install-recommends redis-server redis-tools
}
if ! apt_install; then
    echo "install_redis.sh: install failed; running apt-get update and retrying"
    "${SUDO[@]}" apt-get update -q
    apt_install
fi

# Debian's package may start a system redis-server on 6379; the benchmarks use their
# own servers on free ports, so it is left alone.
for b in redis-server redis-benchmark; do
    if ! command -v "$b" >/dev/null 2>&1; then
        echo "install_redis.sh: $b still missing after install" >&2
        exit 1
    fi
done
redis-server --version
