#!/bin/bash
# One command from a fresh Debian machine to a mounted store:
# install what is missing, build, create a store on first run (key file
# kept outside the store, mode 0600) and mount it.
# Usage: sudo tools/setup.sh [MOUNTPOINT] [STORE]
#   defaults: MOUNTPOINT=/mnt/stash  STORE=/var/lib/stashfs/store
set -eu
cd "$(dirname "$0")/.."

mnt=${1:-/mnt/stash}
store=${2:-/var/lib/stashfs/store}

tools/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
install -m 0755 build/stashfs /usr/local/bin/stashfs

if [ ! -e "$store/stashfs.json" ]; then
	mkdir -p "$(dirname "$store")"
	stashfs init "$store"
fi
mkdir -p "$mnt"
if mountpoint -q "$mnt"; then
	echo "$mnt is already mounted"
else
	stashfs mount "$store" "$mnt"
fi
cat <<MSG

stashfs is mounted at $mnt (store: $store).
Next:
  cp -a ~/some/folder $mnt/files/     # write: deduplicated, compressed, encrypted
  ls -l $mnt/files                      # use it like any disk
  stashfs stats $mnt                    # what it holds and how well it packs
  stashfs umount $mnt                   # unmount (waits until all is written)
Keep a copy of the key file named above: without it the store cannot be read.
MSG
