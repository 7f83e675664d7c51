#!/bin/bash
# Install the Debian packages stashfs needs to build, run and test.
# Runs apt-get only when something is missing. Needs root.
set -eu

packages=(
	build-essential cmake pkg-config
	libfuse3-dev fuse3 libsqlite3-dev zlib1g-dev libzstd-dev libssl-dev
	libcjson-dev libcmocka-dev libarchive-dev
	# static checks
	clang-format cppcheck
	# used by the tests and benchmarks
	attr rsync psmisc util-linux procps time zstd
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "stashfs: missing packages: ${missing[*]} (run as root to install)" >&2
		exit 1
	fi
	echo "Installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq "${missing[@]}" >/dev/null
fi
