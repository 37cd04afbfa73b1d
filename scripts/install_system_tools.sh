#!/usr/bin/env bash
# System tools that some tests talk to for real (skipped with a reason when absent):
#   openssh-server  an SSH "board" on 127.0.0.1 for `bench --device ssh://...` tests
#   adb             the real adb client, against a fake device, for `bench --device adb://...`
#   junit5          JUnit 5's console launcher: runs the Android demo's plain-Kotlin tests
#   libjacoco-java  JaCoCo: line coverage of the Android app's Kotlin under those tests
#   kotlin-compiler (npm) kotlinc, to compile the Android demo's plain-Kotlin module on the JVM
# Needs root (apt-get, npm -g); otherwise it says what it skipped and exits 0.
set -euo pipefail
APT_PACKAGES=(openssh-server adb junit5 default-jdk-headless libjacoco-java)
NPM_PACKAGES=(kotlin-compiler@2.4.20)

if [ "$(id -u)" != 0 ]; then
  echo "install_system_tools: not root, skipped: ${APT_PACKAGES[*]} ${NPM_PACKAGES[*]} (their tests will skip)"
  exit 0
fi
missing=()
for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if command -v npm >/dev/null; then
  # the npm package puts only kotlinc-js on PATH; its full kotlinc lives in the package folder
  [ -x "$(npm root -g)/kotlin-compiler/bin/kotlinc" ] || npm install -g --silent "${NPM_PACKAGES[@]}" >/dev/null
else
  echo "install_system_tools: npm not found, skipped ${NPM_PACKAGES[*]}"
fi
echo "install_system_tools: ok"
