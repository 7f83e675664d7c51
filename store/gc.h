/*
 * gc.h - garbage collection: delete the chunks no file map names any
 * more, rewrite the packs that are mostly dead bytes, delete the packs
 * nothing uses, and so give the space back to the disk.
 *
 * It runs on an open store, mounted or not, while files are read and
 * written, and it may be killed at any point: each step leaves a
 * consistent store (new copies are synced before the catalog names them;
 * a pack is removed only after the durable commit that stops using it),
 * and whatever a killed run leaves behind (packs nothing names, extra
 * copies) is dead space the next run reclaims.
 */
#ifndef STASH_GC_H
#define STASH_GC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct stash_store;

#define STASH_GC_THRESHOLD_DEFAULT 0.5
#define STASH_GC_MAX_WASTE_DEFAULT 0.05

/* What a run did so far (while it runs) or did (once it is over). */
struct stash_gc_report {
	bool running;		  /* a run under way: figures so far */
	int error;		  /* 0, or the negative errno it ended with */
	uint64_t chunks_dropped;  /* chunk rows no file map named, deleted */
	uint64_t dead_bytes;	  /* their sealed bytes */
	uint64_t packs_examined;  /* packs that existed when it started */
	uint64_t packs_planned;	  /* of those, packs to delete or rewrite */
	uint64_t packs_done;	  /* of those, packs dealt with so far */
	uint64_t packs_deleted;	  /* pack files removed */
	uint64_t packs_rewritten; /* packs whose live chunks were copied */
	uint64_t packs_skipped;	  /* left alone: unreadable (see verify) */
	uint64_t chunks_moved;	  /* chunks copied into new packs */
	uint64_t bytes_to_move;	  /* sealed bytes the plan copies */
	uint64_t bytes_moved;	  /* sealed bytes copied so far */
	uint64_t store_bytes_before; /* the store folder, bytes */
	uint64_t store_bytes_after;  /* the store folder once done, bytes */
	double seconds;		     /* wall time so far */
};

struct stash_gc_opts {
	/* Rewrite every pack whose live share is below this, 0..1 (1:
	 * every pack). The live share is 1 - dead bytes / file size, the
	 * dead bytes being those no chunk row places in it, less what a
	 * pack of only those rows needs for its header and trailer. */
	double threshold;
	/* Then, while the dead bytes left in packs would exceed this share
	 * of all pack bytes, rewrite the next emptiest pack too, 0..1 (1:
	 * never). This is what brings a store back to within a few percent
	 * of its live data; threshold alone leaves up to 1 - threshold of
	 * every pack dead. */
	double max_waste;
	/* Called (may be NULL) from the running thread, holding no lock,
	 * after each step. */
	void (*progress)(void *arg, const struct stash_gc_report *r);
	/* Asked (may be NULL) before each step: true stops the run there,
	 * with -EINTR (the store is consistent at every step). */
	bool (*cancelled)(void *arg);
	void *arg; /* for progress and cancelled */
};

/* The defaults: threshold 0.5, max_waste 0.05, no progress callback. */
void stash_gc_opts_init(struct stash_gc_opts *o);

/*
 * Options from a JSON object {"threshold": T, "max_waste": W}; missing
 * fields keep their defaults; len 0 means all defaults. -EINVAL for
 * anything else (unknown fields, values out of range).
 */
int stash_gc_opts_from_json(const char *json, size_t len,
			    struct stash_gc_opts *o);

/*
 * Collect garbage in st (opts NULL: the defaults). *out (may be NULL)
 * gets the report. Thread-safe; one run at a time per store: -EALREADY
 * while another runs. Open files are committed first (as by flush). A
 * pack whose chunks cannot be read is left as it is (packs_skipped).
 * Returns 0 or the first error (the store stays consistent).
 */
int stash_store_gc(struct stash_store *st, const struct stash_gc_opts *opts,
		   struct stash_gc_report *out);

/* The running gc's progress, else the last run's report: -ENODATA when
 * no gc ran since the store was opened. */
int stash_store_gc_status(struct stash_store *st, struct stash_gc_report *out);

/* A report as a JSON object (malloc'd; the caller frees it). */
int stash_gc_report_json(const struct stash_gc_report *r, char **out);
/*
 * The report in json, as stash_gc_report_json wrote it (here or in the
 * daemon): missing or negative numbers read as 0, a non-empty error as
 * -EIO (the daemon's log says which). -EBADMSG if json does not parse.
 */
int stash_gc_report_from_json(const char *json, struct stash_gc_report *r);

/*
 * For the mounted filesystem: run gc with options as JSON (see
 * stash_gc_opts_from_json), and the status as JSON.
 */
int stash_store_gc_json(struct stash_store *st, const char *opts, size_t len);
int stash_store_gc_status_json(struct stash_store *st, char **out);

#endif
