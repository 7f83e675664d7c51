/*
 * sqlvfs.h - open the catalog through an SQLite VFS shim that seals every
 * page of the database and of its WAL with AES-256-GCM.
 *
 * Each page keeps its nonce and tag in the page's reserve bytes; the page
 * number (main db) or frame offset (WAL) and the file role are bound in as
 * associated data, so pages cannot be moved or swapped between files.
 * Only the main database and its WAL may be opened; no -shm file exists
 * (exclusive locking mode keeps the WAL index on the heap); temp files live
 * in memory. What stays visible on disk is listed in docs/THREAT-MODEL.md.
 */
#ifndef STASH_SQLVFS_H
#define STASH_SQLVFS_H

#include <sqlite3.h>
#include <stdint.h>

#include "util.h"

#define STASH_SQLVFS_PAGE_SIZE 4096
#define STASH_SQLVFS_RESERVE (STASH_NONCE_LEN + STASH_TAG_LEN)

/*
 * Open (creating if missing, when create is non-zero) the database at path,
 * sealed with key (copied; wiped when the database is closed). Sets the
 * pragmas the shim relies on: page_size, reserve bytes, locking_mode
 * EXCLUSIVE, journal_mode WAL, temp_store MEMORY, mmap_size 0.
 * Returns 0, -ENOENT (missing and !create), -EBADMSG (a page does not
 * authenticate: wrong key or damage), or another negative errno.
 * *out is set only on success.
 */
int stash_sqlvfs_open(sqlite3 **out, const char *path,
		      const uint8_t key[STASH_KEY_LEN], int create);

/* Close a database opened by stash_sqlvfs_open. Accepts NULL. */
int stash_sqlvfs_close(sqlite3 *db);

/* Translate an SQLite result code into a negative errno (0 for OK/DONE/ROW). */
int stash_sqlite_errno(int rc);

#endif
