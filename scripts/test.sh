#!/usr/bin/env bash
# The test command: installs and starts what the tests need (SoftHSM2, PostgreSQL,
# a Kafka-protocol broker, promtool), then runs the lints, every test and a short fuzz run of
# every cargo-fuzz target (installing cargo-fuzz if needed).
# Usage: bash scripts/test.sh   (from anywhere; works on a fresh machine with Rust)
# FUZZ_SECONDS=N sets the fuzz time per target (default 20; 0 skips the fuzz run).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> toolchain: $(cargo --version)"
# A CI build starts from nothing and runs once: incremental artifacts (larger than the
# build itself) would only take disk.
if [ "${CI:-}" = true ]; then
    export CARGO_INCREMENTAL=0
fi

# Lints first: cheap, and a red lint fails the run like a red test.
echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "==> dependency boundaries"
bash scripts/check-boundaries.sh
# The party core builds for the browser (no tokio runtime, Kafka, PKCS#11 or HTTP client).
echo "==> portable party core (wasm32-unknown-unknown)"
rustup target add wasm32-unknown-unknown
cargo check -p mpc-party --lib --no-default-features --target wasm32-unknown-unknown --locked

# The OpenAPI document `mpc serve` serves, checked by an independent validator
# (openapi-spec-validator from PyPI, kept under ~/.cache).
validator="$HOME/.cache/mpc-openapi-validator"
if [ ! -d "$validator/openapi_spec_validator" ]; then
    echo "==> installing openapi-spec-validator"
    PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check \
        --no-input --target "$validator" openapi-spec-validator==0.9.0
fi
echo "==> OpenAPI document (openapi-spec-validator)"
openapi=$(mktemp --suffix=.json)
cargo run --locked --quiet -p mpc-cli --bin mpc -- openapi >"$openapi"
PYTHONPATH="$validator" python3 -m openapi_spec_validator "$openapi"
rm -f "$openapi"

# The compose setup's Prometheus configuration and alert rules, checked and their
# rule unit tests run by promtool (Debian's prometheus package).
if ! command -v promtool >/dev/null 2>&1; then
    echo "==> installing promtool"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus
fi
echo "==> promtool (compose/prometheus)"
promtool check config --syntax-only compose/prometheus/prometheus.yml
promtool check rules compose/prometheus/alerts.yml
(cd compose/prometheus && promtool test rules alerts.test.yml)
# Every query of the Grafana dashboard parses (as a recording rule each).
dashboard_rules=$(mktemp --suffix=.yml)
python3 - compose/grafana/mpc-platform.json >"$dashboard_rules" <<'PY'
import json, sys
dashboard = json.load(open(sys.argv[1]))
print("groups:\n  - name: dashboard\n    rules:")
for panel in dashboard["panels"]:
    for target in panel["targets"]:
        print(f"      - record: dashboard:panel{panel['id']}:{target['refId']}")
        print(f"        expr: {json.dumps(target['expr'])}")
PY
promtool check rules "$dashboard_rules"
rm -f "$dashboard_rules"

# Real infrastructure for the integration tests: the PostgreSQL on 127.0.0.1:5432
# (installed and started if none runs) and a Kafka-protocol broker on loopback.
# The gateway's TLS test makes its certificate with the openssl tool.
if ! command -v openssl >/dev/null 2>&1; then
    echo "==> installing openssl"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl
fi
echo "==> SoftHSM2"
bash scripts/ensure-softhsm.sh
echo "==> PostgreSQL"
bash scripts/ensure-postgres.sh
export MPC_TEST_POSTGRES_URL="${MPC_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}"
echo "==> Kafka-protocol broker"
log=$(mktemp)
trap 'rm -f "$log"; bash scripts/ensure-kafka.sh stop >/dev/null 2>&1 || true' EXIT
eval "$(bash scripts/ensure-kafka.sh | grep '^MPC_TEST_KAFKA_BROKERS=' | sed 's/^/export /')"
echo "==> durable Kafka-protocol broker (the broker-restart test starts its own)"
eval "$(bash scripts/ensure-kafka.sh durable | grep '^MPC_TEST_TANSU_DURABLE=' | sed 's/^/export /')"

echo "==> cargo test"
cargo test --workspace --all-targets --locked --no-fail-fast 2>&1 | tee "$log"

# A short libFuzzer run of every cargo-fuzz target (FUZZ_SECONDS each, default 20; 0
# skips it), AddressSanitizer and debug assertions on (docs/reliability.md, section 5).
# A crash fails the command, after the summary line below.
fuzz_seconds="${FUZZ_SECONDS:-20}"
fuzz_status=0
if [ "$fuzz_seconds" != 0 ]; then
    echo "==> cargo fuzz (${fuzz_seconds} s per target)"
    bash scripts/fuzz.sh "$fuzz_seconds" || fuzz_status=$?
fi

# One closing line over every test binary.
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$fuzz_status"
