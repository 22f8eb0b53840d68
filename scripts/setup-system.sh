#!/usr/bin/env bash
# Installs what vidwatch needs from Debian: ffmpeg always; redis-server and rabbitmq-server
# only when nothing answers on 127.0.0.1:6379 / :5672 (vidwatch up then starts private ones);
# with --for-tests (`make test`), also systemd-analyze (package systemd) and a headless browser (chromium).
set -euo pipefail

need=()
command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || need+=(ffmpeg)
answers() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }
answers 6379 || command -v redis-server >/dev/null || need+=(redis-server)
answers 5672 || [ -x /usr/sbin/rabbitmq-server ] || need+=(rabbitmq-server)
if [ "${1:-}" = "--for-tests" ]; then
    command -v systemd-analyze >/dev/null || need+=(systemd)
    command -v chromium >/dev/null || need+=(chromium)
    # without root, the tests that need these skip (outside CI) instead of failing here
    if [ ${#need[@]} -gt 0 ] && [ "$(id -u)" -ne 0 ] && [ -z "${CI:-}" ]; then
        echo "tests that need ${need[*]} will be skipped; install with: sudo apt-get install -y ${need[*]}" >&2
        exit 0
    fi
fi

[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "vidwatch needs: ${need[*]}. Install them with:" >&2
    echo "    sudo apt-get update && sudo apt-get install -y ${need[*]}" >&2
    exit 1
fi
echo "installing ${need[*]} (apt-get)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# A package's post-install must not start a system-wide service under us.
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
