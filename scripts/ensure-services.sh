#!/usr/bin/env bash
# Makes sure the local Redis (127.0.0.1:6379) and Postgres (127.0.0.1:5432) are up,
# starting them when they are installed but stopped. Never stops anything.
set -euo pipefail

redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }
pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }

if ! redis_up; then
  if command -v redis-server >/dev/null; then
    echo "ensure-services: starting redis-server on 127.0.0.1:6379"
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log
  else
    echo "ensure-services: redis-server is not installed and nothing answers on 127.0.0.1:6379" >&2
    exit 1
  fi
fi
if ! pg_up; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    echo "ensure-services: starting PostgreSQL cluster"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  else
    echo "ensure-services: PostgreSQL is not installed and nothing answers on 127.0.0.1:5432" >&2
    exit 1
  fi
fi
for _ in $(seq 1 50); do
  if redis_up && pg_up; then exit 0; fi
  sleep 0.2
done
echo "ensure-services: Redis or Postgres did not come up within 10 s" >&2
exit 1
