#!/usr/bin/env bash
# Installs what building and testing spikeword needs on Debian, only what is missing.
# Run as root (or with sudo available). Safe to run again.
set -euo pipefail

packages=(
  pkg-config libasound2-dev        # cpal (ALSA)
  pulseaudio pulseaudio-utils libasound2-plugins   # virtual microphone for the end-to-end test
  xvfb libgl1-mesa-dri libegl1 libgl1 libxkbcommon-x11-0 libxcursor1 libxrandr2 libxi6 x11-utils  # the window under Xvfb
  fonts-dejavu-core                 # plots' text
  imagemagick                       # screenshots of the window in tests (import, convert)
  xdotool                           # typing into the window in tests
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null; then
  echo "setup: cargo not found; install Rust from your distribution or rustup" >&2
  exit 1
fi
