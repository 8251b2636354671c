#!/usr/bin/env bash
# Runs every cargo-fuzz target (libFuzzer) for SECONDS each (default 30), seeded with
# the fixtures, and fails if any target finds a crash (panic, failed assertion,
# overflow, sanitizer report, leak, timeout or out-of-memory). scripts/test.sh runs it
# with 20 s per target (the CI short run); see docs/reliability.md, section 5.
#
# Usage: bash scripts/fuzz.sh [SECONDS] [TARGET...]
# Environment:
#   FUZZ_SANITIZER  address (default) or none: passed to `cargo fuzz -s`
#   RUSTUP_TOOLCHAIN  e.g. nightly; by default the active toolchain, with
#                   RUSTC_BOOTSTRAP=1 so that stable accepts cargo-fuzz's -Z flags
# Installs cargo-fuzz (`cargo install cargo-fuzz --version 0.13.2 --locked`) when missing.
# Builds with -O (release) and -a (debug assertions, so overflow checks are on).
# Findings go to fuzz/artifacts/<target>/, the grown corpus to fuzz/corpus/<target>/,
# libFuzzer's output to fuzz/<target>.log (all ignored by git).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-30}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(envelope session_events account_events workflow_domain_events http_dtos)
fi
case "$seconds" in
    '' | *[!0-9]*) echo "fuzz: SECONDS must be a whole number, got '$seconds'" >&2; exit 2 ;;
esac
sanitizer="${FUZZ_SANITIZER:-address}"
case "$sanitizer" in
    address | none) ;;
    *) echo "fuzz: FUZZ_SANITIZER must be address or none, got '$sanitizer'" >&2; exit 2 ;;
esac

export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "==> installing cargo-fuzz"
    start=$SECONDS
    cargo install cargo-fuzz --version 0.13.2 --locked --quiet
    echo "fuzz: cargo-fuzz installed in $((SECONDS - start)) s"
fi
# cargo-fuzz passes -Z flags (sanitizer, coverage), which stable refuses without this.
export RUSTC_BOOTSTRAP=1
fuzz=(cargo fuzz)
flags=(-O -a -s "$sanitizer")

# Seed corpus per target, from the fixtures (hex fixtures decoded to bytes).
seed() {
    local target="$1" dir="fuzz/corpus/$1"
    mkdir -p "$dir"
    case "$target" in
        envelope)
            local f out
            for f in schemas/fixtures/envelope/*.hex; do
                out="$dir/$(basename "$f" .hex).bin"
                tr -d ' \n' <"$f" | perl -ne 'print pack("H*", $_)' >"$out"
            done ;;
        session_events) cp schemas/fixtures/stored/session/*.json "$dir/" ;;
        account_events) cp schemas/fixtures/stored/account/*.json "$dir/" ;;
        workflow_domain_events)
            cp schemas/fixtures/stored/approval/*.json schemas/fixtures/domain/*.json "$dir/" ;;
        http_dtos) cp fuzz/seeds/http_dtos/*.json "$dir/" ;;
        *) echo "fuzz: unknown target '$target'" >&2; exit 2 ;;
    esac
}

echo "==> cargo fuzz build ${flags[*]} ($(cargo --version))"
start=$SECONDS
"${fuzz[@]}" build "${flags[@]}"
echo "fuzz: build took $((SECONDS - start)) s"

failed=()
for target in "${targets[@]}"; do
    seed "$target"
    log="fuzz/$target.log"
    artifacts="fuzz/artifacts/$target"
    mkdir -p "$artifacts"
    before=$(find "$artifacts" -type f | sort)
    start=$SECONDS
    # -timeout: an input that takes 30 s is a finding too (and keeps the run bounded).
    if "${fuzz[@]}" run "${flags[@]}" "$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -timeout=30 -max_len=65536 -print_final_stats=1 \
        >"$log" 2>&1; then
        rc=0
    else
        rc=$?
    fi
    took=$((SECONDS - start))
    # Files libFuzzer wrote to fuzz/artifacts/<target>/ during this run.
    new=$(comm -13 <(printf '%s\n' "$before") <(find "$artifacts" -type f | sort) | sed '/^$/d')
    # libFuzzer's final stats, and its last status line (DONE, or the last before a crash).
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    status_line=$(grep -E '^#[0-9]+[[:space:]].* corp: ' "$log" | tail -n 1 || true)
    corpus=$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<<"$status_line")
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$status_line")
    echo "fuzz: $target ${took} s, ${execs:-?} execs (${rate:-?}/s), corpus ${corpus:-?}, cov ${cov:-?}, new artifacts $(printf '%s' "$new" | grep -c . || true), exit $rc"
    if [ "$rc" -ne 0 ] || [ -n "$new" ]; then
        failed+=("$target")
        echo "!! fuzz: $target FAILED (exit $rc); from $log:" >&2
        grep -E -A1 'panicked at|ERROR:|SUMMARY:' "$log" | head -n 20 >&2 || tail -n 20 "$log" >&2
        # The inputs libFuzzer reports (an input found before has the same name).
        written=$(sed -n "s|.*Test unit written to $PWD/||p" "$log" | sort -u)
        if [ -z "$written$new" ]; then
            echo "!! fuzz: $target wrote no artifact (the failure is in $log)" >&2
        fi
        for artifact in $(printf '%s\n' "$written" "$new" | sed '/^$/d' | sort -u); do
            echo "!! fuzz: artifact $artifact (reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run ${flags[*]} $target $artifact)" >&2
        done
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "!! fuzz: ${#failed[@]} of ${#targets[@]} targets failed: ${failed[*]} (see fuzz/<target>.log, fuzz/artifacts/<target>/)" >&2
    exit 1
fi
echo "fuzz: ${#targets[@]} targets, ${seconds} s each, no crash"
