#!/usr/bin/env bash
# mediakeep's entry points, with no prerequisite beyond bash and Python 3.11+:
#   bash dev.sh run     set up .venv (runtime dependencies only), start the service on
#                       127.0.0.1:8285 (it creates or upgrades the schema itself)
#   bash dev.sh test    set up .venv with the dev extras and the test services' packages, lint,
#                       run the whole suite
#   bash dev.sh lint | bench | venv
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
VENV=.venv
BIN=$VENV/bin

as_root_apt() {
    # Installs Debian packages when we are root on an apt system; otherwise says what is missing.
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q >/dev/null
        apt-get install -y -q "$@" >/dev/null
    else
        echo "please install these system packages: $*" >&2
    fi
}

system_packages() {
    local wanted=()
    [ -e /usr/lib/x86_64-linux-gnu/libmagic.so.1 ] || ls /usr/lib/*/libmagic.so.1 >/dev/null 2>&1 \
        || wanted+=(libmagic1)
    "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1 || wanted+=(python3-venv)
    command -v curl >/dev/null 2>&1 || wanted+=(curl)
    if [ "${1:-}" = test ]; then
        ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || wanted+=(postgresql)
        command -v redis-server >/dev/null 2>&1 || wanted+=(redis-server)
        command -v espeak-ng >/dev/null 2>&1 || wanted+=(espeak-ng)
        [ -x /usr/bin/chromium ] || wanted+=(chromium)  # tests/web: Playwright drives Debian's
        command -v npm >/dev/null 2>&1 || wanted+=(nodejs npm)  # tests/sdk_typescript: the TS SDK
        # tests/quarantine: a real clamd with a test signature database (never freshclam).
        command -v clamd >/dev/null 2>&1 || [ -x /usr/sbin/clamd ] || wanted+=(clamav clamav-daemon)
    fi
    if [ ${#wanted[@]} -gt 0 ]; then as_root_apt "${wanted[@]}"; fi
}

venv() {
    # `venv` installs what the server needs (`pip install -e .`); `venv dev` adds the dev extras
    # (test, lint and benchmark tools). Each has its own stamp, redone when pyproject.toml changes;
    # a dev install covers a runtime one, so `run` after `test` installs nothing.
    local extras=${1:-}
    local stamp=$VENV/.installed${extras:+-$extras} dev_stamp=$VENV/.installed-dev
    if [ ! -x $BIN/python ]; then "$PYTHON" -m venv $VENV; fi
    if [ -z "$extras" ] && [ -e $dev_stamp ] && [ ! pyproject.toml -nt $dev_stamp ]; then return; fi
    if [ ! -e $stamp ] || [ pyproject.toml -nt $stamp ]; then
        $BIN/python -m pip install -q --upgrade pip
        $BIN/python -m pip install -q -e ".${extras:+[$extras]}"
        touch $stamp
    fi
}

lint() {
    $BIN/ruff check src tests bench
    $BIN/mypy
    $BIN/lint-imports  # the layers of docs/architecture.md: a new import circle fails here
}

case "${1:-run}" in
    run)
        system_packages run
        venv
        exec $BIN/mediakeep serve "${@:2}"  # it creates or upgrades the schema first
        ;;
    test)
        system_packages test
        venv dev
        lint
        exec $BIN/pytest -q -ra "${@:2}"
        ;;
    lint) venv dev; lint ;;
    venv) system_packages run; venv dev ;;
    bench)
        # Every benchmark, one after another (each compares with its peer or limit in-run),
        # then docs/benchmarks.md from their output; `bash dev.sh bench --quick` is a smoke run.
        venv dev
        exec $BIN/python bench/report.py "${@:2}"
        ;;
    *) echo "usage: bash dev.sh run|test|lint|bench|venv" >&2; exit 2 ;;
esac
