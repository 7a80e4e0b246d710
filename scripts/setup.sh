#!/usr/bin/env bash
# Installs what tern needs on Debian 12, builds it into build/, and builds
# the default guest. Idempotent: safe to run again, quick when nothing changed.
set -euo pipefail

cd "$(dirname "$0")/.."

PACKAGES=(
	build-essential meson ninja-build pkg-config
	libfdt-dev libcmocka-dev libxxhash-dev libjansson-dev liblz4-dev
	python3-pytest python3-pexpect
	qemu-system-misc
	gcc-riscv64-linux-gnu
	device-tree-compiler
	xz-utils cpio gzip zstd e2fsprogs
	iproute2 iputils-ping
	qemu-user
)

missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing+=("$p")
done
if ((${#missing[@]})); then
	if [[ $(id -u) -ne 0 ]]; then
		echo "setup: missing packages: ${missing[*]}; run as root (sudo $0)" >&2
		exit 1
	fi
	echo "setup: installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" >/dev/null
fi

werror=false
[[ "${CI:-}" == "true" ]] && werror=true
if [[ ! -f build/build.ninja ]]; then
	meson setup build -Dwerror=$werror >/dev/null
else
	meson configure build -Dwerror=$werror >/dev/null
fi
ninja -C build >/dev/null

guest/build-guest.sh
