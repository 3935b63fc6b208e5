#!/usr/bin/env bash
# Installs every Debian 12 package the build, the tests and the demo need.
# Idempotent: packages already present are left alone, so a warm machine pays nothing.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  clang clang-format libclang-rt-14-dev            # libFuzzer targets and sanitizers
  libssl-dev openssl libsqlite3-dev sqlite3
  libspdlog-dev libfmt-dev libtomlplusplus-dev nlohmann-json3-dev libcli11-dev
  libboost-dev                                     # Boost.Asio (header-only)
  libgtest-dev libgmock-dev libbenchmark-dev
  libglpk-dev                                      # exit control: the attacker LP audit and MILP
  # RDP: the relay's tests and the demo run real clients and hosts under Xvfb
  freerdp2-x11 freerdp2-shadow-x11 xrdp xorgxrdp tigervnc-standalone-server xvfb xauth
  x11-apps imagemagick                             # screenshots of the desktop in tests
  haproxy                                          # the relay benchmark's peer
  # Login: PAM stacks run for real (pam_wrapper, nss_wrapper and libpamtest in tests),
  # fingerprints with libfprint (its virtual_device and virtual_image drivers in tests)
  libpam0g-dev libpam-modules libpam-wrapper libnss-wrapper libpamtest0-dev
  libfprint-2-dev libglib2.0-dev
  # IPsec: the gateway's VICI check is tested against two real charon daemons in network
  # namespaces
  strongswan-charon strongswan-swanctl
  python3 procps util-linux iproute2 passwd
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "bootstrap: missing packages: ${missing[*]}; run as root or install them" >&2
    exit 1
  fi
  echo "bootstrap: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
