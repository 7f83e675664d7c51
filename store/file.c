/*
 * file.c - file data: the in-memory state of open files, the write path
 * (streaming content-defined chunking onto the worker pool) and the read
 * path (cache, packs).
 *
 * An open file is a sorted array of segments tiling [0, size):
 *   CHUNK    a committed or stored chunk (id and location)
 *   PENDING  a chunk handed to a worker: its plaintext is held until the
 *            worker has hashed, compressed, sealed and appended it
 *   DIRTY    bytes in memory, not yet chunked
 *   HOLE     zeros not yet written anywhere
 * A write turns the chunks it touches into DIRTY bytes; appends grow the
 * last DIRTY segment, and once it is large the chunker cuts whole chunks
 * off its front (keeping the tail, whose cut point depends on data still
 * to come), so a sequential writer holds only a few chunks in memory and
 * cuts exactly where a single pass over the file would.
 *
 * A commit turns everything into CHUNKs and rewrites the file map in the
 * catalog from the first changed offset on, in one transaction.
 * For gc: quiescing every open file, and reads that find a chunk again
 * by id when gc has moved it from where the file last saw it.
 * Not done here: namespace operations and permissions (store.c).
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "article.h"
#include "chunk.h"
#include "catalog_search.h"
#include "crypto.h"
#include "store_int.h"

#define SPILL_BYTES (1u << 20)	  /* tail size that triggers a cut */
#define DIRTY_LIMIT (16u << 20)	  /* per-file DIRTY bytes */
#define PENDING_LIMIT (16u << 20) /* per-file bytes with workers */
#define NO_CHANGE UINT64_MAX

enum seg_kind { SEG_HOLE, SEG_DIRTY, SEG_PENDING, SEG_CHUNK };

struct chunk_job;

struct seg {
	uint64_t off; /* logical offset */
	uint64_t len; /* bytes */
	enum seg_kind kind;
	uint8_t *buf; /* DIRTY: the bytes (cap allocated) */
	size_t cap;
	struct chunk_job *job;	    /* PENDING */
	uint8_t id[STASH_ID_LEN];   /* CHUNK */
	struct stash_chunk_loc loc; /* CHUNK */
};

struct chunk_job {
	struct stash_job base; /* first: the pool sees this */
	struct stash_store *st;
	struct stash_file *f;
	uint64_t off;	/* of its segment, fixed while pending */
	uint8_t *plain; /* len bytes, owned by the job */
	uint32_t len;
	uint8_t id[STASH_ID_LEN];   /* result */
	struct stash_chunk_loc loc; /* result */
	int error;		    /* result: 0 or negative errno */
	bool done;		    /* under f->job_lock */
	struct chunk_job *next;	    /* f's FIFO of jobs */
};

struct stash_file {
	uint64_t ino;
	unsigned refs;		  /* under st->files_lock */
	struct stash_file *hnext; /* hash chain, under st->files_lock */

	pthread_mutex_t lock; /* guards everything below */
	struct seg *segs;     /* sorted by off, tiling [0, size) */
	size_t nsegs, cap;
	_Atomic uint64_t size; /* logical size; read unlocked by getattr */
	_Atomic int64_t mtime, ctime; /* valid when times_dirty */
	_Atomic bool times_dirty;     /* mtime/ctime changed since commit */
	uint64_t dirty_from;	      /* first changed offset, or NO_CHANGE */
	size_t dirty_bytes;	      /* bytes in DIRTY segments */
	size_t pending_bytes;	      /* bytes held by unfinished jobs */
	struct chunk_job *jobs_head, *jobs_tail; /* submitted, in order */
	int error;    /* sticky write error for next flush */
	bool records; /* JSON Lines: cut at record ends (chunker.h) */

	pthread_mutex_t job_lock; /* leaf: guards job->done, signals cond */
	pthread_cond_t job_cond;
};

/* ---- pending chunks: stored this session, not yet in the catalog ---- */

static size_t pending_bucket(const uint8_t id[STASH_ID_LEN])
{
	return (size_t)stash_le32dec(id) % PENDING_BUCKETS;
}

static bool pending_find(struct stash_store *st, const uint8_t *id,
			 struct stash_chunk_loc *loc)
{
	struct pending_chunk *p;
	bool found = false;

	pthread_mutex_lock(&st->pending_lock);
	for (p = st->pending[pending_bucket(id)]; p; p = p->next) {
		if (!memcmp(p->id, id, STASH_ID_LEN)) {
			*loc = p->loc;
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&st->pending_lock);
	return found;
}

static void pending_add(struct stash_store *st, const uint8_t *id,
			const struct stash_chunk_loc *loc)
{
	struct pending_chunk *p = malloc(sizeof(*p));
	size_t b = pending_bucket(id);

	if (!p)
		return; /* only a missed deduplication */
	memcpy(p->id, id, STASH_ID_LEN);
	p->loc = *loc;
	pthread_mutex_lock(&st->pending_lock);
	p->next = st->pending[b];
	st->pending[b] = p;
	pthread_mutex_unlock(&st->pending_lock);
}

static void pending_remove(struct stash_store *st, const uint8_t *id)
{
	struct pending_chunk **pp, *p;

	pthread_mutex_lock(&st->pending_lock);
	for (pp = &st->pending[pending_bucket(id)]; (p = *pp); pp = &p->next) {
		if (!memcmp(p->id, id, STASH_ID_LEN)) {
			*pp = p->next;
			free(p);
			break;
		}
	}
	pthread_mutex_unlock(&st->pending_lock);
}

void stash_pending_clear(struct stash_store *st)
{
	pthread_mutex_lock(&st->pending_lock);
	for (size_t b = 0; b < PENDING_BUCKETS; b++) {
		while (st->pending[b]) {
			struct pending_chunk *p = st->pending[b];

			st->pending[b] = p->next;
			free(p);
		}
	}
	pthread_mutex_unlock(&st->pending_lock);
}

/* ---- storing and fetching chunks ---- */

/*
 * Store one chunk of plaintext whose id is known: reuse a stored copy if
 * there is one, else seal it and append it to a pack.
 */
static int store_chunk_id(struct stash_store *st, const uint8_t *plain,
			  uint32_t len, const uint8_t id[STASH_ID_LEN],
			  struct stash_chunk_loc *loc)
{
	uint8_t *sealed;
	ssize_t n;
	int ret;

	if (pending_find(st, id, loc)) {
		atomic_fetch_add(&st->chunks_deduped, 1);
		return 0;
	}
	pthread_mutex_lock(&st->cat_lock);
	ret = stash_cat_find_chunk(st->cat, id, loc);
	pthread_mutex_unlock(&st->cat_lock);
	if (ret == 0) {
		atomic_fetch_add(&st->chunks_deduped, 1);
		return 0;
	}
	if (ret != -ENOENT)
		return ret;

	sealed = malloc(stash_chunk_sealed_max(len));
	if (!sealed)
		return -ENOMEM;
	n = stash_chunk_encode(st->keys.chunk_data, st->keys.key_id, id,
			       st->cfg.codec, st->cfg.level, plain, len,
			       sealed);
	ret = n < 0 ? (int)n
		    : stash_packs_append(st->packs, id, len, sealed,
					 (uint32_t)n, loc);
	free(sealed);
	if (ret)
		return ret;
	pending_add(st, id, loc);
	atomic_fetch_add(&st->chunks_written, 1);
	return 0;
}

/* Store one chunk of plaintext: compute its id, then as above. Runs on
 * workers. */
static int store_chunk(struct stash_store *st, const uint8_t *plain,
		       uint32_t len, uint8_t id[STASH_ID_LEN],
		       struct stash_chunk_loc *loc)
{
	int ret = stash_crypto_hmac(st->keys.chunk_id, plain, len, id);

	return ret ? ret : store_chunk_id(st, plain, len, id, loc);
}

static void chunk_job_run(struct stash_job *base)
{
	struct chunk_job *job = (struct chunk_job *)base;
	struct stash_file *f = job->f;
	int ret =
		store_chunk(job->st, job->plain, job->len, job->id, &job->loc);

	pthread_mutex_lock(&f->job_lock);
	job->error = ret;
	job->done = true;
	pthread_cond_broadcast(&f->job_cond);
	pthread_mutex_unlock(&f->job_lock);
}

static void job_wait(struct stash_file *f, struct chunk_job *job)
{
	pthread_mutex_lock(&f->job_lock);
	while (!job->done)
		pthread_cond_wait(&f->job_cond, &f->job_lock);
	pthread_mutex_unlock(&f->job_lock);
}

static bool job_is_done(struct stash_file *f, struct chunk_job *job)
{
	bool done;

	pthread_mutex_lock(&f->job_lock);
	done = job->done;
	pthread_mutex_unlock(&f->job_lock);
	return done;
}

/* Read the sealed chunk at loc and decode it into plain (raw_len). */
static int fetch_chunk(struct stash_store *st, const uint8_t *id,
		       const struct stash_chunk_loc *loc, uint8_t *plain,
		       uint32_t raw_len)
{
	uint8_t *sealed = malloc(loc->len ? loc->len : 1);
	int ret;

	if (!sealed)
		return -ENOMEM;
	ret = stash_packs_read(st->packs, loc, sealed);
	if (!ret)
		ret = stash_chunk_decode(st->keys.chunk_data, st->keys.key_id,
					 id, sealed, loc->len, plain, raw_len);
	free(sealed);
	return ret;
}

/*
 * Copy len bytes at off of a stored chunk into dst, through the cache.
 * loc is where the chunk was when the caller learnt of it; gc may have
 * moved it since (and removed the pack), and a location found in the
 * pending map may be a second copy gc reclaimed. So when the chunk is not
 * at loc, the catalog's location for its id is tried once more.
 */
static int read_chunk(struct stash_store *st, const uint8_t *id,
		      const struct stash_chunk_loc *loc, uint32_t raw_len,
		      uint64_t off, void *dst, size_t len)
{
	struct stash_chunk_loc now = *loc;
	char hex[2 * STASH_ID_LEN + 1];
	uint8_t *plain;
	int ret;

	if (stash_cache_read(st->cache, id, (size_t)off, dst, len) ==
	    (ssize_t)len)
		return 0;
	if (off + len > raw_len)
		return -EIO;
	plain = malloc(raw_len ? raw_len : 1);
	if (!plain)
		return -ENOMEM;
	ret = fetch_chunk(st, id, &now, plain, raw_len);
	if (ret == -ENOENT || ret == -EBADMSG) {
		int err;

		pthread_mutex_lock(&st->cat_lock);
		err = stash_cat_find_chunk(st->cat, id, &now);
		pthread_mutex_unlock(&st->cat_lock);
		if (!err && (now.pack != loc->pack || now.off != loc->off ||
			     now.len != loc->len))
			ret = fetch_chunk(st, id, &now, plain, raw_len);
	}
	if (ret) {
		stash_hex(id, 8, hex);
		stash_log(STASH_LOG_ERR, "chunk %s (pack %llu offset %llu): %s",
			  hex, (unsigned long long)now.pack,
			  (unsigned long long)now.off,
			  ret == -EBADMSG ? "corrupt, does not authenticate"
					  : strerror(-ret));
		free(plain);
		/* A missing pack is damage too, not a missing file. */
		return ret == -ENOMEM ? ret : -EBADMSG;
	}
	memcpy(dst, plain + off, len);
	stash_cache_put(st->cache, id, plain, raw_len);
	return 0;
}

int stash_chunk_read(struct stash_store *st, const uint8_t *id,
		     const struct stash_chunk_loc *loc, uint32_t raw_len,
		     uint64_t off, void *dst, size_t len)
{
	return read_chunk(st, id, loc, raw_len, off, dst, len);
}

/* ---- the segment array ---- */

/* Index of the segment holding pos, or nsegs when pos >= size. */
static size_t find_seg(const struct stash_file *f, uint64_t pos)
{
	size_t lo = 0, hi = f->nsegs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct seg *s = &f->segs[mid];

		if (pos < s->off)
			hi = mid;
		else if (pos >= s->off + s->len)
			lo = mid + 1;
		else
			return mid;
	}
	return f->nsegs;
}

/* Open count slots at idx (contents undefined). */
static int seg_insert(struct stash_file *f, size_t idx, size_t count)
{
	if (f->nsegs + count > f->cap) {
		size_t ncap = STASH_MAX(f->cap * 2, f->nsegs + count + 16);
		struct seg *p = realloc(f->segs, ncap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		f->segs = p;
		f->cap = ncap;
	}
	memmove(&f->segs[idx + count], &f->segs[idx],
		(f->nsegs - idx) * sizeof(struct seg));
	memset(&f->segs[idx], 0, count * sizeof(struct seg));
	f->nsegs += count;
	return 0;
}

static void jobs_unlink(struct stash_file *f, struct chunk_job *job)
{
	struct chunk_job **pp, *prev = NULL;

	for (pp = &f->jobs_head; *pp; prev = *pp, pp = &(*pp)->next) {
		if (*pp == job) {
			*pp = job->next;
			if (f->jobs_tail == job)
				f->jobs_tail = prev;
			return;
		}
	}
}

static void job_free(struct chunk_job *job)
{
	if (job) {
		free(job->plain);
		free(job);
	}
}

/* Release what a segment owns (waiting for its worker if need be). */
static void seg_clear(struct stash_file *f, struct seg *s)
{
	if (s->kind == SEG_DIRTY) {
		f->dirty_bytes -= s->len;
		free(s->buf);
	} else if (s->kind == SEG_PENDING) {
		job_wait(f, s->job);
		jobs_unlink(f, s->job);
		f->pending_bytes -= s->job->len;
		job_free(s->job);
	}
	s->buf = NULL;
	s->job = NULL;
}

static void seg_remove(struct stash_file *f, size_t idx, size_t count)
{
	for (size_t i = idx; i < idx + count; i++)
		seg_clear(f, &f->segs[i]);
	memmove(&f->segs[idx], &f->segs[idx + count],
		(f->nsegs - idx - count) * sizeof(struct seg));
	f->nsegs -= count;
}

static void mark_changed(struct stash_file *f, uint64_t off)
{
	if (off < f->dirty_from)
		f->dirty_from = off;
}

/* Turn a CHUNK or PENDING segment back into DIRTY bytes. */
static int materialize(struct stash_store *st, struct stash_file *f,
		       struct seg *s)
{
	uint8_t *buf;
	int ret;

	if (s->kind == SEG_DIRTY)
		return 0;
	if (s->kind == SEG_PENDING) {
		struct chunk_job *job = s->job;

		job_wait(f, job);
		jobs_unlink(f, job);
		f->pending_bytes -= job->len;
		buf = job->plain;
		job->plain = NULL;
		job_free(job);
		s->job = NULL;
	} else {
		size_t n = s->kind == SEG_HOLE ? s->len : s->len;

		buf = s->kind == SEG_HOLE ? calloc(1, n ? n : 1)
					  : malloc(n ? n : 1);
		if (!buf)
			return -ENOMEM;
		if (s->kind == SEG_CHUNK) {
			ret = read_chunk(st, s->id, &s->loc, (uint32_t)s->len,
					 0, buf, s->len);
			if (ret) {
				free(buf);
				return ret == -EBADMSG ? -EIO : ret;
			}
		}
	}
	s->kind = SEG_DIRTY;
	s->buf = buf;
	s->cap = s->len;
	f->dirty_bytes += s->len;
	mark_changed(f, s->off);
	return 0;
}

/* Make sure a DIRTY segment can hold len bytes. */
static int seg_reserve(struct seg *s, size_t len)
{
	if (len > s->cap) {
		size_t ncap = STASH_MAX(len, s->cap + s->cap / 2);
		uint8_t *p = realloc(s->buf, ncap);

		if (!p)
			return -ENOMEM;
		s->buf = p;
		s->cap = ncap;
	}
	return 0;
}

/*
 * Carve [pos, end) out of HOLE segment idx as zeroed DIRTY bytes; returns
 * the index of the new DIRTY segment through *out.
 */
static int split_hole(struct stash_file *f, size_t idx, uint64_t pos,
		      uint64_t end, size_t *out)
{
	struct seg h = f->segs[idx];
	uint64_t hend = h.off + h.len;
	size_t before = pos > h.off, after = end < hend;
	uint8_t *buf;
	int ret;

	end = STASH_MIN(end, hend);
	buf = calloc(1, end - pos);
	if (!buf)
		return -ENOMEM;
	ret = seg_insert(f, idx, before + after);
	if (ret) {
		free(buf);
		return ret;
	}
	if (before) {
		f->segs[idx] = h;
		f->segs[idx].len = pos - h.off;
	}
	f->segs[idx + before] = (struct seg){
		.off = pos,
		.len = end - pos,
		.kind = SEG_DIRTY,
		.buf = buf,
		.cap = end - pos,
	};
	if (after) {
		f->segs[idx + before + 1] = h;
		f->segs[idx + before + 1].off = end;
		f->segs[idx + before + 1].len = hend - end;
	}
	f->dirty_bytes += end - pos;
	/* The hole's stored extent changes too: rewrite from its start. */
	mark_changed(f, h.off);
	*out = idx + before;
	return 0;
}

/* Extend the file with zeros up to size. */
static int append_hole(struct stash_file *f, uint64_t size)
{
	uint64_t cur = f->size;
	int ret;

	if (size <= cur)
		return 0;
	if (f->nsegs && f->segs[f->nsegs - 1].kind == SEG_HOLE) {
		/* A longer hole: its stored extent is rewritten. */
		mark_changed(f, f->segs[f->nsegs - 1].off);
		f->segs[f->nsegs - 1].len += size - cur;
	} else {
		mark_changed(f, cur);
		ret = seg_insert(f, f->nsegs, 1);
		if (ret)
			return ret;
		f->segs[f->nsegs - 1] = (struct seg){
			.off = cur,
			.len = size - cur,
			.kind = SEG_HOLE,
		};
	}
	f->size = size;
	return 0;
}

/* ---- chunking DIRTY bytes ---- */

/* Turn finished jobs at the head of the FIFO into CHUNK segments; with
 * wait, wait for every job. */
static void collect(struct stash_file *f, bool wait)
{
	while (f->jobs_head) {
		struct chunk_job *job = f->jobs_head;
		struct seg *s;

		if (wait || f->pending_bytes > PENDING_LIMIT)
			job_wait(f, job);
		else if (!job_is_done(f, job))
			break;
		f->jobs_head = job->next;
		if (!f->jobs_head)
			f->jobs_tail = NULL;
		f->pending_bytes -= job->len;
		s = &f->segs[find_seg(f, job->off)];
		if (job->error) {
			/* Keep the bytes: a later flush may succeed. */
			if (!f->error)
				f->error = job->error;
			s->kind = SEG_DIRTY;
			s->buf = job->plain;
			s->cap = s->len;
			job->plain = NULL;
			f->dirty_bytes += s->len;
		} else {
			s->kind = SEG_CHUNK;
			memcpy(s->id, job->id, STASH_ID_LEN);
			s->loc = job->loc;
		}
		s->job = NULL;
		job_free(job);
	}
}

/* Merge DIRTY segment idx with the DIRTY segments that follow it. */
static int coalesce(struct stash_file *f, size_t idx)
{
	struct seg *s = &f->segs[idx];
	size_t j = idx + 1, total = s->len;
	int ret;

	while (j < f->nsegs && f->segs[j].kind == SEG_DIRTY)
		total += f->segs[j++].len;
	if (j == idx + 1)
		return 0;
	ret = seg_reserve(s, total);
	if (ret)
		return ret;
	for (size_t k = idx + 1; k < j; k++) {
		memcpy(s->buf + s->len, f->segs[k].buf, f->segs[k].len);
		s->len += f->segs[k].len;
		free(f->segs[k].buf);
		f->segs[k].buf = NULL;
		f->segs[k].kind = SEG_HOLE; /* now owns nothing */
	}
	memmove(&f->segs[idx + 1], &f->segs[j],
		(f->nsegs - j) * sizeof(struct seg));
	f->nsegs -= j - idx - 1;
	return 0;
}

static int submit_chunk(struct stash_store *st, struct stash_file *f,
			uint64_t off, const uint8_t *data, uint32_t len,
			struct seg *s)
{
	struct chunk_job *job = calloc(1, sizeof(*job));

	if (!job)
		return -ENOMEM;
	job->plain = malloc(len ? len : 1);
	if (!job->plain) {
		free(job);
		return -ENOMEM;
	}
	memcpy(job->plain, data, len);
	job->base.run = chunk_job_run;
	job->st = st;
	job->f = f;
	job->off = off;
	job->len = len;
	*s = (struct seg){
		.off = off, .len = len, .kind = SEG_PENDING, .job = job
	};
	if (f->jobs_tail)
		f->jobs_tail->next = job;
	else
		f->jobs_head = job;
	f->jobs_tail = job;
	f->pending_bytes += len;
	stash_pool_submit(st->pool, &job->base);
	return 0;
}

/*
 * Cut the DIRTY run starting at segment idx into chunks and hand them to
 * the workers. Unless final, the bytes after the last cut point stay DIRTY
 * (more data may still come and move that cut). *next gets the index of
 * the first segment after the run.
 */
static int chunk_run(struct stash_store *st, struct stash_file *f, size_t idx,
		     bool final, size_t *next)
{
	struct seg run;
	uint64_t pos = 0;
	size_t at = idx, n;
	int ret = coalesce(f, idx);

	if (ret)
		return ret;
	run = f->segs[idx];
	/* The run's segment is replaced piece by piece; keep its buffer. */
	f->segs[idx].kind = SEG_HOLE;
	f->segs[idx].buf = NULL;
	f->dirty_bytes -= run.len;
	while (pos < run.len) {
		n = f->records ? stash_chunker_cut_records(st->chunker,
							   run.buf + pos,
							   run.len - pos, final)
			       : stash_chunker_cut(st->chunker, run.buf + pos,
						   run.len - pos, final);
		if (n == 0)
			break;
		if (at > idx) {
			ret = seg_insert(f, at, 1);
			if (ret)
				break;
		}
		ret = submit_chunk(st, f, run.off + pos, run.buf + pos,
				   (uint32_t)n, &f->segs[at]);
		if (ret)
			break;
		pos += n;
		at++;
	}
	if (pos < run.len) {
		/* The tail (or, after an error, the rest) stays DIRTY. */
		size_t rest = run.len - pos;

		if (at > idx && seg_insert(f, at, 1)) {
			free(run.buf);
			return -ENOMEM; /* unreachable in practice */
		}
		memmove(run.buf, run.buf + pos, rest);
		f->segs[at] = (struct seg){ .off = run.off + pos,
					    .len = rest,
					    .kind = SEG_DIRTY,
					    .buf = run.buf,
					    .cap = run.cap };
		f->dirty_bytes += rest;
		at++;
	} else {
		free(run.buf);
	}
	*next = at;
	return ret;
}

/* Chunk every DIRTY run; the tail run too when final. Holes stay holes. */
static int chunk_all(struct stash_store *st, struct stash_file *f, bool final)
{
	size_t i = 0;
	int ret = 0;

	while (!ret && i < f->nsegs) {
		enum seg_kind kind = f->segs[i].kind;

		if (kind == SEG_DIRTY) {
			bool tail = true;

			for (size_t j = i + 1; j < f->nsegs; j++) {
				if (f->segs[j].kind != SEG_DIRTY) {
					tail = false;
					break;
				}
			}
			ret = chunk_run(st, f, i, final || !tail, &i);
		} else {
			i++;
		}
	}
	return ret;
}

/* Keep memory bounded: cut the tail as it grows, everything when the
 * file holds too much. */
static int spill(struct stash_store *st, struct stash_file *f)
{
	int ret = 0;

	if (f->dirty_bytes > DIRTY_LIMIT) {
		ret = chunk_all(st, f, false);
	} else if (f->nsegs) {
		struct seg *last = &f->segs[f->nsegs - 1];

		if (last->kind == SEG_DIRTY && last->len >= SPILL_BYTES) {
			size_t next;

			ret = chunk_run(st, f, f->nsegs - 1, false, &next);
		}
	}
	collect(f, false);
	return ret;
}

/* ---- the open-file table ---- */

struct stash_file *stash_file_find_locked(struct stash_store *st, uint64_t ino)
{
	struct stash_file *f;

	for (f = st->files[ino % FILE_BUCKETS]; f; f = f->hnext)
		if (f->ino == ino)
			return f;
	return NULL;
}

static int load_extent(void *arg, const struct stash_extent *e)
{
	struct stash_file *f = arg;
	uint64_t end =
		f->nsegs ? f->segs[f->nsegs - 1].off + f->segs[f->nsegs - 1].len
			 : 0;
	struct seg *s;
	int ret;

	/* Extents must tile the file; a chunk is never larger than max. */
	if (e->off != end || e->len == 0 || e->off + e->len < e->off ||
	    (!e->hole && e->len > STASH_CHUNK_MAX_LIMIT)) {
		stash_log(STASH_LOG_ERR,
			  "inode %llu: file map damaged at offset %llu"
			  " (extent of %llu bytes at %llu)",
			  (unsigned long long)f->ino, (unsigned long long)end,
			  (unsigned long long)e->len,
			  (unsigned long long)e->off);
		return -EBADMSG;
	}
	ret = seg_insert(f, f->nsegs, 1);
	if (ret)
		return ret;
	s = &f->segs[f->nsegs - 1];
	*s = (struct seg){ .off = e->off,
			   .len = e->len,
			   .kind = e->hole ? SEG_HOLE : SEG_CHUNK };
	if (!e->hole) {
		s->loc = e->loc;
		memcpy(s->id, e->id, STASH_ID_LEN);
	}
	return 0;
}

static int record_name(void *arg, uint64_t parent, const char *name)
{
	bool *records = arg;

	(void)parent;
	*records = stash_article_file_kind(name) == STASH_FILE_JSONL;
	return 1;
}

/* A file of one record per line, by its (first) name: its chunks end at
 * record ends. Under the catalog lock. */
static bool is_record_file(struct stash_store *st, uint64_t ino)
{
	bool records = false;

	if (stash_cat_names_of(st->cat, ino, record_name, &records) < 0)
		return false;
	return records;
}

static void file_free(struct stash_file *f)
{
	if (!f)
		return;
	collect(f, true);
	for (size_t i = 0; i < f->nsegs; i++)
		seg_clear(f, &f->segs[i]);
	free(f->segs);
	pthread_mutex_destroy(&f->lock);
	pthread_mutex_destroy(&f->job_lock);
	pthread_cond_destroy(&f->job_cond);
	free(f);
}

static int file_load(struct stash_store *st, uint64_t ino,
		     struct stash_file **out)
{
	struct stash_file *f = calloc(1, sizeof(*f));
	struct stash_attr a;
	int ret;

	if (!f)
		return -ENOMEM;
	f->ino = ino;
	f->dirty_from = NO_CHANGE;
	pthread_mutex_init(&f->lock, NULL);
	pthread_mutex_init(&f->job_lock, NULL);
	pthread_cond_init(&f->job_cond, NULL);
	pthread_mutex_lock(&st->cat_lock);
	ret = stash_cat_getattr(st->cat, ino, &a);
	if (!ret && !S_ISREG(a.mode))
		ret = S_ISDIR(a.mode) ? -EISDIR : -EINVAL;
	if (!ret)
		ret = stash_cat_load_extents(st->cat, ino, load_extent, f);
	if (!ret)
		f->records = is_record_file(st, ino);
	pthread_mutex_unlock(&st->cat_lock);
	if (!ret) {
		uint64_t mapped = f->nsegs ? f->segs[f->nsegs - 1].off +
						     f->segs[f->nsegs - 1].len
					   : 0;

		/* A file map must cover the file exactly. */
		if (mapped != a.size) {
			stash_log(STASH_LOG_ERR,
				  "inode %llu: file map covers %llu of %llu"
				  " bytes",
				  (unsigned long long)ino,
				  (unsigned long long)mapped,
				  (unsigned long long)a.size);
			ret = -EIO;
		}
		f->size = a.size;
	}
	if (ret) {
		file_free(f);
		return ret == -EBADMSG ? -EIO : ret;
	}
	*out = f;
	return 0;
}

int stash_file_get(struct stash_store *st, uint64_t ino,
		   struct stash_file **out)
{
	struct stash_file *f;
	int ret = 0;

	pthread_mutex_lock(&st->files_lock);
	f = stash_file_find_locked(st, ino);
	if (!f) {
		ret = file_load(st, ino, &f);
		if (!ret) {
			f->hnext = st->files[ino % FILE_BUCKETS];
			st->files[ino % FILE_BUCKETS] = f;
		}
	}
	if (!ret) {
		f->refs++;
		*out = f;
	}
	pthread_mutex_unlock(&st->files_lock);
	return ret;
}

int stash_file_put(struct stash_store *st, struct stash_file *f)
{
	struct stash_file **pp;
	struct stash_attr a;
	int ret = stash_file_commit(st, f, 0);
	bool last;

	pthread_mutex_lock(&st->files_lock);
	last = --f->refs == 0;
	if (last) {
		for (pp = &st->files[f->ino % FILE_BUCKETS]; *pp;
		     pp = &(*pp)->hnext) {
			if (*pp == f) {
				*pp = f->hnext;
				break;
			}
		}
		/* The last handle of an unlinked file: its data goes now. */
		pthread_mutex_lock(&st->cat_lock);
		if (stash_cat_getattr(st->cat, f->ino, &a) == 0 &&
		    a.nlink == 0) {
			int err = stash_cat_begin(st->cat);

			if (!err)
				err = stash_cat_delete_inode(st->cat, f->ino);
			if (!err)
				err = stash_cat_commit(st->cat, 0);
			if (err)
				stash_cat_rollback(st->cat);
		}
		pthread_mutex_unlock(&st->cat_lock);
	}
	pthread_mutex_unlock(&st->files_lock);
	if (last)
		file_free(f);
	return ret;
}

void stash_file_overlay(struct stash_store *st, struct stash_attr *attr)
{
	struct stash_file *f;

	pthread_mutex_lock(&st->files_lock);
	f = stash_file_find_locked(st, attr->ino);
	if (f) {
		attr->size = f->size;
		if (f->times_dirty) {
			attr->mtime = f->mtime;
			attr->ctime = f->ctime;
		}
	}
	pthread_mutex_unlock(&st->files_lock);
}

void stash_file_set_times(struct stash_file *f, const struct stash_attr *a)
{
	pthread_mutex_lock(&f->lock);
	f->mtime = a->mtime;
	f->ctime = a->ctime;
	f->times_dirty = false;
	pthread_mutex_unlock(&f->lock);
}

/* ---- commit ---- */

static int commit_locked(struct stash_store *st, struct stash_file *f,
			 int durable)
{
	struct stash_extent *ext = NULL;
	struct stash_attr a;
	size_t n = 0, first;
	int ret;

	ret = chunk_all(st, f, true);
	collect(f, true);
	if (!ret && f->error)
		ret = f->error;
	f->error = 0;
	if (ret)
		return ret;
	if (f->dirty_from == NO_CHANGE && !f->times_dirty && !durable)
		return 0;
	if (durable) {
		ret = stash_packs_sync(st->packs);
		if (ret)
			return ret;
	}
	first = f->dirty_from == NO_CHANGE ? f->nsegs
					   : find_seg(f, f->dirty_from);
	/* The map is rewritten from a boundary it has on disk as well. */
	assert(first == f->nsegs || f->segs[first].off == f->dirty_from);
	if (first < f->nsegs) {
		ext = calloc(f->nsegs - first, sizeof(*ext));
		if (!ext)
			return -ENOMEM;
		for (size_t i = first; i < f->nsegs; i++, n++) {
			const struct seg *s = &f->segs[i];

			ext[n].off = s->off;
			ext[n].len = s->len;
			ext[n].hole = s->kind == SEG_HOLE;
			memcpy(ext[n].id, s->id, STASH_ID_LEN);
			ext[n].loc = s->loc;
		}
	}

	pthread_mutex_lock(&st->cat_lock);
	ret = stash_cat_begin(st->cat);
	if (!ret && f->dirty_from != NO_CHANGE)
		ret = stash_cat_replace_extents(st->cat, f->ino, f->dirty_from,
						ext, n);
	/* New content: its old documents go, in the same transaction. */
	if (!ret && f->dirty_from != NO_CHANGE)
		ret = stash_cat_index_touch(st->cat, f->ino);
	if (!ret)
		ret = stash_cat_getattr(st->cat, f->ino, &a);
	if (!ret) {
		a.size = f->size;
		if (f->times_dirty) {
			a.mtime = f->mtime;
			a.ctime = f->ctime;
		}
		ret = stash_cat_setattr(st->cat, &a);
	}
	if (!ret)
		ret = stash_cat_commit(st->cat, durable);
	if (ret)
		stash_cat_rollback(st->cat);
	pthread_mutex_unlock(&st->cat_lock);

	if (!ret) {
		for (size_t i = 0; i < n; i++)
			if (!ext[i].hole)
				pending_remove(st, ext[i].id);
		f->dirty_from = NO_CHANGE;
		f->times_dirty = false;
		stash_store_note_commit(st);
	}
	free(ext);
	return ret;
}

int stash_file_commit(struct stash_store *st, struct stash_file *f, int durable)
{
	int ret;

	pthread_mutex_lock(&f->lock);
	ret = commit_locked(st, f, durable);
	pthread_mutex_unlock(&f->lock);
	return ret;
}

/* ---- quiescing, for gc ---- */

/* Unlock the files locked by quiesce, up to (not including) stop. */
static void unlock_files(struct stash_store *st, const struct stash_file *stop)
{
	for (size_t b = 0; b < FILE_BUCKETS; b++) {
		for (struct stash_file *f = st->files[b]; f; f = f->hnext) {
			if (f == stop)
				return;
			pthread_mutex_unlock(&f->lock);
		}
	}
}

int stash_files_quiesce(struct stash_store *st)
{
	int ret = 0;

	pthread_mutex_lock(&st->files_lock);
	for (size_t b = 0; b < FILE_BUCKETS; b++) {
		for (struct stash_file *f = st->files[b]; f; f = f->hnext) {
			pthread_mutex_lock(&f->lock);
			ret = commit_locked(st, f, 0);
			if (ret) {
				/* The writer's next flush still hears of it;
				 * gc cannot go on while its chunks are not
				 * all in the catalog. */
				f->error = ret;
				stash_log(STASH_LOG_WARN,
					  "gc: cannot commit open inode %llu:"
					  " %s",
					  (unsigned long long)f->ino,
					  strerror(-ret));
				pthread_mutex_unlock(&f->lock);
				unlock_files(st, f);
				pthread_mutex_unlock(&st->files_lock);
				return ret;
			}
		}
	}
	/*
	 * Everything is committed and nothing is in flight: whatever is
	 * left in the pending map is a chunk no commit used (its bytes are
	 * garbage), so no writer may find it any more.
	 */
	stash_pending_clear(st);
	return 0;
}

void stash_files_resume(struct stash_store *st)
{
	unlock_files(st, NULL);
	pthread_mutex_unlock(&st->files_lock);
}

/* ---- the public file API ---- */

int stash_file_open(struct stash_store *st, uint64_t ino,
		    struct stash_file **out)
{
	return stash_file_get(st, ino, out);
}

int stash_file_release(struct stash_store *st, struct stash_file *f)
{
	return stash_file_put(st, f);
}

int stash_file_flush(struct stash_store *st, struct stash_file *f)
{
	return stash_file_commit(st, f, 0);
}

int stash_file_fsync(struct stash_store *st, struct stash_file *f)
{
	return stash_file_commit(st, f, 1);
}

static void touch(struct stash_file *f)
{
	int64_t now = stash_wall_ns();

	f->mtime = now;
	f->ctime = now;
	f->times_dirty = true;
}

static int truncate_locked(struct stash_store *st, struct stash_file *f,
			   uint64_t size)
{
	size_t i;
	int ret;

	touch(f);
	if (size >= f->size)
		return append_hole(f, size);
	i = find_seg(f, size);
	if (f->segs[i].off < size) {
		struct seg *s = &f->segs[i];

		if (s->kind != SEG_HOLE) {
			ret = materialize(st, f, s);
			if (ret)
				return ret;
			f->dirty_bytes -= s->len - (size - s->off);
		}
		mark_changed(f, s->off);
		s->len = size - s->off;
		i++;
	} else {
		mark_changed(f, size);
	}
	seg_remove(f, i, f->nsegs - i);
	f->size = size;
	return 0;
}

int stash_file_truncate(struct stash_store *st, struct stash_file *f,
			uint64_t size)
{
	int ret;

	pthread_mutex_lock(&f->lock);
	ret = truncate_locked(st, f, size);
	if (!ret)
		ret = commit_locked(st, f, 0);
	pthread_mutex_unlock(&f->lock);
	return ret;
}

/* Append at end of file: grow the last DIRTY segment, or start one. */
static int append(struct stash_store *st, struct stash_file *f,
		  const uint8_t *data, size_t len)
{
	struct seg *last = f->nsegs ? &f->segs[f->nsegs - 1] : NULL;
	int ret;

	/* A short last chunk is reopened so appends make whole chunks. */
	if (last && (last->kind == SEG_CHUNK || last->kind == SEG_PENDING) &&
	    last->len < st->cfg.chunker.max) {
		ret = materialize(st, f, last);
		if (ret)
			return ret;
	}
	if (!last || last->kind != SEG_DIRTY) {
		ret = seg_insert(f, f->nsegs, 1);
		if (ret)
			return ret;
		last = &f->segs[f->nsegs - 1];
		*last = (struct seg){ .off = f->size, .kind = SEG_DIRTY };
		mark_changed(f, f->size);
	}
	ret = seg_reserve(last, last->len + len);
	if (ret)
		return ret;
	memcpy(last->buf + last->len, data, len);
	last->len += len;
	f->dirty_bytes += len;
	f->size += len;
	return 0;
}

ssize_t stash_file_write(struct stash_store *st, struct stash_file *f,
			 const void *buf, size_t size, uint64_t off)
{
	const uint8_t *data = buf;
	uint64_t pos = off, end = off + size;
	int ret = 0;

	if (stash_ino_snap(f->ino))
		return -EROFS; /* snapshots are read-only */
	if (size == 0)
		return 0;
	if (end < off || end > (uint64_t)INT64_MAX)
		return -EFBIG;
	pthread_mutex_lock(&f->lock);
	/* A chunk that could not be stored (ENOSPC, EIO) stops the writer
	 * at once; the next flush reports it again. */
	collect(f, false);
	ret = f->error;
	if (!ret && off > f->size)
		ret = append_hole(f, off);
	while (!ret && pos < end) {
		size_t i = find_seg(f, pos);
		struct seg *s;
		uint64_t n;

		if (i == f->nsegs) {
			ret = append(st, f, data + (pos - off), end - pos);
			break;
		}
		s = &f->segs[i];
		if (s->kind == SEG_HOLE) {
			ret = split_hole(f, i, pos, end, &i);
			s = &f->segs[i];
		} else if (s->kind != SEG_DIRTY) {
			ret = materialize(st, f, s);
		}
		if (ret)
			break;
		n = STASH_MIN(end, s->off + s->len) - pos;
		memcpy(s->buf + (pos - s->off), data + (pos - off), n);
		mark_changed(f, s->off);
		pos += n;
	}
	if (!ret) {
		touch(f);
		ret = spill(st, f);
	}
	pthread_mutex_unlock(&f->lock);
	if (ret)
		return ret;
	atomic_fetch_add(&st->bytes_written, size);
	return (ssize_t)size;
}

/* A stored chunk range to fetch after the file lock is dropped. */
struct piece {
	uint8_t id[STASH_ID_LEN];
	struct stash_chunk_loc loc;
	uint32_t raw_len;
	uint64_t off; /* within the chunk */
	uint8_t *dst;
	size_t len;
};

ssize_t stash_file_read(struct stash_store *st, struct stash_file *f, void *buf,
			size_t size, uint64_t off)
{
	struct piece stack[8], *pieces = stack;
	size_t npieces = 0, cap = STASH_ARRAY_SIZE(stack);
	uint8_t *out = buf;
	uint64_t pos, end;
	int ret = 0;

	pthread_mutex_lock(&f->lock);
	if (off >= f->size) {
		pthread_mutex_unlock(&f->lock);
		return 0;
	}
	end = STASH_MIN(f->size, off + size);
	collect(f, false);
	for (pos = off; pos < end;) {
		struct seg *s = &f->segs[find_seg(f, pos)];
		uint64_t in = pos - s->off;
		size_t n = (size_t)(STASH_MIN(end, s->off + s->len) - pos);

		switch (s->kind) {
		case SEG_HOLE:
			memset(out + (pos - off), 0, n);
			break;
		case SEG_DIRTY:
			memcpy(out + (pos - off), s->buf + in, n);
			break;
		case SEG_PENDING:
			/* The worker only reads plain; it is ours to read. */
			memcpy(out + (pos - off), s->job->plain + in, n);
			break;
		case SEG_CHUNK:
			if (npieces == cap) {
				size_t ncap = cap * 2;
				struct piece *p =
					pieces == stack
						? malloc(ncap * sizeof(*p))
						: realloc(pieces,
							  ncap * sizeof(*p));

				if (!p) {
					ret = -ENOMEM;
					goto unlock;
				}
				if (pieces == stack)
					memcpy(p, stack, sizeof(stack));
				pieces = p;
				cap = ncap;
			}
			memcpy(pieces[npieces].id, s->id, STASH_ID_LEN);
			pieces[npieces].loc = s->loc;
			pieces[npieces].raw_len = (uint32_t)s->len;
			pieces[npieces].off = in;
			pieces[npieces].dst = out + (pos - off);
			pieces[npieces].len = n;
			npieces++;
			break;
		}
		pos += n;
	}
unlock:
	pthread_mutex_unlock(&f->lock);
	for (size_t i = 0; !ret && i < npieces; i++) {
		struct piece *p = &pieces[i];

		ret = read_chunk(st, p->id, &p->loc, p->raw_len, p->off, p->dst,
				 p->len);
	}
	if (pieces != stack)
		free(pieces);
	if (ret)
		return ret == -EBADMSG ? -EIO : ret;
	atomic_fetch_add(&st->bytes_read, end - off);
	return (ssize_t)(end - off);
}
