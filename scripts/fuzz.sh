#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS each (default 30), seeded with the
# fixtures. Not part of scripts/test.sh (CI time); `cargo test` runs the same target
# functions over the fixtures and deterministic mutations (engine/tests/mutations.rs).
#
# Usage: bash scripts/fuzz.sh [SECONDS] [TARGET...]
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`) and a nightly toolchain for
# the sanitizer flags; without nightly it uses stable with RUSTC_BOOTSTRAP=1.
# Findings go to fuzz/artifacts/<target>/; the grown corpus to fuzz/corpus/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-30}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(envelope session_events account_events workflow_domain_events http_dtos)
fi

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2
    exit 1
fi
if rustup run nightly rustc --version >/dev/null 2>&1; then
    fuzz=(cargo +nightly fuzz)
else
    export RUSTC_BOOTSTRAP=1
    fuzz=(cargo fuzz)
fi

# Seed corpus per target, from the fixtures (hex fixtures decoded to bytes).
seed() {
    local target="$1" dir="fuzz/corpus/$1"
    mkdir -p "$dir"
    case "$target" in
        envelope)
            for f in schemas/fixtures/envelope/*.hex; do
                tr -d ' \n' <"$f" | perl -ne 'print pack("H*", $_)' >"$dir/$(basename "$f" .hex).bin"
            done ;;
        session_events) cp schemas/fixtures/session/*.json "$dir/" ;;
        account_events) cp schemas/fixtures/account/*.json "$dir/" ;;
        workflow_domain_events)
            cp schemas/fixtures/approval/*.json schemas/fixtures/domain/*.json "$dir/" ;;
        http_dtos) cp fuzz/seeds/http_dtos/*.json "$dir/" ;;
    esac
}

"${fuzz[@]}" build -O
status=0
for target in "${targets[@]}"; do
    seed "$target"
    echo "==> $target for ${seconds}s"
    if ! "${fuzz[@]}" run -O "$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -max_len=65536 -print_final_stats=1 2>"fuzz/$target.log"; then
        echo "!! $target found a failure: see fuzz/$target.log and fuzz/artifacts/$target/" >&2
        status=1
    fi
    grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb)|^#[0-9]+.*DONE' "fuzz/$target.log" || true
done
exit "$status"
