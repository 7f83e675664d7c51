/*
 * search.h - the virtual directory .search at the mount root: looking up
 * .search/QUERY runs QUERY (store/query.h) and makes a directory of its
 * matches, best first in readdir order. A match that is a whole file is
 * the file itself (its own inode); a match inside a JSON Lines batch is a
 * read-only file holding that record's line. .search also holds a README,
 * .errors (the reasons recent queries were refused) and the recent
 * queries; each query directory holds .results.json.
 *
 * Inode numbers here have bit 63 set (see backups.h); the kind is in bits
 * 56..62 and the rest says which one. Errors are negative errnos.
 */
#ifndef STASH_FS_SEARCH_H
#define STASH_FS_SEARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "backups.h"
#include "store.h"

#define SEARCH_NAME ".search"
#define FS_INO_SEARCH (FS_INO_VIRTUAL | 2)

struct fs_search;

struct fs_search *fs_search_new(struct stash_store *st);
void fs_search_free(struct fs_search *s);

/* True for the inodes this module answers for. */
bool fs_search_owns(uint64_t ino);
/* Entries of these inodes get no lookup from readdirplus (listed names
 * whose lookup runs a query). */
bool fs_search_lookup_only(uint64_t ino);

int fs_search_getattr(struct fs_search *s, uint64_t ino,
		      struct stash_attr *out);
/* A name in .search or in a query directory; *out may be a live file. */
int fs_search_lookup(struct fs_search *s, uint64_t parent, const char *name,
		     struct stash_attr *out);
int fs_search_readdir(struct fs_search *s, uint64_t ino, uint64_t off,
		      stash_cat_dirent_fn fn, void *arg);

/* The content of a virtual file, as it is at open. */
struct fs_vfile {
	char *data;
	size_t len;
};
int fs_search_open(struct fs_search *s, uint64_t ino, struct fs_vfile **out);
void fs_vfile_free(struct fs_vfile *vf);

/*
 * user.stashfs.path (any live file, and a record's batch) and
 * user.stashfs.line (a record): the value into buf, or its length when
 * size is 0; -ENODATA for other names.
 */
ssize_t fs_search_getxattr(struct fs_search *s, uint64_t ino, const char *name,
			   char *buf, size_t size);

#endif
