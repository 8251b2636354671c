#!/usr/bin/env bash
# The build decides who may touch a share: the coordinator-side crates and the shared
# crypto crate must not link the threshold engine (dkls23), PKCS#11 (cryptoki) or the
# vault's password hashing (argon2), not even through another crate. Fails, naming
# the path, if `cargo tree` finds one of them among their normal dependencies on any
# target.
# Usage: bash scripts/check-boundaries.sh   (from anywhere)
set -euo pipefail
cd "$(dirname "$0")/.."

crates=(mpc-actors mpc-gateway mpc-projections mpc-store mpc-outbox mpc-crypto)
forbidden=(dkls23 cryptoki argon2)

status=0
for crate in "${crates[@]}"; do
    for dep in "${forbidden[@]}"; do
        if ! out=$(cargo tree --locked --target all -e normal -p "$crate" -i "$dep" 2>&1); then
            # A package that is in no dependency graph of the workspace at all.
            if grep -q "specification \`$dep\` did not match any packages" <<<"$out"; then
                continue
            fi
            echo "check-boundaries: cargo tree failed for $crate / $dep:" >&2
            echo "$out" >&2
            exit 2
        fi
        if grep -q "^$dep v" <<<"$out"; then
            echo "check-boundaries: $crate depends on $dep, which it must never link:" >&2
            echo "$out" >&2
            status=1
        fi
    done
done
if [ "$status" != 0 ]; then
    echo "check-boundaries: FAILED (see ARCHITECTURE.md, boundaries)" >&2
    exit 1
fi
echo "check-boundaries: ${crates[*]} link none of ${forbidden[*]}"
