#!/usr/bin/env bash
# Installs the system packages the tests need, once: qemu-user-static, which runs the arm64
# agent on an amd64 machine (and the amd64 one on an arm64 machine) against fixture trees;
# chromium, which the web page's browser test drives headless, with a font for its screenshot;
# rpm, which reads the .rpm packages deploy/packaging builds (dpkg-deb reads the .deb ones),
# and systemd, whose systemd-analyze verifies the units (a minimal Debian image lacks it).
# Idempotent: does nothing when everything is there. Needs root (or sudo) for apt-get.
set -euo pipefail

need=()
command -v qemu-aarch64-static >/dev/null 2>&1 || need+=(qemu-user-static)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v rpm >/dev/null 2>&1 || need+=(rpm)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
[ -x /bin/kill ] || need+=(procps)   # the collector unit's ExecReload; systemd-analyze verify checks it
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
[ ${#need[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "deps: need root or sudo to install: ${need[*]}" >&2; exit 1; }
  sudo=sudo
fi
echo "deps: installing ${need[*]} (apt-get)"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
