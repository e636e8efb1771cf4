#!/usr/bin/env bash
# Debian's Chromium for the headless browser test (test/e2e/playground.test.ts), which drives it
# through playwright-core; test tools' own browser downloads are not used. Idempotent: installs
# the `chromium` package only when /usr/bin/chromium is missing. Prints the binary's path last.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [ ! -x "$CHROMIUM" ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "chromium.sh: not root and no sudo: install Debian's chromium package by hand" >&2; exit 1; }
    sudo="sudo"
  fi
  echo "chromium.sh: installing Debian's chromium package" >&2
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >&2
fi

[ -x "$CHROMIUM" ] || { echo "chromium.sh: $CHROMIUM is still missing after the install" >&2; exit 1; }
echo "chromium.sh: $("$CHROMIUM" --version 2>/dev/null || echo "version unknown")" >&2
echo "$CHROMIUM"
