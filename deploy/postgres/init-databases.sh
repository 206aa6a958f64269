#!/bin/sh
# First start of the compose `postgres` service only (docker-entrypoint-initdb.d): one database and
# one owner role per service, so neither Dagster, the warehouse nor MLflow can read the others' tables.
# Passwords come from the container's environment (deploy/compose.yaml), never from this file.
set -eu

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v dagster_user="$DAGSTER_PG_USER" -v dagster_password="$DAGSTER_PG_PASSWORD" -v dagster_db="$DAGSTER_PG_DB" \
    -v warehouse_user="$CLAIMS_WAREHOUSE_USER" -v warehouse_password="$CLAIMS_WAREHOUSE_PASSWORD" -v warehouse_db="$CLAIMS_WAREHOUSE_DB" \
    -v mlflow_user="$MLFLOW_DB_USER" -v mlflow_password="$MLFLOW_DB_PASSWORD" -v mlflow_db="$MLFLOW_DB" <<'SQL'
CREATE ROLE :"dagster_user" LOGIN PASSWORD :'dagster_password';
CREATE DATABASE :"dagster_db" OWNER :"dagster_user";
CREATE ROLE :"warehouse_user" LOGIN PASSWORD :'warehouse_password';
CREATE DATABASE :"warehouse_db" OWNER :"warehouse_user";
CREATE ROLE :"mlflow_user" LOGIN PASSWORD :'mlflow_password';
CREATE DATABASE :"mlflow_db" OWNER :"mlflow_user";
REVOKE ALL ON DATABASE :"dagster_db", :"warehouse_db", :"mlflow_db" FROM PUBLIC;
SQL
