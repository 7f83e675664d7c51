/*
 * verify.h - check a whole store and say what is damaged: the catalog's
 * own integrity, chunk reference counts (against the file maps of the
 * live tree and of every snapshot), file maps, where every chunk in use
 * lies and, on request, every chunk's contents; then the files that
 * damage reaches, by path, in the live tree and in each snapshot.
 *
 * With STASH_VERIFY_REPAIR it also repairs, in one catalog transaction:
 * chunk rows that point at the wrong place are pointed at a copy found
 * through the pack trailers (or, for a pack without a readable trailer,
 * by trying the places a chunk can start), reference counts are set to
 * what the file maps say, and files whose data cannot be saved are marked
 * (STASH_VERIFY_MARK_XATTR). Nothing is ever deleted, and nothing is
 * repaired when the catalog's own integrity check fails. It reads pack
 * files directly, not through the chunk cache.
 */
#ifndef STASH_VERIFY_H
#define STASH_VERIFY_H

#include <stdbool.h>
#include <stdint.h>

#include "store.h"

/* Flags for stash_verify_opts.flags. */
enum {
	/* Read every chunk in use, authenticate and decode it, and check
	 * that its plaintext hashes to its id (slow: reads all data). */
	STASH_VERIFY_FULL = 1 << 0,
	/* Repair what can be repaired, mark what cannot (see above). */
	STASH_VERIFY_REPAIR = 1 << 1,
};

/*
 * The extended attribute that marks a file (live, or its copy in a
 * snapshot) whose data could not be saved: the damaged byte ranges as
 * ASCII "START-END" (both inclusive, decimal) joined by ",", in offset
 * order, e.g. "0-65535,131072-140000"; cut after 4096 bytes with ",...".
 * Reads of those bytes fail with EIO; the rest of the file reads.
 */
#define STASH_VERIFY_MARK_XATTR "user.stashfs.damaged"
#define STASH_VERIFY_MARK_MAX 4096

/*
 * What a verify run found (and, with STASH_VERIFY_REPAIR, repaired).
 * Every counter from catalog_damaged to incomplete counts problems found,
 * and problems is their sum; repaired says how many of them this run
 * repaired. Problems left = problems - repaired.
 */
struct stash_verify_result {
	uint64_t problems;	   /* sum of the problem counters below */
	uint64_t catalog_damaged;  /* 1 if PRAGMA integrity_check failed */
	uint64_t ref_mismatches;   /* chunks whose refs differ from the
				    * number of file-map rows (live and
				    * snapshot) naming them */
	uint64_t dangling_extents; /* file-map rows naming no chunk row */
	uint64_t stray_extents;	   /* file-map rows of no regular file */
	uint64_t bad_maps;	   /* files (live or snapshot) whose map does
				    * not tile [0, size) exactly */
	uint64_t missing_chunks;   /* chunks in use with no pack file or
				    * beyond its end, or a malformed row */
	uint64_t corrupt_chunks;   /* (full) chunks in use that cannot be
				    * read, authenticated or decoded */
	uint64_t incomplete;	   /* checks (or a repair) the catalog did
				    * not let finish */

	uint64_t repaired;   /* problems this run repaired (repair) */
	uint64_t relocated;  /* chunk rows pointed at a good copy (repair) */
	uint64_t refs_fixed; /* chunk rows whose refs were set (repair) */

	uint64_t damaged_files;	 /* files named as damaged: live inodes and
				  * snapshot copies, each counted */
	uint64_t damaged_snap;	 /* of those, copies in snapshots */
	uint64_t marked_files;	 /* damaged files whose mark matches their
				  * damage at the end of the run */
	uint64_t unmarked_files; /* damaged files (with lost bytes) that are
				  * not marked, or marked otherwise */
	uint64_t stale_marks;	 /* marks on files that are not damaged any
				  * more (repair removes them); no problem */
	uint64_t chunks;	 /* chunk rows, dead ones included */
	uint64_t chunks_in_use;	 /* rows with refs > 0 or named by a map */
	uint64_t extents;	 /* file-map rows, live and snapshot */
	uint64_t files;		 /* live regular files with a file map */
	uint64_t snap_files;	 /* snapshot regular files with a file map */
	uint64_t packs;		 /* pack files the chunks in use name */
	uint64_t chunks_read;	 /* (full) chunks read from packs */
	uint64_t bytes_read;	 /* (full) sealed bytes read from packs */
	uint64_t bytes_decoded;	 /* (full) plaintext bytes decoded */
};

/* Where a full verify is, for a progress display. */
struct stash_verify_progress {
	uint64_t chunks_done, chunks_total; /* chunks read / to read */
	uint64_t bytes_done, bytes_total;   /* sealed bytes read / to read */
	double elapsed;			    /* seconds since reading began */
	bool done;			    /* the last call of the run */
};

struct stash_verify_opts {
	unsigned flags; /* STASH_VERIFY_* */
	/* The report, one line at a time without a newline (may be NULL). */
	void (*report)(void *arg, const char *line);
	/* (full) Progress, about 5 times a second and once with done set
	 * at the end of reading (may be NULL). Totals are estimates: done
	 * may pass them when reference counts are wrong. */
	void (*progress)(void *arg, const struct stash_verify_progress *p);
	void *arg; /* for report and progress */
};

/*
 * Check (and repair) the store st, which the caller should have to
 * itself (as `stashfs verify` has, holding the store lock with nothing
 * mounted): data of files open in st and not yet committed is not looked
 * at, and commits made during the run may show as passing mismatches.
 *
 * The report is for a person to read: a summary line per check ("NAME:
 * ok (...)" or what is wrong), the damaged chunks (the first few, each
 * with "relocated to ..." when repaired), with a repair a line saying
 * what it changed, every damaged file by path (each name of a
 * hard-linked file; a snapshot's copy as "snapshot NAME: /path"; an
 * inode without a name is said to be unlinked), each with whether it is
 * marked, and a last line:
 *   "clean"                            no problem
 *   "repaired: N problems"             every problem found was repaired
 *   "damaged: N problems[ (M repaired)][; ...]"  otherwise; when every
 *                 problem left is lost data in files marked by a repair
 *                 it says so ("all in files marked as damaged").
 * Calls come from the calling thread.
 *
 * A marked file still counts as damaged: its bytes are gone. A repair
 * writes the marks (and removes stale ones) and counts no problem as
 * repaired for them; a second run finds the same damage, already marked,
 * and changes nothing.
 *
 * *out (zeroed first) gets the counts. Returns 0 when the run finished,
 * whatever it found, -ENOMEM when memory ran out; a check or repair the
 * catalog does not let finish counts as a problem (out->incomplete) and
 * the run goes on. Takes st's catalog lock around catalog calls only,
 * never across pack reads.
 */
int stash_store_verify(struct stash_store *st,
		       const struct stash_verify_opts *opts,
		       struct stash_verify_result *out);

#endif
