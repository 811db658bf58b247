#!/bin/sh
# Finds the mosquitto broker binary, installing Debian's package when it is missing and this
# shell may (root with apt-get). Prints the binary's path on stdout and exits 0; otherwise
# prints why it cannot on stderr and exits 1. Used by the side-by-side benchmark.
set -u

find_mosquitto() {
  for p in /usr/sbin/mosquitto /usr/local/sbin/mosquitto /usr/bin/mosquitto; do
    if [ -x "$p" ]; then echo "$p"; return 0; fi
  done
  p=$(command -v mosquitto 2>/dev/null) && [ -n "$p" ] && { echo "$p"; return 0; }
  return 1
}

if find_mosquitto; then exit 0; fi

if [ "$(id -u)" != "0" ]; then
  echo "mosquitto is not installed and this is not root: install it with 'sudo apt-get install -y mosquitto'" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "mosquitto is not installed and apt-get is not available on this system" >&2
  exit 1
fi
echo "mosquitto not found: installing Debian's package (apt-get update && apt-get install -y mosquitto)" >&2
if ! { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mosquitto >&2; }; then
  echo "apt-get could not install mosquitto (offline or no package source?)" >&2
  exit 1
fi
# The package enables a system service on port 1883; the benchmark runs its own instance.
if command -v systemctl >/dev/null 2>&1; then systemctl stop mosquitto >/dev/null 2>&1 || true; fi
if find_mosquitto; then exit 0; fi
echo "mosquitto was installed but its binary was not found" >&2
exit 1
