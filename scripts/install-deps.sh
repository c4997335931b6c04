#!/usr/bin/env bash
# Installs the real tools the tests compare against, when they are missing:
# Debian's qemu-utils (qemu-img, qemu-io), xorriso (real ISO fixtures),
# chromium (the browser tests drive /usr/bin/chromium; never a downloaded one),
# nodejs (runs the CRC32 wasm kernel's unit test) and npm (installs TypeScript
# from package-lock.json for `make types`; Debian's nodejs does not bring it).
# As root it uses apt-get; otherwise it names the packages and fails.
set -euo pipefail

need=()
for pair in qemu-img:qemu-utils qemu-io:qemu-utils xorriso:xorriso chromium:chromium node:nodejs npm:npm "$@"; do
  cmd=${pair%%:*} pkg=${pair##*:}
  if [ "$cmd" = chromium ]; then
    [ -x /usr/bin/chromium ] || need+=("$pkg") # the tests run exactly this one
    continue
  fi
  command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg")
done
[ ${#need[@]} -eq 0 ] && exit 0
mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
if [ "$(id -u)" != 0 ]; then
  echo "missing Debian packages: ${need[*]}" >&2
  echo "install them with: sudo apt-get install ${need[*]}" >&2
  exit 1
fi
echo "installing Debian packages: ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
