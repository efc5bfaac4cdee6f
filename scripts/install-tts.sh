#!/usr/bin/env bash
# Installs the offline text-to-speech engines that `spikeword synth` drives
# (see shared/TTS.md). Idempotent; run as root on Debian bookworm.
# Packages that are not available are skipped with a warning, so a partial
# install still gives a usable (smaller) synthetic data set.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "install-tts.sh: must run as root" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive

# --- enable contrib + non-free for the mirror already configured -------------
# mbrola voices, festvox rab/don and pico live in contrib/non-free, which a
# fresh machine does not enable. Reuse the exact URI from debian.sources.
SRC=/etc/apt/sources.list.d/debian.sources
EXTRA=/etc/apt/sources.list.d/debian-contrib-nonfree.sources
if [ ! -f "$EXTRA" ]; then
  uri=""
  if [ -f "$SRC" ]; then
    # first URIs: line is the main archive (the second one is security)
    uri=$(awk '/^URIs:/ { print $2; exit }' "$SRC")
  fi
  if [ -z "$uri" ]; then
    uri="http://deb.debian.org/debian"
    echo "install-tts.sh: warning: no URIs: in $SRC, using $uri" >&2
  fi
  cat > "$EXTRA" <<SOURCES
Types: deb
URIs: $uri
Suites: bookworm bookworm-updates
Components: contrib non-free
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
  echo "install-tts.sh: wrote $EXTRA ($uri)"
fi

apt-get update -qq || echo "install-tts.sh: warning: apt-get update failed; using the package lists already here" >&2

PKGS=(
  sox
  espeak-ng
  mbrola
  mbrola-us1 mbrola-us2 mbrola-us3 mbrola-en1
  mbrola-de1 mbrola-de2 mbrola-de3 mbrola-de4 mbrola-de5 mbrola-de6
  mbrola-gr2 mbrola-ro1 mbrola-nl2 mbrola-fr1 mbrola-fr4 mbrola-hu1
  mbrola-sw1 mbrola-sw2 mbrola-af1 mbrola-pl1
  flite
  festival
  festvox-kallpc16k festvox-kdlpc16k festvox-rablpc16k festvox-don
  festvox-us-slt-hts festvox-us1 festvox-us2 festvox-us3 festvox-en1
  libttspico-utils
)

# Fast path: everything in one transaction. If any package is missing or
# broken apt aborts the whole set, so fall back to one at a time.
if ! apt-get install -y -qq --no-install-recommends "${PKGS[@]}"; then
  echo "install-tts.sh: bulk install failed, retrying package by package" >&2
  failed=()
  for p in "${PKGS[@]}"; do
    # Capture first: `apt-cache ... | grep -q` can die of SIGPIPE, which pipefail reports.
    policy=$(apt-cache policy "$p" 2>/dev/null || true)
    if ! grep -q 'Candidate: [^(]' <<<"$policy"; then
      echo "install-tts.sh: warning: $p not available, skipped" >&2
      failed+=("$p")
      continue
    fi
    if ! apt-get install -y -qq --no-install-recommends "$p"; then
      echo "install-tts.sh: warning: $p failed to install, skipped" >&2
      failed+=("$p")
    fi
  done
  if [ "${#failed[@]}" -gt 0 ]; then
    echo "install-tts.sh: skipped: ${failed[*]}" >&2
  fi
fi

# Piper (neural, pip) is deliberately not installed: ~0.15 s per word is too
# slow for the data-set sizes we render.
echo "install-tts.sh: done"
