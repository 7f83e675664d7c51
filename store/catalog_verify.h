/*
 * catalog_verify.h - the catalog's scans and repairs for store/verify.c
 * that know about snapshots: file-map rows of the live tree and of every
 * snapshot, snapshot directory entries, damage marks, and the few row
 * changes `verify --repair` makes.
 *
 * Scans look at rows as stored and do not trust them: out-of-range values
 * are handed over as they are (signed where the schema is), for the
 * caller to report. Like the rest of the catalog, nothing here is
 * thread-safe: the caller holds the catalog lock. Repairs run inside a
 * transaction the caller opened with stash_cat_begin.
 */
#ifndef STASH_CATALOG_VERIFY_H
#define STASH_CATALOG_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog.h"

/* One file-map row, of the live tree (extents) or of a snapshot
 * (snap_extents), with what verify needs of its inode and chunk. */
struct stash_cat_map_row {
	int64_t snap;	  /* 0: the live tree; else snap_extents.snap */
	bool snap_found;  /* snap is 0 or names a snapshots row */
	int64_t ino;	  /* inode number as stored (not combined) */
	int64_t off;	  /* logical offset in the file, bytes */
	int64_t len;	  /* bytes covered */
	int64_t chunk;	  /* a chunks.id, or 0 for a hole */
	bool chunk_found; /* a chunks row with that id exists */
	int64_t raw_len;  /* that chunk's plaintext length, if found */
	bool ino_found;	  /* an inode row (of that snapshot) exists */
	uint32_t mode;	  /* its type and permission bits, if found */
	int64_t size;	  /* its size in bytes, if found */
};

/*
 * Call fn for every file-map row: the live tree's by inode, then offset;
 * then every snapshot's by snapshot, inode, offset (each table's primary
 * key order: no sort). A non-zero return from fn stops and is returned.
 */
int stash_cat_verify_scan_maps(struct stash_cat *cat,
			       int (*fn)(void *arg,
					 const struct stash_cat_map_row *r),
			       void *arg);

/* Call fn for every regular file of non-zero size without any file-map
 * row, live (snap 0) and in snapshots. Non-zero from fn stops. */
int stash_cat_verify_unmapped(struct stash_cat *cat,
			      int (*fn)(void *arg, int64_t snap, int64_t ino,
					int64_t size),
			      void *arg);

/* Number and sealed bytes of chunk rows with refs > 0: what a full
 * verify will read, for its progress report. */
int stash_cat_verify_totals(struct stash_cat *cat, uint64_t *chunks,
			    uint64_t *bytes);

/* Call fn for every chunks row that names pack (its row, off, len as
 * stored), in offset order. Non-zero from fn stops. */
int stash_cat_verify_pack_rows(struct stash_cat *cat, uint64_t pack,
			       int (*fn)(void *arg, int64_t row, int64_t off,
					 int64_t len),
			       void *arg);

/* Call fn for every directory entry of snapshot snap: the directory, the
 * name (NUL-terminated), the inode and whether it is a directory.
 * -EBADMSG for a stored name that is empty or too long. Non-zero from
 * fn stops. */
int stash_cat_verify_snap_dirents(struct stash_cat *cat, uint64_t snap,
				  int (*fn)(void *arg, uint64_t parent,
					    const char *name, uint64_t ino,
					    bool is_dir),
				  void *arg);

/* Call fn for every extended attribute called name, live (snap 0) and in
 * snapshots, with its value. Non-zero from fn stops. */
int stash_cat_verify_marks(struct stash_cat *cat, const char *name,
			   int (*fn)(void *arg, int64_t snap, int64_t ino,
				     const void *value, size_t len),
			   void *arg);

/* Repairs, inside the caller's transaction. */

/* Point chunk row at loc with plaintext length raw_len (and make sure
 * the packs table knows loc->pack). -ENOENT if the row is gone. */
int stash_cat_verify_relocate(struct stash_cat *cat, int64_t row,
			      const struct stash_chunk_loc *loc,
			      uint32_t raw_len);

/* Set chunks.refs of row. -ENOENT if the row is gone. */
int stash_cat_verify_set_refs(struct stash_cat *cat, int64_t row, int64_t refs);

/* Set (value != NULL) or remove (value == NULL) the extended attribute
 * name of inode ino of the live tree (snap 0) or of snapshot snap. */
int stash_cat_verify_set_mark(struct stash_cat *cat, int64_t snap, int64_t ino,
			      const char *name, const void *value, size_t len);

#endif
