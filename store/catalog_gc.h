/*
 * catalog_gc.h - the catalog's part of garbage collection (gc.c): dead
 * chunk rows, how much of each pack the catalog still uses, moving chunk
 * rows to new locations, dropping pack rows.
 *
 * Like the rest of the catalog these are not thread-safe (the caller
 * holds the catalog lock), and the ones that change rows run inside a
 * transaction the caller opened with stash_cat_begin.
 */
#ifndef STASH_CATALOG_GC_H
#define STASH_CATALOG_GC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "catalog.h"

/*
 * Delete every dead chunk row: refs <= 0 and named by no file map row,
 * live (extents) or frozen (snap_extents). *count and *bytes get how
 * many rows went and their sealed bytes. A row with refs <= 0 that a
 * file map still names is damage (verify reports it) and is kept.
 */
int stash_cat_gc_drop_dead(struct stash_cat *cat, uint64_t *count,
			   uint64_t *bytes);

/* How much of one pack the catalog uses. */
struct stash_cat_pack_use {
	uint64_t pack;	 /* pack id */
	uint64_t chunks; /* chunk rows placing a chunk in it */
	uint64_t bytes;	 /* their sealed bytes */
	bool listed;	 /* a packs row names it */
};

/* Call fn for every pack a chunk row or a packs row names, by id. A
 * non-zero return from fn stops and is returned. */
int stash_cat_gc_pack_use(struct stash_cat *cat,
			  int (*fn)(void *arg,
				    const struct stash_cat_pack_use *u),
			  void *arg);

/* A chunk row to move. */
struct stash_cat_gc_chunk {
	int64_t row;		    /* chunks.id */
	uint8_t id[STASH_ID_LEN];   /* chunk id */
	struct stash_chunk_loc loc; /* where it is */
	uint32_t raw_len;	    /* plaintext length */
};

/*
 * The chunk rows in pack with chunks.id > after, in id order: up to max
 * into out. Returns how many (0 once past the last), -EBADMSG for a row
 * whose values are out of range (a damaged catalog), or another negative
 * errno.
 */
ssize_t stash_cat_gc_pack_chunks(struct stash_cat *cat, uint64_t pack,
				 int64_t after, struct stash_cat_gc_chunk *out,
				 size_t max);

/* Point chunk row at to, if it is still at from (else -ESTALE), and list
 * to's pack in packs. */
int stash_cat_gc_move_chunk(struct stash_cat *cat, int64_t row,
			    const struct stash_chunk_loc *from,
			    const struct stash_chunk_loc *to);

/* Delete the packs row of pack (if any): -EBUSY if a chunk row still
 * names the pack. */
int stash_cat_gc_drop_pack(struct stash_cat *cat, uint64_t pack);

#endif
