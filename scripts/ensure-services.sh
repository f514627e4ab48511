#!/usr/bin/env bash
# Make sure what the test suite needs is installed and running: PostgreSQL on
# 127.0.0.1:5432 (trust auth, user postgres). Safe to run again.
set -euo pipefail

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

apt_install() {
    local missing=()
    for pkg in "$@"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "ensure-services: installing ${missing[*]}"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

if ! pg_up; then
    command -v pg_ctlcluster >/dev/null 2>&1 || apt_install postgresql postgresql-client
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    echo "ensure-services: starting PostgreSQL $version"
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    for _ in $(seq 1 30); do pg_up && break; sleep 1; done
    pg_up || { echo "ensure-services: PostgreSQL did not start" >&2; exit 1; }
fi
psql -h 127.0.0.1 -U postgres -d postgres -tAc "select 1" >/dev/null || {
    echo "ensure-services: cannot connect to PostgreSQL as postgres on 127.0.0.1 (trust auth expected)" >&2
    exit 1
}

# A real browser for the admin's end-to-end test (tests/e2e): Debian's Chromium
# and its driver (no browser download at test time).
apt_install chromium chromium-driver

# A real Prometheus for the monitoring end-to-end test (tests/e2e/test_monitoring.py):
# Debian's package gives `prometheus` and `promtool`; the tests run their own instance.
apt_install prometheus
