#!/usr/bin/env bash
# Makes sure SoftHSM2 (the PKCS#11 module the HSM vault tests run against) is
# installed, then prints the module path as MPC_TEST_PKCS11_MODULE=<path>.
# Idempotent and non-interactive: installs the Debian package `softhsm2` only when
# the module is missing. The tests create and remove their own token directories.
set -euo pipefail

module="${MPC_TEST_PKCS11_MODULE:-/usr/lib/softhsm/libsofthsm2.so}"

if [[ ! -f "$module" ]]; then
    sudo=()
    if [[ "$(id -u)" -ne 0 ]]; then
        if ! command -v sudo >/dev/null 2>&1; then
            echo "ensure-softhsm: $module is missing and installing softhsm2 needs root (no sudo found)" >&2
            exit 1
        fi
        sudo=(sudo -n)
    fi
    echo "ensure-softhsm: $module is missing; installing softhsm2" >&2
    "${sudo[@]}" apt-get update >&2
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends softhsm2 >&2
fi

if [[ ! -f "$module" ]]; then
    echo "ensure-softhsm: softhsm2 is installed but $module does not exist" >&2
    exit 1
fi

echo "MPC_TEST_PKCS11_MODULE=$module"
