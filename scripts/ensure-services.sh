#!/usr/bin/env bash
# For the test suite: Redis on 127.0.0.1:6379 and RabbitMQ on 127.0.0.1:5672, started
# (in the background, nothing kept on disk for Redis) when nothing answers there.
set -euo pipefail

answers() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }
wait_for() {
    for _ in $(seq 1 120); do answers "$1" && return 0; sleep 0.5; done
    echo "$2 did not come up on port $1" >&2; exit 1
}

if ! answers 6379; then
    echo "starting redis-server on 127.0.0.1:6379"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
        --dir /tmp --logfile /tmp/vidwatch-test-redis.log
    wait_for 6379 redis-server
fi
if ! answers 5672; then
    echo "starting rabbitmq-server on 127.0.0.1:5672"
    rabbitmq-server -detached
    wait_for 5672 rabbitmq-server
    # the broker accepts connections a moment before it accepts logins
    for _ in $(seq 1 60); do rabbitmqctl -q await_startup >/dev/null 2>&1 && break; sleep 1; done
fi
