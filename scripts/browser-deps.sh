#!/usr/bin/env bash
# Debian packages for the receiver page's browser tests: Chromium (driven by Playwright, never downloaded by it)
# and fonts that cover Korean and colour emoji. Installs only what is missing; needs root (as CI has).
set -euo pipefail
PACKAGES=(chromium fonts-noto-cjk fonts-noto-color-emoji)
missing=()
for package in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "browser-deps: missing ${missing[*]}; as root: apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "browser-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=600 "${missing[@]}"
