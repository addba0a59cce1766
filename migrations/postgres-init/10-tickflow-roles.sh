#!/bin/sh
# Runs once, when the TimescaleDB container initialises an empty data volume (mounted into
# /docker-entrypoint-initdb.d by docker-compose.yml). It creates tickflow's database roles with
# LOGIN and the passwords given as Docker secrets; migration 20261121018800_roles.sql then finds
# them and only grants. psql's :'var' quoting makes each password a literal, whatever it holds.
set -eu
secret() { cat "/run/secrets/$1"; }
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v ingester="$(secret tickflow_ingester_password)" \
  -v worker="$(secret tickflow_worker_password)" \
  -v grafana="$(secret tickflow_grafana_password)" <<'SQL'
create role tickflow_ingester login password :'ingester';
create role tickflow_worker login password :'worker';
create role tickflow_grafana login password :'grafana';
SQL
