#!/usr/bin/env bash
# Installs (Debian) and starts what Portcullis and its tests need: PostgreSQL, Redis,
# RabbitMQ, the nginx binary, the gRPC client and moto's S3 server the integration tests run. Idempotent:
# quick when all is up.
set -euo pipefail

log() { printf '[services] %s\n' "$*" >&2; }

need=()
command -v pg_ctlcluster >/dev/null 2>&1 || need+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v rabbitmq-server >/dev/null 2>&1 || need+=(rabbitmq-server)
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || need+=(nginx)
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
# The TLS tests make their own CA and certificates.
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# The gRPC ext_authz tests call through a real gRPC client (tests/grpc/check.py).
/usr/bin/python3 -c 'import grpc, grpc_tools' >/dev/null 2>&1 || need+=(python3-grpcio python3-grpc-tools)
if [ ${#need[@]} -gt 0 ]; then
  log "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # The nginx package starts its own service instance (the default site on port 80), which the
  # tests do not want: they run their own nginx on random ports. Stop that instance, and only
  # it, through its own init script (or its pid file); any other nginx on the machine is left
  # alone.
  case " ${need[*]} " in
    *" nginx "*)
      if [ -s /run/nginx.pid ]; then
        service nginx stop >/dev/null 2>&1 || /usr/sbin/nginx -s stop >/dev/null 2>&1 || true
      fi
      ;;
  esac
fi

# PostgreSQL on 127.0.0.1:5432, user postgres without a password.
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  log "starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
if ! psql -h 127.0.0.1 -U postgres -d postgres -Atc 'SELECT 1' >/dev/null 2>&1; then
  # A fresh Debian cluster asks local TCP clients for a password: trust them (dev and CI only).
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  hba=/etc/postgresql/$version/main/pg_hba.conf
  log "allowing trust authentication for 127.0.0.1 and ::1 in $hba"
  sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' "$hba"
  pg_ctlcluster --skip-systemctl-redirect "$version" main reload
  sleep 1
  psql -h 127.0.0.1 -U postgres -d postgres -Atc 'SELECT 1' >/dev/null
fi

# Redis on 127.0.0.1:6379, nothing kept on disk.
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  log "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/portcullis.log
  for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 0.5; done
fi

# RabbitMQ on 127.0.0.1:5672 (events). Started in the background; nothing here waits for it.
if command -v rabbitmqctl >/dev/null 2>&1 && ! (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; then
  log "starting RabbitMQ"
  rabbitmq-server -detached >/dev/null 2>&1 || true
fi

# moto's S3 server: the uploads' tests start one each (tests/integration/support/moto.rs).
if ! python3 -c 'import moto.server, flask, flask_cors' >/dev/null 2>&1; then
  log "installing moto[server]"
  python3 -m pip install -q 'moto[server]' >/dev/null
fi

log "PostgreSQL, Redis and nginx are ready"
