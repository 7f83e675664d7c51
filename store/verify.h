/*
 * verify.h - check a whole store and say what is damaged: the catalog's
 * own integrity, chunk reference counts, file maps, where every chunk in
 * use lies and, on request, every chunk's contents; then the files that
 * damage reaches, by path.
 *
 * It only reads: nothing is repaired or rewritten here (a later
 * `verify --repair` will build on it). It reads pack files directly, not
 * through the chunk cache.
 */
#ifndef STASH_VERIFY_H
#define STASH_VERIFY_H

#include <stdbool.h>
#include <stdint.h>

#include "store.h"

/* Flags for stash_store_verify. */
enum {
	/* Read every chunk in use, authenticate and decode it, and check
	 * that its plaintext hashes to its id (slow: reads all data). */
	STASH_VERIFY_FULL = 1 << 0,
};

/*
 * What a verify run found. Every counter from catalog_damaged to
 * incomplete counts problems, and problems is their sum.
 */
struct stash_verify_result {
	uint64_t problems;	   /* sum of the problem counters below */
	uint64_t catalog_damaged;  /* 1 if PRAGMA integrity_check failed */
	uint64_t ref_mismatches;   /* chunks whose refs differ from the
				    * number of extents naming them */
	uint64_t dangling_extents; /* extents naming no chunk row */
	uint64_t stray_extents;	   /* extents of no regular file */
	uint64_t bad_maps;	   /* regular files whose extents do not tile
				    * [0, size) exactly */
	uint64_t missing_chunks;   /* chunks in use with no pack file or
				    * beyond its end, or a malformed row */
	uint64_t corrupt_chunks;   /* (full) chunks in use that cannot be
				    * read, authenticated or decoded */
	uint64_t incomplete;	   /* checks the catalog did not let finish */

	uint64_t damaged_files; /* inodes named as damaged */
	uint64_t chunks;	/* chunk rows, dead ones included */
	uint64_t chunks_in_use; /* rows with refs > 0 or named by extents */
	uint64_t extents;	/* extent rows */
	uint64_t files;		/* regular files with at least one extent */
	uint64_t packs;		/* pack files the chunks in use name */
	uint64_t chunks_read;	/* (full) chunks read from packs */
	uint64_t bytes_read;	/* (full) sealed bytes read from packs */
	uint64_t bytes_decoded; /* (full) plaintext bytes decoded */
};

/*
 * Check the store st, which the caller should have to itself (as
 * `stashfs verify` has, holding the store lock with nothing mounted):
 * data of files open in st and not yet committed is not looked at, and
 * commits made during the run may show as passing mismatches.
 *
 * report (may be NULL) gets the report, one line at a time without a
 * newline, for a person to read: a summary line per check ("NAME: ok
 * (...)" or what is wrong), then the damaged chunks (the first few) and
 * every damaged file by path (each name of a hard-linked file; an inode
 * without a name is said to be unlinked), and a last line "clean" or
 * "damaged: N problems". Calls come from the calling thread.
 *
 * *out (zeroed first) gets the counts. Returns 0 when the run finished,
 * whatever it found (out->problems says), -ENOMEM when memory ran out;
 * a check that the catalog does not let finish counts as a problem
 * (out->incomplete) and the run goes on. Takes st's catalog lock around
 * catalog calls only, never across pack reads.
 */
int stash_store_verify(struct stash_store *st, unsigned flags,
		       void (*report)(void *arg, const char *line), void *arg,
		       struct stash_verify_result *out);

#endif
