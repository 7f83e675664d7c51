/*
 * fs.h - the FUSE layer: serve a store at a mount point with libfuse's
 * low-level API, multithreaded.
 *
 * It only translates requests into store/ calls and replies exactly once;
 * every rule about data lives in store/.
 */
#ifndef STASH_FS_H
#define STASH_FS_H

#include <fuse_lowlevel.h>

#include "store.h"

/*
 * Make a FUSE session serving st, with the command-line style args
 * (e.g. "-o", "allow_other"). The session is not mounted yet.
 * Returns NULL with a logged reason on failure.
 */
struct fuse_session *stash_fs_session_new(struct stash_store *st,
					  struct fuse_args *args);

/* Serve requests until unmounted or a signal arrives. 0 or -errno. */
int stash_fs_loop(struct fuse_session *se);

#endif
