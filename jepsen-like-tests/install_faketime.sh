#!/usr/bin/env bash
# Installs libfaketime (Debian's `faketime` package) for the clock nemesis.
# The harness runs without it: the clock nemesis is then skipped with a message.
set -euo pipefail
if ls /usr/lib/*/faketime/libfaketime.so.1 >/dev/null 2>&1; then
  echo "libfaketime already installed"; exit 0
fi
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq faketime
ls /usr/lib/*/faketime/libfaketime.so.1
