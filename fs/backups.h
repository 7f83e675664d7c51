/*
 * backups.h - the virtual directory .backups at the mount root: one
 * subdirectory per snapshot (store/snapshot.c). mkdir takes a snapshot,
 * rmdir drops it, rename renames it; each subdirectory is the snapshot's
 * read-only tree, served by the store's usual calls.
 *
 * .backups is not listed by readdir of the root (as ZFS hides .zfs), so
 * find, du, rsync and tar over the mount do not descend into snapshots.
 * Errors are negative errnos, as in store/.
 */
#ifndef STASH_FS_BACKUPS_H
#define STASH_FS_BACKUPS_H

#include "store.h"

/* Virtual inode numbers have bit 63 set: the catalog never uses it. */
#define FS_INO_VIRTUAL (UINT64_C(1) << 63)
#define FS_INO_BACKUPS (FS_INO_VIRTUAL | 1)
#define BACKUPS_NAME ".backups"

int backups_getattr(struct stash_store *st, struct stash_attr *out);
int backups_lookup(struct stash_store *st, const char *name,
		   struct stash_attr *out);
int backups_mkdir(struct stash_store *st, const char *name,
		  struct stash_attr *out);
int backups_rmdir(struct stash_store *st, const char *name);
/* flags: STASH_RENAME_NOREPLACE (always the behaviour: a snapshot is
 * never replaced) or STASH_RENAME_EXCHANGE (refused). */
int backups_rename(struct stash_store *st, const char *name,
		   const char *newname, unsigned flags);
/* List snapshots after cookie off (0 = from the first), oldest first;
 * fn's next_off is the cookie to resume after each. */
int backups_readdir(struct stash_store *st, uint64_t off,
		    stash_cat_dirent_fn fn, void *arg);

#endif
