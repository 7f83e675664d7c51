/*
 * gc.c - garbage collection (gc.h): drop dead chunk rows, then delete the
 * packs nothing uses and rewrite the packs that are mostly dead.
 *
 * A run has two parts.
 *
 * 1. Quiesce (every open file locked and committed, the pending map
 *    cleared, see stash_files_quiesce), and while nothing moves: finish
 *    the pack being appended to, delete the dead chunk rows in one
 *    durable transaction, and note how much of each pack the catalog
 *    uses. The packs that exist then (ids up to `last`) are the
 *    candidates; everything written later goes to packs with larger ids,
 *    which this run never touches.
 *    Why quiesce: a writer that found a chunk (in the catalog or in the
 *    pending map) keeps its location until it commits, and the commit
 *    inserts that location if the chunk's row is gone. Once every open
 *    file is committed, every location held in memory names a row with
 *    refs > 0 (so it is not deleted), and nothing can find a deleted row
 *    or a pending chunk any more. From then on no row can come to name a
 *    candidate pack: rows are added only for chunks written after the
 *    quiesce (in new packs), and a commit of a chunk that has a row keeps
 *    the row's location (ST_UPSERT_CHUNK changes refs only).
 *
 * 2. Per candidate pack, with the locks free between steps: a pack no
 *    row names is deleted; a pack worth rewriting has its chunk rows
 *    copied in batches (sealed bytes verbatim: they do not depend on where
 *    they are stored), synced, pointed at their new place in one durable
 *    transaction per batch, and the pack is removed once none is left.
 *    Every row is copied, dead ones too: a writer may have found one
 *    since the quiesce and will reference it again. Readers that learnt
 *    a chunk's old place re-resolve it by id (file.c, read_chunk).
 *
 * Crash safety: copies are synced before the catalog names them; a pack
 * is removed only after the durable commit that stops naming it; dead
 * rows are deleted durably before any pack is. A killed run leaves packs
 * no row names (removed by the next run) and copies no row names (dead
 * bytes, which lower their pack's live share). It never leaves a row
 * pointing at bytes that are not there.
 *
 * Not here: the SQL (catalog_gc.c), pack files (packs.c).
 */
#include "gc.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "catalog_gc.h"
#include "chunk.h"
#include "chunker.h"
#include "store_int.h"

#define BATCH_ROWS 256
/* Sealed bytes copied per catalog transaction: at least one chunk. */
#define BATCH_BYTES (8u << 20)
#define BUF_BYTES STASH_MAX(BATCH_BYTES, STASH_CHUNK_MAX_LIMIT + 64)

enum action {
	KEEP,	 /* left as it is */
	DELETE,	 /* no row names it: remove the file and its packs row */
	REWRITE, /* copy its rows elsewhere, then delete it */
	SKIP,	 /* damaged (missing, rows beyond its end): for verify */
};

/* A candidate pack: what the catalog and the disk say of it. */
struct pack_plan {
	uint64_t pack;	 /* pack id */
	uint64_t size;	 /* file size, bytes, if on_disk */
	uint64_t chunks; /* chunk rows placing a chunk in it */
	uint64_t bytes;	 /* their sealed bytes */
	bool on_disk;	 /* a pack file exists */
	bool listed;	 /* a packs row names it */
	enum action action;
};

struct gc {
	struct stash_store *st;
	struct stash_gc_opts o;
	struct stash_gc_report rep;
	struct timespec t0;
	uint64_t last; /* highest pack id when quiesced: the candidates */

	struct pack_plan *packs; /* candidates, by id, then by plan order */
	size_t npacks, cap;

	struct stash_cat_gc_chunk rows[BATCH_ROWS]; /* a batch */
	struct stash_chunk_loc to[BATCH_ROWS];	    /* its new places */
	uint8_t *buf;				    /* its sealed bytes */
};

static double since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) +
	       (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Publish the figures so far (for getxattr) and call the callback. */
static void progress(struct gc *g)
{
	struct stash_store *st = g->st;

	g->rep.seconds = since(&g->t0);
	pthread_mutex_lock(&st->files_lock);
	st->gc_last = g->rep;
	pthread_mutex_unlock(&st->files_lock);
	if (g->o.progress)
		g->o.progress(g->o.arg, &g->rep);
}

static bool cancelled(struct gc *g)
{
	return g->o.cancelled && g->o.cancelled(g->o.arg);
}

static uint64_t store_bytes(struct stash_store *st)
{
	struct stash_store_stats s;

	return stash_store_stats(st, &s) == 0 ? s.store_bytes : 0;
}

/* ---- the candidates ---- */

static struct pack_plan *plan_add(struct gc *g, uint64_t pack)
{
	struct pack_plan *p;

	if (g->npacks == g->cap) {
		size_t cap = g->cap ? 2 * g->cap : 64;

		p = reallocarray(g->packs, cap, sizeof(*p));
		if (!p)
			return NULL;
		g->packs = p;
		g->cap = cap;
	}
	p = &g->packs[g->npacks++];
	*p = (struct pack_plan){ .pack = pack };
	return p;
}

static int add_used(void *arg, const struct stash_cat_pack_use *u)
{
	struct gc *g = arg;
	struct pack_plan *p;

	if (u->pack > g->last)
		return 0; /* cannot be: nothing was appended since */
	p = plan_add(g, u->pack);
	if (!p)
		return -ENOMEM;
	p->chunks = u->chunks;
	p->bytes = u->bytes;
	p->listed = u->listed;
	return 0;
}

static int add_file(void *arg, uint64_t pack, uint64_t size)
{
	struct gc *g = arg;
	struct pack_plan *p;

	if (pack > g->last)
		return 0; /* written since the quiesce: not ours */
	p = plan_add(g, pack);
	if (!p)
		return -ENOMEM;
	p->on_disk = true;
	p->size = size;
	return 0;
}

static int by_pack(const void *a, const void *b)
{
	const struct pack_plan *x = a, *y = b;

	return x->pack < y->pack ? -1 : x->pack > y->pack;
}

/* Merge the catalog's and the disk's entries of each pack. */
static void plan_merge(struct gc *g)
{
	size_t n = 0;

	if (g->npacks)
		qsort(g->packs, g->npacks, sizeof(*g->packs), by_pack);
	for (size_t i = 0; i < g->npacks; i++) {
		struct pack_plan *p = &g->packs[i];

		if (n && g->packs[n - 1].pack == p->pack) {
			struct pack_plan *q = &g->packs[n - 1];

			q->chunks += p->chunks;
			q->bytes += p->bytes;
			q->listed |= p->listed;
			if (p->on_disk) {
				q->on_disk = true;
				q->size = p->size;
			}
		} else {
			g->packs[n++] = *p;
		}
	}
	g->npacks = n;
}

/*
 * Quiesce, finish the open pack, drop dead rows and note the packs' use.
 * The dead rows go in a durable commit before any pack is removed: a dead
 * row keeps its bytes while it exists (deduplication may revive it).
 */
static int quiesce_and_drop(struct gc *g)
{
	struct stash_store *st = g->st;
	int ret;

	ret = stash_files_quiesce(st);
	if (ret)
		return ret;
	pthread_mutex_lock(&st->cat_lock);
	ret = stash_packs_rollover(st->packs, &g->last);
	/* The durable commit below makes earlier commits durable too: the
	 * bytes they name go first. */
	if (!ret)
		ret = stash_packs_sync(st->packs);
	if (!ret)
		ret = stash_cat_begin(st->cat);
	if (!ret) {
		ret = stash_cat_gc_drop_dead(st->cat, &g->rep.chunks_dropped,
					     &g->rep.dead_bytes);
		if (!ret)
			ret = stash_cat_gc_pack_use(st->cat, add_used, g);
		if (!ret)
			ret = stash_cat_commit(st->cat, 1);
		if (ret) {
			stash_cat_rollback(st->cat);
			g->rep.chunks_dropped = g->rep.dead_bytes = 0;
		}
	}
	pthread_mutex_unlock(&st->cat_lock);
	stash_files_resume(st);
	if (!ret && g->rep.chunks_dropped)
		stash_store_note_commit(st);
	return ret;
}

/* Bytes of p no row uses: what rewriting it gives back. A pack holding
 * only its rows' chunks, with header and trailer, has none. */
static uint64_t dead_of(const struct pack_plan *p)
{
	uint64_t used = p->bytes + stash_pack_overhead(p->chunks);

	return p->size > used ? p->size - used : 0;
}

/* The live share: 1 for a pack without dead bytes. */
static double share_of(const struct pack_plan *p)
{
	return p->size ? 1.0 - (double)dead_of(p) / (double)p->size : 1.0;
}

static int cmp_share(const struct pack_plan *a, const struct pack_plan *b)
{
	double x = share_of(a), y = share_of(b);

	if (x != y)
		return x < y ? -1 : 1;
	return by_pack(a, b);
}

static int by_share(const void *a, const void *b)
{
	return cmp_share(a, b);
}

static int by_share_ref(const void *a, const void *b)
{
	return cmp_share(*(struct pack_plan *const *)a,
			 *(struct pack_plan *const *)b);
}

/* A header-only pack file nothing names: the newest id, kept reserved. */
static bool is_placeholder(const struct pack_plan *p)
{
	return p->on_disk && p->size <= STASH_PACK_HDR_LEN && !p->chunks &&
	       !p->listed;
}

/*
 * Decide each candidate's fate: a pack no row names goes; a pack below
 * the threshold is rewritten; then the emptiest of the rest too, while
 * the dead bytes left would exceed max_waste of what remains.
 */
static int decide(struct gc *g)
{
	struct pack_plan **keep;
	uint64_t waste = 0, total = 0;
	size_t nkeep = 0;

	keep = calloc(g->npacks ? g->npacks : 1, sizeof(*keep));
	if (!keep)
		return -ENOMEM;
	for (size_t i = 0; i < g->npacks; i++) {
		struct pack_plan *p = &g->packs[i];

		if (p->chunks == 0) {
			p->action = DELETE;
		} else if (!p->on_disk || p->bytes > p->size) {
			stash_log(STASH_LOG_WARN,
				  "gc: pack %016llx is %s: left alone"
				  " (run stashfs verify)",
				  (unsigned long long)p->pack,
				  p->on_disk ? "shorter than its chunks"
					     : "missing");
			p->action = SKIP;
			g->rep.packs_skipped++;
		} else if (share_of(p) < g->o.threshold ||
			   g->o.threshold >= 1.0) {
			p->action = REWRITE;
			total += p->size - dead_of(p);
		} else {
			p->action = KEEP;
			waste += dead_of(p);
			total += p->size;
			keep[nkeep++] = p;
		}
	}
	/* total: the candidates' bytes once the rewrites are done. */
	qsort(keep, nkeep, sizeof(*keep), by_share_ref);
	for (size_t i = 0; i < nkeep && waste > 0 &&
			   (double)waste > g->o.max_waste * (double)total;
	     i++) {
		keep[i]->action = REWRITE;
		waste -= dead_of(keep[i]);
		total -= dead_of(keep[i]);
	}
	free(keep);
	return 0;
}

/*
 * Order the work: deletions first (no copying, space at once), then the
 * rewrites emptiest first (most space per byte copied, should the run be
 * cut short). Packs left alone drop out of the list.
 */
static int plan(struct gc *g)
{
	struct pack_plan *order;
	size_t n = 0, first;
	int ret = decide(g);

	if (ret)
		return ret;
	order = calloc(g->npacks ? g->npacks : 1, sizeof(*order));
	if (!order)
		return -ENOMEM;
	g->rep.packs_examined = g->npacks;
	for (size_t i = 0; i < g->npacks; i++)
		if (g->packs[i].action == DELETE)
			order[n++] = g->packs[i];
	first = n;
	for (size_t i = 0; i < g->npacks; i++)
		if (g->packs[i].action == REWRITE)
			order[n++] = g->packs[i];
	qsort(order + first, n - first, sizeof(*order), by_share);
	free(g->packs);
	g->packs = order;
	g->npacks = n;
	g->cap = n;
	for (size_t i = 0; i < n; i++) {
		if (!is_placeholder(&g->packs[i]))
			g->rep.packs_planned++;
		if (g->packs[i].action == REWRITE)
			g->rep.bytes_to_move += g->packs[i].bytes;
	}
	return 0;
}

/* ---- doing it ---- */

/*
 * Remove a pack no row names any more: its packs row, then the file. The
 * rows' moves (or deletion) were committed durably before this, so a
 * crash can only leave a file or a packs row that names nothing.
 */
static int drop_pack(struct gc *g, const struct pack_plan *p)
{
	struct stash_store *st = g->st;
	int ret;

	pthread_mutex_lock(&st->cat_lock);
	ret = stash_cat_begin(st->cat);
	if (!ret) {
		ret = stash_cat_gc_drop_pack(st->cat, p->pack);
		if (!ret)
			ret = stash_cat_commit(st->cat, 0);
		if (ret)
			stash_cat_rollback(st->cat);
	}
	pthread_mutex_unlock(&st->cat_lock);
	if (ret == -EBUSY) {
		/* Cannot be (see the top of this file): keep it, say so. */
		stash_log(STASH_LOG_ERR,
			  "gc: pack %016llx is named again: kept",
			  (unsigned long long)p->pack);
		g->rep.packs_skipped++;
		return 0;
	}
	if (ret)
		return ret;
	stash_store_note_commit(st);
	if (!p->on_disk)
		return 0;
	ret = stash_packs_remove(st->packs, p->pack);
	/* Removing a header-only placeholder is housekeeping. */
	if (ret >= 0 && p->size > STASH_PACK_HDR_LEN)
		g->rep.packs_deleted++;
	if (ret == -ENOENT)
		return 0; /* gone already */
	return ret < 0 ? ret : 0;
}

/* Read a batch of p's rows into g->buf: how many fit, or -errno. */
static ssize_t read_batch(struct gc *g, const struct pack_plan *p, size_t n,
			  size_t *bytes)
{
	size_t k, used = 0;
	int ret;

	for (k = 0; k < n; k++) {
		const struct stash_chunk_loc *loc = &g->rows[k].loc;

		if (used + loc->len > BUF_BYTES || (k && used >= BATCH_BYTES))
			break;
		if (loc->off + loc->len > p->size)
			return -EBADMSG; /* beyond the end: damage */
		ret = stash_packs_read(g->st->packs, loc, g->buf + used);
		if (ret)
			return ret;
		used += loc->len;
	}
	*bytes = used;
	return (ssize_t)k;
}

/*
 * Copy every row of p into new packs, batch by batch, then remove p.
 * Returns 0, 1 when p is left alone (its bytes cannot be read: damage
 * for verify to report), or a negative errno that ends the run.
 */
static int rewrite_pack(struct gc *g, const struct pack_plan *p)
{
	struct stash_store *st = g->st;
	int64_t after = 0;
	ssize_t n;
	int ret;

	for (;;) {
		size_t bytes = 0, off = 0;

		if (cancelled(g))
			return -EINTR;
		pthread_mutex_lock(&st->cat_lock);
		n = stash_cat_gc_pack_chunks(st->cat, p->pack, after, g->rows,
					     BATCH_ROWS);
		pthread_mutex_unlock(&st->cat_lock);
		if (n > 0)
			n = read_batch(g, p, (size_t)n, &bytes);
		if (n == -EBADMSG || n == -ENOENT || n == -EINVAL) {
			stash_log(STASH_LOG_WARN,
				  "gc: pack %016llx cannot be read (%s): left"
				  " alone (run stashfs verify)",
				  (unsigned long long)p->pack,
				  strerror((int)-n));
			return 1;
		}
		if (n <= 0)
			return n < 0 ? (int)n : drop_pack(g, p);

		for (ssize_t i = 0; i < n; i++) {
			const struct stash_cat_gc_chunk *r = &g->rows[i];

			ret = stash_packs_append(st->packs, r->id, r->raw_len,
						 g->buf + off, r->loc.len,
						 &g->to[i]);
			if (ret)
				return ret;
			off += r->loc.len;
		}
		/* The copies are on disk before the catalog names them. The
		 * second sync, under the lock, is short: it covers what
		 * writers appended meanwhile, which the durable commit makes
		 * durable too. */
		ret = stash_packs_sync(st->packs);
		if (ret)
			return ret;
		pthread_mutex_lock(&st->cat_lock);
		ret = stash_packs_sync(st->packs);
		if (!ret)
			ret = stash_cat_begin(st->cat);
		if (!ret) {
			for (ssize_t i = 0; !ret && i < n; i++) {
				ret = stash_cat_gc_move_chunk(
					st->cat, g->rows[i].row,
					&g->rows[i].loc, &g->to[i]);
				/* Moved or gone: the copy is just dead. */
				if (ret == -ESTALE)
					ret = 0;
			}
			if (!ret)
				ret = stash_cat_commit(st->cat, 1);
			if (ret)
				stash_cat_rollback(st->cat);
		}
		pthread_mutex_unlock(&st->cat_lock);
		if (ret)
			return ret;
		stash_store_note_commit(st);
		after = g->rows[n - 1].row;
		g->rep.chunks_moved += (uint64_t)n;
		g->rep.bytes_moved += bytes;
		progress(g);
	}
}

static int run(struct gc *g)
{
	struct stash_store *st = g->st;
	int ret;

	ret = quiesce_and_drop(g);
	if (!ret)
		ret = stash_packs_list(st->packs, add_file, g);
	if (ret)
		return ret;
	plan_merge(g);
	ret = plan(g);
	if (ret)
		return ret;
	progress(g);
	for (size_t i = 0; !ret && i < g->npacks; i++) {
		const struct pack_plan *p = &g->packs[i];

		if (cancelled(g)) {
			ret = -EINTR;
		} else if (p->action == DELETE) {
			ret = drop_pack(g, p);
		} else {
			ret = rewrite_pack(g, p);
			if (ret == 1) {
				g->rep.packs_skipped++;
				ret = 0;
			} else if (!ret) {
				g->rep.packs_rewritten++;
			}
		}
		if (ret == -EINTR)
			break;
		if (!is_placeholder(p))
			g->rep.packs_done++;
		progress(g);
	}
	return ret;
}

/* ---- the API ---- */

void stash_gc_opts_init(struct stash_gc_opts *o)
{
	*o = (struct stash_gc_opts){
		.threshold = STASH_GC_THRESHOLD_DEFAULT,
		.max_waste = STASH_GC_MAX_WASTE_DEFAULT,
	};
}

static bool is_share(double v)
{
	return isfinite(v) && v >= 0.0 && v <= 1.0;
}

int stash_store_gc(struct stash_store *st, const struct stash_gc_opts *opts,
		   struct stash_gc_report *out)
{
	struct gc *g = calloc(1, sizeof(*g));
	int ret;

	if (!g)
		return -ENOMEM;
	if (opts)
		g->o = *opts;
	else
		stash_gc_opts_init(&g->o);
	if (!is_share(g->o.threshold) || !is_share(g->o.max_waste)) {
		free(g);
		return -EINVAL;
	}
	g->buf = malloc(BUF_BYTES);
	if (!g->buf) {
		free(g);
		return -ENOMEM;
	}
	g->st = st;
	clock_gettime(CLOCK_MONOTONIC, &g->t0);

	pthread_mutex_lock(&st->files_lock);
	ret = st->gc_running ? -EALREADY : 0;
	if (!ret) {
		st->gc_running = true;
		st->gc_ran = true;
		st->gc_last = (struct stash_gc_report){ .running = true };
	}
	pthread_mutex_unlock(&st->files_lock);
	if (ret) {
		free(g->buf);
		free(g);
		return ret;
	}

	g->rep.running = true;
	g->rep.store_bytes_before = store_bytes(st);
	progress(g);
	ret = run(g);
	if (ret == -EINTR)
		stash_log(STASH_LOG_INFO, "gc cancelled");
	else if (ret)
		stash_log(STASH_LOG_ERR, "gc stopped: %s", strerror(-ret));
	/* Fold the WAL, which now holds every move, into the database, so
	 * the space figures are what stays. */
	if (!ret || ret == -EINTR) {
		int err = stash_store_sync_all(st);

		ret = ret ? ret : err;
	}
	g->rep.store_bytes_after = store_bytes(st);
	g->rep.running = false;
	g->rep.error = ret;
	g->rep.seconds = since(&g->t0);
	stash_log(STASH_LOG_INFO,
		  "gc: %llu chunks dropped, %llu packs deleted, %llu"
		  " rewritten, %llu bytes moved, store %llu -> %llu bytes",
		  (unsigned long long)g->rep.chunks_dropped,
		  (unsigned long long)g->rep.packs_deleted,
		  (unsigned long long)g->rep.packs_rewritten,
		  (unsigned long long)g->rep.bytes_moved,
		  (unsigned long long)g->rep.store_bytes_before,
		  (unsigned long long)g->rep.store_bytes_after);

	pthread_mutex_lock(&st->files_lock);
	st->gc_last = g->rep;
	st->gc_running = false;
	pthread_mutex_unlock(&st->files_lock);
	if (g->o.progress)
		g->o.progress(g->o.arg, &g->rep);
	if (out)
		*out = g->rep;
	free(g->packs);
	free(g->buf);
	free(g);
	return ret;
}

int stash_store_gc_status(struct stash_store *st, struct stash_gc_report *out)
{
	int ret = 0;

	pthread_mutex_lock(&st->files_lock);
	if (st->gc_ran)
		*out = st->gc_last;
	else
		ret = -ENODATA;
	pthread_mutex_unlock(&st->files_lock);
	return ret;
}

int stash_gc_opts_from_json(const char *json, size_t len,
			    struct stash_gc_opts *o)
{
	cJSON *root, *item;
	int ret = 0;

	stash_gc_opts_init(o);
	if (len == 0)
		return 0;
	root = cJSON_ParseWithLength(json, len);
	if (!root || !cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return -EINVAL;
	}
	cJSON_ArrayForEach(item, root)
	{
		double *v = NULL;

		if (item->string && !strcmp(item->string, "threshold"))
			v = &o->threshold;
		else if (item->string && !strcmp(item->string, "max_waste"))
			v = &o->max_waste;
		if (!v || !cJSON_IsNumber(item) ||
		    !is_share(item->valuedouble)) {
			ret = -EINVAL;
			break;
		}
		*v = item->valuedouble;
	}
	cJSON_Delete(root);
	return ret;
}

/* The uint64_t fields of a report, by their JSON names. */
static const struct {
	const char *name;
	size_t off;
} report_fields[] = {
#define FIELD(f)                                                               \
	{                                                                      \
#f, offsetof(struct stash_gc_report, f)                        \
	}
	FIELD(chunks_dropped),	  FIELD(dead_bytes),
	FIELD(packs_examined),	  FIELD(packs_planned),
	FIELD(packs_done),	  FIELD(packs_deleted),
	FIELD(packs_rewritten),	  FIELD(packs_skipped),
	FIELD(chunks_moved),	  FIELD(bytes_to_move),
	FIELD(bytes_moved),	  FIELD(store_bytes_before),
	FIELD(store_bytes_after),
#undef FIELD
};

int stash_gc_report_json(const struct stash_gc_report *r, char **out)
{
	cJSON *root = cJSON_CreateObject();
	bool ok;

	if (!root)
		return -ENOMEM;
	ok = cJSON_AddBoolToObject(root, "running", r->running) &&
	     cJSON_AddStringToObject(root, "error",
				     r->error ? strerror(-r->error) : "");
	for (size_t i = 0; ok && i < STASH_ARRAY_SIZE(report_fields); i++) {
		uint64_t v;

		memcpy(&v, (const char *)r + report_fields[i].off, sizeof(v));
		ok = cJSON_AddNumberToObject(root, report_fields[i].name,
					     (double)v);
	}
	ok = ok && cJSON_AddNumberToObject(root, "seconds", r->seconds);
	*out = ok ? cJSON_PrintUnformatted(root) : NULL;
	cJSON_Delete(root);
	return *out ? 0 : -ENOMEM;
}

int stash_gc_report_from_json(const char *json, struct stash_gc_report *r)
{
	cJSON *root = cJSON_Parse(json), *item;

	if (!root)
		return -EBADMSG;
	memset(r, 0, sizeof(*r));
	r->running = cJSON_IsTrue(cJSON_GetObjectItem(root, "running"));
	item = cJSON_GetObjectItem(root, "error");
	if (cJSON_IsString(item) && item->valuestring[0])
		r->error = -EIO; /* the daemon's log says which */
	item = cJSON_GetObjectItem(root, "seconds");
	r->seconds = cJSON_IsNumber(item) ? item->valuedouble : 0;
	for (size_t i = 0; i < STASH_ARRAY_SIZE(report_fields); i++) {
		uint64_t v = 0;

		item = cJSON_GetObjectItem(root, report_fields[i].name);
		if (cJSON_IsNumber(item) && item->valuedouble >= 0)
			v = (uint64_t)item->valuedouble;
		memcpy((char *)r + report_fields[i].off, &v, sizeof(v));
	}
	cJSON_Delete(root);
	return 0;
}

int stash_store_gc_json(struct stash_store *st, const char *opts, size_t len)
{
	struct stash_gc_opts o;
	int ret = stash_gc_opts_from_json(opts, len, &o);

	return ret ? ret : stash_store_gc(st, &o, NULL);
}

int stash_store_gc_status_json(struct stash_store *st, char **out)
{
	struct stash_gc_report r;
	int ret = stash_store_gc_status(st, &r);

	return ret ? ret : stash_gc_report_json(&r, out);
}
