#!/usr/bin/env bash
# Build an emulated aarch64 "board" for the opt-in ARM correctness test (pytest -m arm):
#   an arm64 Debian bookworm root (mmdebstrap, packages only extracted: no binfmt_misc needed)
#   + python3 from the root + numpy and onnxruntime==1.32.0 aarch64 wheels from PyPI (pip run
#   inside the root under qemu-user), + ROOT/pocketbert-python: a wrapper that runs that python
#   through qemu-aarch64 10 (bookworm-backports; bookworm's qemu 7.2 crashes on onnxruntime 1.32).
# No torch in the root: torch's aarch64 wheel is a CUDA build. ExecuTorch is not installed either.
#
#   usage: sudo scripts/build_arm_root.sh /work/arm-root          (~10 min, ~600 MB)
#   then:  POCKETBERT_ARM_ROOT=/work/arm-root .venv/bin/python -m pytest -m arm tests/test_device_ssh.py
#   or by hand: pocketbert bench --device 'ssh://root@127.0.0.1?python=/work/arm-root/pocketbert-python' ...
# Needs root (apt-get, mmdebstrap) and network access to deb.debian.org and PyPI.
set -euo pipefail
ROOT=${1:?usage: build_arm_root.sh ROOT_DIR}
ORT_VERSION=${ORT_VERSION:-1.32.0}
QEMU_MIN_MAJOR=10

[ "$(id -u)" = 0 ] || { echo "build_arm_root: needs root (apt-get, mmdebstrap)" >&2; exit 1; }
log() { echo "build_arm_root: $*"; }

# 1. host tools: mmdebstrap, qemu-user >= 10 from bookworm-backports (only the qemu-aarch64
#    binary is used, by path; no binfmt_misc handler is registered).
qemu_major() { qemu-aarch64 --version 2>/dev/null | sed -n 's/^qemu-aarch64 version \([0-9]*\).*/\1/p'; }
if [ "$(qemu_major || true)" = "" ] || [ "$(qemu_major)" -lt $QEMU_MIN_MAJOR ] || ! command -v mmdebstrap >/dev/null; then
  if ! grep -rqs '^deb .*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    log "adding bookworm-backports to apt sources"
    echo 'deb http://deb.debian.org/debian bookworm-backports main' > /etc/apt/sources.list.d/bookworm-backports.list
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -t bookworm-backports qemu-user
fi
QEMU=$(command -v qemu-aarch64)
[ "$(qemu_major)" -ge $QEMU_MIN_MAJOR ] || { echo "build_arm_root: qemu-aarch64 $(qemu_major) < $QEMU_MIN_MAJOR" >&2; exit 1; }
log "using $($QEMU --version | head -1)"

# 2. the root, built in a temp folder next to ROOT and renamed at the end (nothing half-built).
mkdir -p "$(dirname "$ROOT")"
ROOT=$(cd "$(dirname "$ROOT")" && pwd)/$(basename "$ROOT")
[ -e "$ROOT" ] && { echo "build_arm_root: $ROOT exists; remove it first" >&2; exit 1; }
TMP=$(mktemp -d "$ROOT.partial.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
log "mmdebstrap arm64 bookworm -> $TMP (extract only)"
mmdebstrap --quiet --arch=arm64 --variant=extract \
  --include=python3,python3-pip,python3-venv,ca-certificates,libstdc++6,libgomp1 \
  bookworm "$TMP" http://deb.debian.org/debian

# 3. the wrapper: the board's "python3" (qemu -L makes the root's /lib, /usr, /etc the guest's).
cat > "$TMP/pocketbert-python" <<EOF
#!/bin/sh
# aarch64 python3 of this root, emulated by qemu-user (built by pocketbert scripts/build_arm_root.sh)
HERE=\$(dirname "\$(readlink -f "\$0")")
exec "$QEMU" -L "\$HERE" "\$HERE/usr/bin/python3" "\$@"
EOF
chmod +x "$TMP/pocketbert-python"
"$TMP/pocketbert-python" -c 'import platform, sys; print("guest:", platform.machine(), sys.version.split()[0])'

# 4. numpy + onnxruntime wheels, pip running inside the root under qemu (it picks aarch64 wheels
#    itself). --target: into the root's own dist-packages (the root is throwaway, nothing on the host).
SITE=$TMP/usr/lib/python3/dist-packages
log "pip install numpy onnxruntime==$ORT_VERSION (under qemu; slow)"
"$TMP/pocketbert-python" -m pip install --quiet --no-cache-dir --disable-pip-version-check \
  --only-binary=:all: --target "$SITE" "onnxruntime==$ORT_VERSION" numpy
"$TMP/pocketbert-python" -c 'import platform, numpy, onnxruntime as ort; print("guest:", platform.machine(), "numpy", numpy.__version__, "onnxruntime", ort.__version__, ort.get_available_providers())'

mv "$TMP" "$ROOT"
trap - EXIT
log "done: $ROOT (python: $ROOT/pocketbert-python)"
