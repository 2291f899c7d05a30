#!/usr/bin/env bash
# Headless Chromium for the report's browser tests: Debian's package, installed when missing (as root,
# or through sudo). Elsewhere it stops and names what to install: a test must not skip for want of it.
set -euo pipefail
for name in chromium chromium-browser google-chrome; do
  if command -v "$name" >/dev/null 2>&1; then exit 0; fi
done
if [ -f /etc/debian_version ] && command -v apt-get >/dev/null 2>&1; then
  as_root=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then as_root="sudo"; else
      echo "headless Chromium is missing: run 'apt-get install -y chromium' as root" >&2; exit 1
    fi
  fi
  echo "installing headless Chromium (apt-get install chromium) for the report tests"
  $as_root apt-get update -qq
  $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  exit 0
fi
echo "headless Chromium is missing: install Chromium (or Google Chrome) so that 'chromium' is on PATH" >&2
exit 1
