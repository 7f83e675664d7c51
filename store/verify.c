/*
 * verify.c - check a store from end to end, report what is wrong in terms
 * a person can act on (which check failed, which chunks are damaged,
 * which files - live and in which snapshots - that damage reaches, by
 * path) and, on request, repair what can be repaired.
 *
 * Checks, in this order:
 *   1. the catalog's own integrity (PRAGMA integrity_check);
 *   2. every file-map row, live and in snapshots: it names an existing
 *      chunk row and a regular file, and each file's rows tile [0, size)
 *      exactly; the rows naming each chunk are counted here;
 *   3. each chunk's refs against that count (chunks.refs counts the
 *      file-map rows of the live tree and of every snapshot), each chunk
 *      in use lying inside an existing pack file and, with
 *      STASH_VERIFY_FULL, read, authenticated, decoded and hashed back to
 *      its id;
 *   4. (repair) a good copy of each damaged chunk, looked up in every
 *      pack trailer, or, in a pack whose trailer is missing or damaged,
 *      tried at each place a chunk can start;
 *   5. which files use the chunks still damaged, which byte ranges, and
 *      whether those files already carry a matching damage mark;
 *   6. (repair) one catalog transaction: relocate, set refs, write marks
 *      on files whose data is lost, remove marks that are stale.
 *
 * Nothing is deleted: a chunk that cannot be found stays in the catalog
 * (its bytes read as EIO) and the files using it are marked and named.
 * The catalog lock is held around catalog calls only; chunk rows are
 * fetched in batches so that pack reads happen without it. Two passes
 * over the file maps (2 and 5) replace per-chunk lookups: snap_extents
 * has no index by chunk, and a second pass runs only when something is
 * damaged.
 */
#include "verify.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "catalog_verify.h"
#include "chunk.h"
#include "chunker.h"
#include "crypto.h"
#include "store_int.h"

#define CHUNK_BATCH 1024    /* chunk rows fetched per catalog call */
#define LISTED_MAX 5	    /* chunk ids or inodes named in a summary */
#define CHUNK_LINES_MAX 20  /* damaged chunks described one by one */
#define CATALOG_MSGS_MAX 5  /* integrity_check messages shown */
#define PATH_DEPTH_MAX 4096 /* directories walked up from a file */
#define SHORT_ID_BYTES 8    /* chunk ids are shown as 16 hex digits */
/* Attempts to open a chunk at a guessed place in packs without a
 * readable trailer: bounds the work a badly damaged store can cost. */
#define SCAN_TRIES_MAX 100000
#define PROGRESS_NS 200000000 /* 0.2 s between progress calls */

/* A growing string; oom is set (and text dropped) when memory runs out. */
struct sbuf {
	char *buf;  /* NUL-terminated once anything was added */
	size_t len; /* bytes before the NUL */
	size_t cap; /* bytes allocated */
	bool oom;   /* an append failed */
};

/* A pack file named by chunks in use, and what stat said of it. */
struct pack_info {
	uint64_t pack; /* pack id */
	uint64_t size; /* file size in bytes, when err is 0 */
	int err;       /* 0, or why the size is unknown (-ENOENT: missing) */
};

/* A chunk row named by file maps: how many rows, and whether damaged. */
struct use_slot {
	int64_t row;   /* chunks.id; 0 = free slot (0 is a hole, never kept) */
	uint64_t uses; /* file-map rows naming it, live and snapshot */
	size_t bad;    /* index + 1 in verify.bad, or 0 */
};

/* A damaged chunk in use. */
struct bad_chunk {
	struct stash_cat_chunk c;  /* the row as listed */
	uint64_t uses;		   /* file-map rows naming it */
	bool missing;		   /* its location is wrong (else: contents) */
	bool fixed;		   /* a good copy was found (repair) */
	struct stash_chunk_loc to; /* where, if fixed */
	uint32_t to_raw;	   /* its plaintext length there */
	char *why;		   /* what is wrong (the first few; owned) */
};

/* A byte range of a file that reads as EIO. */
struct range {
	uint64_t off; /* first byte */
	uint64_t len; /* bytes, >= 1 */
};

/* A damaged file: a live inode or a snapshot's copy of one. */
struct bad_file {
	uint64_t ino;	      /* live number, or (snap << 40) | ino */
	uint64_t chunks;      /* uses of damaged chunks in its map */
	uint64_t bytes;	      /* bytes those uses cover */
	uint64_t first_off;   /* offset of the first of them */
	char *map_why;	      /* first problem of its map, or NULL (owned) */
	struct range *ranges; /* lost bytes, in offset order (owned) */
	size_t nranges, ranges_cap;
	char *mark;	 /* its damage mark as stored, or NULL (owned) */
	size_t mark_len; /* bytes of mark */
	bool has_mark;	 /* mark is set */
	bool marked;	 /* the mark says exactly what ranges say */
	bool mark_now;	 /* this run's repair wrote the mark */
};

/* A directory entry naming an inode. */
struct name_ref {
	uint64_t parent;	       /* directory holding it */
	char name[STASH_NAME_MAX + 1]; /* NUL-terminated */
};

/* A damage mark on a file that is not damaged (any more). */
struct stale_mark {
	int64_t snap, ino; /* as stored */
};

/* A chunk row whose refs are wrong, and what they should be. */
struct ref_fix {
	int64_t row;
	uint64_t uses;
};

/* A snapshot's directory entry kept for naming files (snapshot walk). */
struct snap_ent {
	uint64_t ino;	 /* inode named (base number) */
	uint64_t parent; /* directory holding it (base number) */
	char *name;	 /* owned */
	size_t seq;	 /* scan order, to keep it among equal inos */
};

struct verify {
	struct stash_store *st;
	unsigned flags; /* STASH_VERIFY_* */
	const struct stash_verify_opts *o;
	struct stash_verify_result *res;
	bool oom; /* memory ran out: the run stops with -ENOMEM */

	/* chunk rows named by file maps: row -> use_slot (open addressing) */
	struct use_slot *uses;
	size_t nuses, uses_cap; /* cap: a power of two, or 0 */

	/* chunk scan */
	struct pack_info *packs; /* sorted by pack id */
	size_t npacks, packs_cap;
	struct bad_chunk *bad; /* damaged chunks in use */
	size_t nbad, bad_cap;
	struct ref_fix *ref_fixes; /* every refs mismatch */
	size_t nref_fixes, ref_fixes_cap;
	struct sbuf ref_list;	 /* the first LISTED_MAX mismatched refs */
	int chunk_err;		 /* why the chunk scan stopped early */
	uint8_t *sealed, *plain; /* read buffers */
	size_t sealed_cap, plain_cap;

	/* progress (full) */
	uint64_t total_chunks, total_bytes; /* estimates */
	uint64_t read_bytes;		    /* sealed bytes tried */
	int64_t prog_start, prog_last;	    /* monotonic ns */

	/* repair: looking for good copies */
	size_t nfixed;	       /* bad chunks with a good copy found */
	size_t *by_id;	       /* bad index + 1, hashed by chunk id */
	size_t by_id_cap;      /* a power of two, or 0 */
	uint64_t trailers_bad; /* packs whose trailer could not be used */
	uint64_t scan_tries;   /* guesses tried in those packs */
	int search_err;	       /* why the search stopped early */

	/* file-map scan */
	bool in_file;		/* cur_* describe the file being scanned */
	int64_t cur_snap;	/* its snapshot (0: live), as stored */
	int64_t cur_raw;	/* its inode number, as stored */
	uint64_t cur_ino;	/* its key (file_key), 0 if out of range */
	bool cur_reg;		/* it is a regular file */
	int64_t cur_size;	/* its size */
	int64_t cur_next;	/* where its next extent must start */
	bool cur_broken;	/* its map failed already */
	uint64_t stray_inodes;	/* inodes with stray extents */
	struct sbuf stray_list; /* the first LISTED_MAX of them */
	int extent_err;		/* why the map scan stopped early */
	int attrib_err;		/* why finding damaged files stopped */

	/* damage marks */
	struct stale_mark *stale;
	size_t nstale, stale_cap;
	int marks_err; /* why reading the marks stopped */

	/* repair transaction */
	bool repair_done;    /* committed */
	bool repair_refused; /* not tried: the catalog is damaged */
	int repair_err;	     /* why it failed (nothing changed) */

	/* damaged files, with a key -> index + 1 hash table */
	struct bad_file *files;
	size_t nfiles, files_cap;
	size_t *slots;
	size_t nslots;		/* a power of two, or 0 */
	int naming_err;		/* why naming damaged files stopped early */
	struct sbuf file_lines; /* one line per name of a damaged file */
};

/* ---- strings ---- */

static bool sb_grow(struct sbuf *sb, size_t more)
{
	size_t cap;
	char *p;

	if (sb->oom)
		return false;
	if (sb->len + more + 1 <= sb->cap)
		return true;
	cap = sb->cap ? sb->cap : 128;
	while (cap < sb->len + more + 1)
		cap *= 2;
	p = realloc(sb->buf, cap);
	if (!p) {
		sb->oom = true;
		return false;
	}
	p[sb->len] = '\0'; /* a new buffer holds the empty string */
	sb->buf = p;
	sb->cap = cap;
	return true;
}

static void sb_vaddf(struct sbuf *sb, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
static void sb_vaddf(struct sbuf *sb, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0 || !sb_grow(sb, (size_t)n))
		return;
	vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
	sb->len += (size_t)n;
}

static void sb_addf(struct sbuf *sb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void sb_addf(struct sbuf *sb, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sb_vaddf(sb, fmt, ap);
	va_end(ap);
}

/*
 * A file name as a person can read it on one line: control bytes as
 * \xNN and a backslash doubled; everything else (UTF-8 too) as it is.
 */
static void sb_add_name(struct sbuf *sb, const char *name)
{
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		if (*p < 0x20 || *p == 0x7f)
			sb_addf(sb, "\\x%02x", *p);
		else if (*p == '\\')
			sb_addf(sb, "\\\\");
		else
			sb_addf(sb, "%c", *p);
	}
}

/* Put "/" and name (escaped) in front of what sb holds. */
static void sb_prepend_name(struct sbuf *sb, const char *name)
{
	struct sbuf part = { 0 };

	sb_addf(&part, "/");
	sb_add_name(&part, name);
	if (part.oom || !sb_grow(sb, part.len)) {
		sb->oom = true;
		free(part.buf);
		return;
	}
	memmove(sb->buf + part.len, sb->buf, sb->len + 1);
	memcpy(sb->buf, part.buf, part.len);
	sb->len += part.len;
	free(part.buf);
}

static void sb_reset(struct sbuf *sb)
{
	sb->len = 0;
	if (sb->buf)
		sb->buf[0] = '\0';
}

static void sb_free(struct sbuf *sb)
{
	free(sb->buf);
	*sb = (struct sbuf){ 0 };
}

/* Hand one line to the report; note a string that lost text. */
static void emit(struct verify *v, struct sbuf *sb)
{
	if (sb->oom)
		v->oom = true;
	else if (v->o->report)
		v->o->report(v->o->arg, sb->buf ? sb->buf : "");
	sb_reset(sb);
}

static void say(struct verify *v, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void say(struct verify *v, const char *fmt, ...)
{
	struct sbuf sb = { 0 };
	va_list ap;

	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	emit(v, &sb);
	sb_free(&sb);
}

/* Print the lines of sb (text separated by '\n'), each on its own. */
static void emit_lines(struct verify *v, struct sbuf *sb)
{
	char *line, *next;

	if (sb->oom) {
		v->oom = true;
		return;
	}
	for (line = sb->buf; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (v->o->report)
			v->o->report(v->o->arg, line);
		if (!next)
			break;
	}
}

static void human(uint64_t bytes, char *out, size_t size)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double b = (double)bytes;
	int u = 0;

	while (b >= 1024 && u < 4) {
		b /= 1024;
		u++;
	}
	snprintf(out, size, u ? "%.1f %s" : "%.0f %s", b, units[u]);
}

static const char *plural(uint64_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

static void short_id(const uint8_t *id, char *hex)
{
	stash_hex(id, SHORT_ID_BYTES, hex);
}

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Make *buf hold at least len bytes. */
static int reserve(uint8_t **buf, size_t *cap, size_t len)
{
	uint8_t *p;

	if (len <= *cap)
		return 0;
	p = realloc(*buf, len);
	if (!p)
		return -ENOMEM;
	*buf = p;
	*cap = len;
	return 0;
}

/* Grow an array of *cap elements of size bytes to hold n + 1. */
static int grow(void *arr, size_t *cap, size_t n, size_t size)
{
	size_t c;
	void *p, *q;

	if (n < *cap)
		return 0;
	c = *cap ? 2 * *cap : 16;
	memcpy(&p, arr, sizeof(p)); /* arr points at a typed pointer */
	q = realloc(p, c * size);
	if (!q)
		return -ENOMEM;
	memcpy(arr, &q, sizeof(q));
	*cap = c;
	/* cppcheck-suppress memleak ; q now lives in *arr */
	return 0;
}

/* qsort, which must not be handed NULL even for no elements. */
static void sort(void *base, size_t n, size_t size,
		 int (*cmp)(const void *, const void *))
{
	if (n > 1)
		qsort(base, n, size, cmp);
}

/*
 * The number a file is known by here: its live inode number, or the
 * number of its copy in snapshot snap (catalog.h); 0 when the stored
 * numbers fit neither (such rows are reported as stray).
 */
static uint64_t file_key(int64_t snap, int64_t ino)
{
	if (ino <= 0 || (uint64_t)ino > stash_ino_base(UINT64_MAX))
		return 0;
	if (snap == 0)
		return (uint64_t)ino;
	if (snap < 0 || (uint64_t)snap > STASH_SNAP_MAX)
		return 0;
	return stash_ino_make((uint64_t)snap, (uint64_t)ino);
}

static size_t mix(uint64_t x, size_t cap)
{
	return (size_t)((x * 0x9E3779B97F4A7C15ull) >> 17) & (cap - 1);
}

/* ---- chunk rows named by file maps ---- */

static struct use_slot *use_find(struct verify *v, int64_t row)
{
	if (!v->uses_cap || row == 0)
		return NULL;
	for (size_t h = mix((uint64_t)row, v->uses_cap); v->uses[h].row;
	     h = (h + 1) & (v->uses_cap - 1))
		if (v->uses[h].row == row)
			return &v->uses[h];
	return NULL;
}

static int use_add(struct verify *v, int64_t row)
{
	struct use_slot *u = use_find(v, row);
	size_t h;

	if (u) {
		u->uses++;
		return 0;
	}
	if (2 * (v->nuses + 1) > v->uses_cap) {
		size_t cap = v->uses_cap ? 2 * v->uses_cap : 1024;
		struct use_slot *t = calloc(cap, sizeof(*t));

		if (!t)
			return -ENOMEM;
		for (size_t i = 0; i < v->uses_cap; i++) {
			if (!v->uses[i].row)
				continue;
			for (h = mix((uint64_t)v->uses[i].row, cap); t[h].row;
			     h = (h + 1) & (cap - 1))
				;
			t[h] = v->uses[i];
		}
		free(v->uses);
		v->uses = t;
		v->uses_cap = cap;
	}
	for (h = mix((uint64_t)row, v->uses_cap); v->uses[h].row;
	     h = (h + 1) & (v->uses_cap - 1))
		;
	v->uses[h] = (struct use_slot){ .row = row, .uses = 1 };
	v->nuses++;
	return 0;
}

/* ---- damaged files ---- */

static int rehash(struct verify *v)
{
	size_t n = v->nslots ? 2 * v->nslots : 256;
	size_t *slots = calloc(n, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < v->nfiles; i++) {
		size_t h = mix(v->files[i].ino, n);

		while (slots[h])
			h = (h + 1) & (n - 1);
		slots[h] = i + 1;
	}
	free(v->slots);
	v->slots = slots;
	v->nslots = n;
	return 0;
}

/* The damaged-file record of ino, or NULL. */
static struct bad_file *file_find(struct verify *v, uint64_t ino)
{
	if (!v->nslots)
		return NULL;
	for (size_t h = mix(ino, v->nslots); v->slots[h];
	     h = (h + 1) & (v->nslots - 1))
		if (v->files[v->slots[h] - 1].ino == ino)
			return &v->files[v->slots[h] - 1];
	return NULL;
}

/* The damaged-file record of ino, made if new: its index, or -ENOMEM. */
static ssize_t file_get(struct verify *v, uint64_t ino)
{
	struct bad_file *f = file_find(v, ino);
	size_t h;

	if (f)
		return f - v->files;
	if (grow(&v->files, &v->files_cap, v->nfiles, sizeof(*v->files)))
		return -ENOMEM;
	if (2 * (v->nfiles + 1) > v->nslots && rehash(v))
		return -ENOMEM;
	v->files[v->nfiles] = (struct bad_file){ .ino = ino };
	for (h = mix(ino, v->nslots); v->slots[h];
	     h = (h + 1) & (v->nslots - 1))
		;
	v->slots[h] = ++v->nfiles;
	return (ssize_t)(v->nfiles - 1);
}

/* Note what is wrong with the map of ino (only the first reason stays). */
static int map_problem(struct verify *v, uint64_t ino, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int map_problem(struct verify *v, uint64_t ino, const char *fmt, ...)
{
	ssize_t i = file_get(v, ino);
	struct sbuf sb = { 0 };
	va_list ap;

	if (i < 0)
		return (int)i;
	if (v->files[i].map_why)
		return 0;
	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	if (sb.oom)
		return -ENOMEM;
	v->files[i].map_why = sb.buf;
	return 0;
}

/* ---- check 1: the catalog ---- */

struct cat_msgs {
	struct sbuf lines; /* the messages, one per line */
	int n;		   /* messages seen */
};

static int on_catalog_msg(void *arg, const char *msg)
{
	struct cat_msgs *m = arg;

	sb_addf(&m->lines, m->n++ ? "  %s\n" : "catalog: damaged: %s\n", msg);
	return m->n >= CATALOG_MSGS_MAX;
}

static void check_catalog(struct verify *v)
{
	struct cat_msgs m = { 0 };
	int ret;

	pthread_mutex_lock(&v->st->cat_lock);
	ret = stash_cat_integrity(v->st->cat, on_catalog_msg, &m);
	pthread_mutex_unlock(&v->st->cat_lock);
	if (!ret) {
		say(v, "catalog: ok");
	} else if (ret == -ENOMEM) {
		v->oom = true;
	} else {
		v->res->catalog_damaged = 1;
		emit_lines(v, &m.lines);
		if (m.n >= CATALOG_MSGS_MAX)
			say(v, "  (more not shown)");
		else if (m.n == 0)
			say(v, "catalog: damaged: it cannot be read (%s)",
			    strerror(-ret));
	}
	sb_free(&m.lines);
}

/* ---- check 2: file maps, live and in snapshots ---- */

/* The extents of one file are over: does its map end at its size? */
static int end_file(struct verify *v)
{
	if (!v->in_file || !v->cur_reg || v->cur_broken ||
	    v->cur_next == v->cur_size)
		return 0;
	v->res->bad_maps++;
	return map_problem(v, v->cur_ino,
			   "its extents cover %lld bytes but its size is"
			   " %lld",
			   (long long)v->cur_next, (long long)v->cur_size);
}

/* The first problem of the map of the file being scanned. */
static int broken_map(struct verify *v, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int broken_map(struct verify *v, const char *fmt, ...)
{
	struct sbuf sb = { 0 };
	va_list ap;
	int ret;

	v->cur_broken = true;
	v->res->bad_maps++;
	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	if (sb.oom)
		return -ENOMEM;
	ret = map_problem(v, v->cur_ino, "%s", sb.buf);
	sb_free(&sb);
	return ret;
}

static const char *kind_of(bool found, uint32_t mode)
{
	if (!found)
		return "no such inode";
	switch (mode & S_IFMT) {
	case S_IFDIR:
		return "a directory";
	case S_IFLNK:
		return "a symlink";
	default:
		return "not a regular file";
	}
}

/* Name a file whose rows are stray in the summary (the first few). */
static void stray_file(struct verify *v, const struct stash_cat_map_row *r)
{
	struct sbuf *sb = &v->stray_list;

	if (v->stray_inodes++ >= LISTED_MAX)
		return;
	if (v->stray_inodes > 1)
		sb_addf(sb, ", ");
	if (r->snap && !r->snap_found)
		sb_addf(sb, "inode %lld of snapshot %lld, which does not exist",
			(long long)r->ino, (long long)r->snap);
	else if (r->snap)
		sb_addf(sb, "inode %lld of snapshot %lld (%s)",
			(long long)r->ino, (long long)r->snap,
			file_key(r->snap, r->ino)
				? kind_of(r->ino_found, r->mode)
				: "a number out of range");
	else
		sb_addf(sb, "inode %lld (%s)", (long long)r->ino,
			file_key(0, r->ino) ? kind_of(r->ino_found, r->mode)
					    : "a number out of range");
}

static int on_map_row(void *arg, const struct stash_cat_map_row *r)
{
	struct verify *v = arg;
	int ret;

	v->res->extents++;
	/* Every row holds a reference, whatever else is wrong with it. */
	if (r->chunk != 0) {
		ret = use_add(v, r->chunk);
		if (ret)
			return ret;
	}
	if (!v->in_file || r->snap != v->cur_snap || r->ino != v->cur_raw) {
		ret = end_file(v);
		if (ret)
			return ret;
		v->in_file = true;
		v->cur_snap = r->snap;
		v->cur_raw = r->ino;
		v->cur_ino = r->snap_found ? file_key(r->snap, r->ino) : 0;
		v->cur_reg = v->cur_ino && r->ino_found && S_ISREG(r->mode);
		v->cur_size = r->size;
		v->cur_next = 0;
		v->cur_broken = false;
		if (!v->cur_reg)
			stray_file(v, r);
		else if (r->snap)
			v->res->snap_files++;
		else
			v->res->files++;
	}
	if (!v->cur_reg) {
		v->res->stray_extents++;
		return 0;
	}
	if (r->chunk != 0 && !r->chunk_found) {
		v->res->dangling_extents++;
		ret = map_problem(v, v->cur_ino,
				  "the extent at offset %lld names chunk row"
				  " %lld, which does not exist",
				  (long long)r->off, (long long)r->chunk);
		if (ret)
			return ret;
	}
	if (v->cur_broken)
		return 0; /* one reason per file is enough */
	if (r->off > v->cur_next)
		return broken_map(v, "nothing covers bytes %lld..%lld",
				  (long long)v->cur_next, (long long)r->off);
	if (r->off < v->cur_next)
		return broken_map(v, "extents overlap at offset %lld",
				  (long long)r->off);
	if (r->len <= 0 || r->len > INT64_MAX - r->off)
		return broken_map(v,
				  "the extent at offset %lld has length %lld",
				  (long long)r->off, (long long)r->len);
	/* chunk 0 is a hole: zeros, any length, no chunk row. */
	if (r->chunk != 0 && r->len > STASH_CHUNK_MAX_LIMIT)
		return broken_map(v,
				  "the extent at offset %lld is longer (%lld"
				  " bytes) than any chunk",
				  (long long)r->off, (long long)r->len);
	if (r->chunk != 0 && r->chunk_found && r->len != r->raw_len)
		return broken_map(v,
				  "the extent at offset %lld covers %lld bytes"
				  " but its chunk holds %lld",
				  (long long)r->off, (long long)r->len,
				  (long long)r->raw_len);
	v->cur_next = r->off + r->len;
	return 0;
}

static int on_unmapped(void *arg, int64_t snap, int64_t ino, int64_t size)
{
	struct verify *v = arg;
	uint64_t key = file_key(snap, ino);

	if (!key)
		return 0; /* no row of its map exists to be stray */
	v->res->bad_maps++;
	return map_problem(v, key, "it has no extents for its %lld bytes",
			   (long long)size);
}

static int check_maps(struct verify *v)
{
	int ret;

	pthread_mutex_lock(&v->st->cat_lock);
	ret = stash_cat_verify_scan_maps(v->st->cat, on_map_row, v);
	if (!ret)
		ret = end_file(v);
	if (!ret)
		ret = stash_cat_verify_unmapped(v->st->cat, on_unmapped, v);
	pthread_mutex_unlock(&v->st->cat_lock);
	if (ret == -ENOMEM)
		return ret;
	v->extent_err = ret;
	return 0;
}

/* ---- check 3: chunks ---- */

static int pack_lookup(struct verify *v, uint64_t pack,
		       const struct pack_info **out)
{
	size_t lo = 0, hi = v->npacks;
	struct pack_info *p;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v->packs[mid].pack < pack)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < v->npacks && v->packs[lo].pack == pack) {
		*out = &v->packs[lo];
		return 0;
	}
	if (grow(&v->packs, &v->packs_cap, v->npacks, sizeof(*v->packs)))
		return -ENOMEM;
	p = &v->packs[lo];
	memmove(p + 1, p, (v->npacks - lo) * sizeof(*p));
	v->npacks++;
	v->res->packs++;
	*p = (struct pack_info){ .pack = pack };
	p->err = stash_packs_size(v->st->packs, pack, &p->size);
	*out = p;
	return 0;
}

/* Note a damaged chunk in use, fmt saying what is wrong: 1, or -ENOMEM. */
static int bad_chunk(struct verify *v, const struct stash_cat_chunk *c,
		     uint64_t uses, bool missing, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static int bad_chunk(struct verify *v, const struct stash_cat_chunk *c,
		     uint64_t uses, bool missing, const char *fmt, ...)
{
	struct use_slot *u = use_find(v, c->row);
	struct bad_chunk *b;
	va_list ap;

	if (grow(&v->bad, &v->bad_cap, v->nbad, sizeof(*v->bad)))
		return -ENOMEM;
	b = &v->bad[v->nbad++];
	*b = (struct bad_chunk){ .c = *c, .uses = uses, .missing = missing };
	if (u)
		u->bad = v->nbad;
	if (v->nbad <= CHUNK_LINES_MAX) {
		struct sbuf sb = { 0 };

		va_start(ap, fmt);
		sb_vaddf(&sb, fmt, ap);
		va_end(ap);
		if (sb.oom)
			return -ENOMEM;
		b->why = sb.buf;
	}
	return 1;
}

/* Is the chunk where the catalog says? 1 if not, 0, -errno. */
static int check_location(struct verify *v, const struct stash_cat_chunk *c,
			  uint64_t uses)
{
	const struct pack_info *p;
	int ret;

	if (c->malformed)
		return bad_chunk(v, c, uses, true,
				 "its catalog row holds impossible values");
	if (c->raw_len > STASH_CHUNK_MAX_LIMIT ||
	    c->loc.len <= STASH_CHUNK_OVERHEAD ||
	    c->loc.len > stash_chunk_sealed_max(c->raw_len))
		return bad_chunk(v, c, uses, true,
				 "a sealed length of %u bytes is impossible"
				 " for %u bytes of data",
				 c->loc.len, c->raw_len);
	if (c->loc.off < STASH_PACK_HDR_LEN)
		return bad_chunk(v, c, uses, true,
				 "the offset lies in the pack header");
	ret = pack_lookup(v, c->loc.pack, &p);
	if (ret)
		return ret;
	if (p->err == -ENOENT)
		return bad_chunk(v, c, uses, true, "the pack file is missing");
	if (p->err)
		return bad_chunk(v, c, uses, true,
				 "the pack file cannot be examined: %s",
				 strerror(-p->err));
	if (c->loc.off > p->size || c->loc.len > p->size - c->loc.off)
		return bad_chunk(v, c, uses, true,
				 "the pack file ends at %llu, before the"
				 " chunk does",
				 (unsigned long long)p->size);
	return 0;
}

/* What reading a chunk at some place gave. */
enum got {
	GOT_OK,	     /* authenticated, decoded, hashes to its id */
	GOT_SHORT,   /* the pack ends inside it */
	GOT_IOERR,   /* the pack cannot be read (err says why) */
	GOT_CORRUPT, /* it does not authenticate or decode */
	GOT_NOHASH,  /* it cannot be hashed (err says why) */
	GOT_OTHER,   /* it decodes to data that is not its id's */
};

/*
 * Read the chunk id (raw_len bytes of data) at loc, open and hash it.
 * Returns an enum got, or -ENOMEM. The lengths were checked to be
 * possible before: this is only called with raw_len <=
 * STASH_CHUNK_MAX_LIMIT and loc->len <= stash_chunk_sealed_max(raw_len).
 */
static int read_chunk(struct verify *v, const uint8_t id[STASH_ID_LEN],
		      const struct stash_chunk_loc *loc, uint32_t raw_len,
		      int *err)
{
	const struct stash_keys *k = &v->st->keys;
	uint8_t got[STASH_ID_LEN];
	int ret;

	if (reserve(&v->sealed, &v->sealed_cap, loc->len) ||
	    reserve(&v->plain, &v->plain_cap, STASH_MAX(raw_len, 1u)))
		return -ENOMEM;
	v->read_bytes += loc->len;
	ret = stash_packs_read(v->st->packs, loc, v->sealed);
	if (ret == -ENOMEM)
		return ret;
	if (ret == -EBADMSG)
		return GOT_SHORT;
	if (ret) {
		*err = ret;
		return GOT_IOERR;
	}
	ret = stash_chunk_decode(k->chunk_data, k->key_id, id, v->sealed,
				 loc->len, v->plain, raw_len);
	if (ret == -ENOMEM)
		return ret;
	if (ret)
		return GOT_CORRUPT;
	ret = stash_crypto_hmac(k->chunk_id, v->plain, raw_len, got);
	if (ret) {
		*err = ret;
		return GOT_NOHASH;
	}
	return memcmp(got, id, STASH_ID_LEN) ? GOT_OTHER : GOT_OK;
}

/* Read, open and hash the chunk where it is. 1 if damaged, 0, -ENOMEM. */
static int check_content(struct verify *v, const struct stash_cat_chunk *c,
			 uint64_t uses)
{
	int err = 0, ret;

	v->res->chunks_read++;
	ret = read_chunk(v, c->id, &c->loc, c->raw_len, &err);
	if (ret < 0)
		return ret;
	if (ret != GOT_SHORT && ret != GOT_IOERR)
		v->res->bytes_read += c->loc.len;
	switch (ret) {
	case GOT_OK:
		v->res->bytes_decoded += c->raw_len;
		return 0;
	case GOT_SHORT:
		return bad_chunk(v, c, uses, false,
				 "the pack file ends inside it");
	case GOT_IOERR:
		return bad_chunk(v, c, uses, false, "cannot be read: %s",
				 strerror(-err));
	case GOT_CORRUPT:
		return bad_chunk(v, c, uses, false,
				 "corrupt: it does not authenticate or"
				 " decode");
	case GOT_NOHASH:
		return bad_chunk(v, c, uses, false, "cannot be hashed: %s",
				 strerror(-err));
	default:
		return bad_chunk(v, c, uses, false,
				 "corrupt: its data does not match its id");
	}
}

/* Tell the caller where a full verify is (throttled unless done). */
static void progress(struct verify *v, bool done)
{
	struct stash_verify_progress p;
	int64_t now;

	if (!v->o->progress || !(v->flags & STASH_VERIFY_FULL))
		return;
	now = mono_ns();
	if (!done && now - v->prog_last < PROGRESS_NS)
		return;
	v->prog_last = now;
	p = (struct stash_verify_progress){
		.chunks_done = v->res->chunks_read,
		.chunks_total = STASH_MAX(v->total_chunks, v->res->chunks_read),
		.bytes_done = v->read_bytes,
		.bytes_total = STASH_MAX(v->total_bytes, v->read_bytes),
		.elapsed = (double)(now - v->prog_start) / 1e9,
		.done = done,
	};
	v->o->progress(v->o->arg, &p);
}

static int check_one_chunk(struct verify *v, const struct stash_cat_chunk *c)
{
	struct stash_verify_result *r = v->res;
	const struct use_slot *u = use_find(v, c->row);
	uint64_t uses = u ? u->uses : 0;
	int ret;

	r->chunks++;
	if (c->refs < 0 || (uint64_t)c->refs != uses) {
		char hex[2 * SHORT_ID_BYTES + 1];

		if (grow(&v->ref_fixes, &v->ref_fixes_cap, v->nref_fixes,
			 sizeof(*v->ref_fixes)))
			return -ENOMEM;
		v->ref_fixes[v->nref_fixes++] =
			(struct ref_fix){ .row = c->row, .uses = uses };
		if (r->ref_mismatches++ < LISTED_MAX) {
			short_id(c->id, hex);
			sb_addf(&v->ref_list, "%s%s (refs %lld, %llu %s)",
				r->ref_mismatches > 1 ? ", " : "", hex,
				(long long)c->refs, (unsigned long long)uses,
				plural(uses, "file-map row", "file-map rows"));
		}
	}
	if (c->refs <= 0 && uses == 0)
		return 0; /* dead: kept for gc, never read */
	r->chunks_in_use++;
	ret = check_location(v, c, uses);
	if (ret > 0)
		r->missing_chunks++;
	if (ret || !(v->flags & STASH_VERIFY_FULL))
		return ret < 0 ? ret : 0;
	ret = check_content(v, c, uses);
	if (ret > 0)
		r->corrupt_chunks++;
	progress(v, false);
	return ret < 0 ? ret : 0;
}

static int check_chunks(struct verify *v)
{
	struct stash_cat_chunk *batch = calloc(CHUNK_BATCH, sizeof(*batch));
	int64_t after = 0;
	ssize_t n;
	int ret = 0;

	if (!batch)
		return -ENOMEM;
	if (v->flags & STASH_VERIFY_FULL) {
		pthread_mutex_lock(&v->st->cat_lock);
		/* Only for the progress display: no harm if it fails. */
		stash_cat_verify_totals(v->st->cat, &v->total_chunks,
					&v->total_bytes);
		pthread_mutex_unlock(&v->st->cat_lock);
		v->prog_start = mono_ns();
	}
	for (;;) {
		pthread_mutex_lock(&v->st->cat_lock);
		n = stash_cat_list_chunks(v->st->cat, after, batch,
					  CHUNK_BATCH);
		pthread_mutex_unlock(&v->st->cat_lock);
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n && !ret; i++) {
			ret = check_one_chunk(v, &batch[i]);
			after = batch[i].row;
		}
		if (ret)
			break;
	}
	progress(v, true);
	if (n < 0 && n != -ENOMEM)
		v->chunk_err = (int)n;
	else if (n == -ENOMEM)
		ret = -ENOMEM;
	free(batch);
	return ret;
}

/* ---- step 4 (repair): good copies of damaged chunks ---- */

/* Could a sealed chunk of len bytes hold raw_len bytes of data? */
static bool possible(uint32_t len, uint32_t raw_len)
{
	return raw_len > 0 && raw_len <= STASH_CHUNK_MAX_LIMIT &&
	       len > STASH_CHUNK_OVERHEAD &&
	       len <= stash_chunk_sealed_max(raw_len);
}

/* Try bad chunk b at loc: 1 if a good copy is there (b is fixed), 0 if
 * not, -ENOMEM. */
static int try_copy(struct verify *v, struct bad_chunk *b,
		    const struct stash_chunk_loc *loc, uint32_t raw_len)
{
	int err, ret;

	if (!possible(loc->len, raw_len) || loc->off < STASH_PACK_HDR_LEN)
		return 0;
	/* The place the catalog names failed already. */
	if (!b->c.malformed && loc->pack == b->c.loc.pack &&
	    loc->off == b->c.loc.off && loc->len == b->c.loc.len &&
	    raw_len == b->c.raw_len)
		return 0;
	ret = read_chunk(v, b->c.id, loc, raw_len, &err);
	if (ret != GOT_OK)
		return ret < 0 ? ret : 0;
	b->fixed = true;
	b->to = *loc;
	b->to_raw = raw_len;
	v->nfixed++;
	return 1;
}

/* Index the damaged chunks by id (the first 8 bytes are random enough:
 * ids are HMACs). */
static int index_by_id(struct verify *v)
{
	size_t cap = 16;

	while (cap < 2 * v->nbad)
		cap *= 2;
	v->by_id = calloc(cap, sizeof(*v->by_id));
	if (!v->by_id)
		return -ENOMEM;
	v->by_id_cap = cap;
	for (size_t i = 0; i < v->nbad; i++) {
		size_t h = mix(stash_le64dec(v->bad[i].c.id), cap);

		while (v->by_id[h])
			h = (h + 1) & (cap - 1);
		v->by_id[h] = i + 1;
	}
	return 0;
}

static struct bad_chunk *bad_by_id(struct verify *v, const uint8_t *id)
{
	for (size_t h = mix(stash_le64dec(id), v->by_id_cap); v->by_id[h];
	     h = (h + 1) & (v->by_id_cap - 1)) {
		struct bad_chunk *b = &v->bad[v->by_id[h] - 1];

		if (!memcmp(b->c.id, id, STASH_ID_LEN))
			return b;
	}
	return NULL;
}

struct trailer_ctx {
	struct verify *v;
	uint64_t pack;
};

static int on_trailer_entry(void *arg, const struct stash_pack_entry *e)
{
	struct trailer_ctx *t = arg;
	struct bad_chunk *b = bad_by_id(t->v, e->id);
	struct stash_chunk_loc loc = { t->pack, e->off, e->len };
	int ret;

	if (!b || b->fixed)
		return 0;
	ret = try_copy(t->v, b, &loc, e->raw_len);
	return ret < 0 ? ret : 0;
}

/* A pack file as the directory lists it. */
struct pack_file {
	uint64_t pack; /* pack id */
	uint64_t size; /* bytes */
};

struct pack_list {
	struct pack_file *p;
	size_t n, cap;
};

static int on_pack_file(void *arg, uint64_t pack, uint64_t size)
{
	struct pack_list *l = arg;

	if (grow(&l->p, &l->cap, l->n, sizeof(*l->p)))
		return -ENOMEM;
	l->p[l->n++] = (struct pack_file){ pack, size };
	return 0;
}

/* Offsets in a pack: where chunks of its rows start and end. */
struct offsets {
	uint64_t *starts, *ends; /* each sorted before use */
	size_t nstarts, nends, starts_cap, ends_cap;
	struct verify *v;
	uint64_t size; /* the pack file's size */
};

static bool is_bad_row(struct verify *v, int64_t row)
{
	const struct use_slot *u = use_find(v, row);

	if (u)
		return u->bad && !v->bad[u->bad - 1].fixed;
	/* A damaged chunk no file uses has no slot: look it up. */
	for (size_t i = 0; i < v->nbad; i++)
		if (v->bad[i].c.row == row)
			return !v->bad[i].fixed;
	return false;
}

static int on_pack_row(void *arg, int64_t row, int64_t off, int64_t len)
{
	struct offsets *o = arg;

	if (off < STASH_PACK_HDR_LEN || len <= 0 || (uint64_t)off > o->size ||
	    (uint64_t)len > o->size - (uint64_t)off)
		return 0;
	/* A sound row's chunk starts there: no other chunk can. */
	if (!is_bad_row(o->v, row)) {
		if (grow(&o->starts, &o->starts_cap, o->nstarts,
			 sizeof(*o->starts)))
			return -ENOMEM;
		o->starts[o->nstarts++] = (uint64_t)off;
	}
	if (grow(&o->ends, &o->ends_cap, o->nends, sizeof(*o->ends)))
		return -ENOMEM;
	o->ends[o->nends++] = (uint64_t)(off + len);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Note a chunk start at off (kept sorted). */
static int add_start(struct offsets *o, uint64_t off)
{
	size_t lo = 0, hi = o->nstarts;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (o->starts[mid] < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < o->nstarts && o->starts[lo] == off)
		return 0;
	if (grow(&o->starts, &o->starts_cap, o->nstarts, sizeof(*o->starts)))
		return -ENOMEM;
	memmove(o->starts + lo + 1, o->starts + lo,
		(o->nstarts - lo) * sizeof(*o->starts));
	o->starts[lo] = off;
	o->nstarts++;
	return 0;
}

/* Try b at off of the pack being scanned, within the budget: 1 found
 * (its start and end noted), 0 not, -ENOMEM. */
static int scan_try(struct verify *v, struct offsets *o, uint64_t pack,
		    struct bad_chunk *b, uint64_t off)
{
	struct stash_chunk_loc loc = { pack, off, b->c.loc.len };
	int ret;

	if (off > o->size || loc.len > o->size - off ||
	    (o->nstarts &&
	     bsearch(&off, o->starts, o->nstarts, sizeof(*o->starts), cmp_u64)))
		return 0;
	if (v->scan_tries >= SCAN_TRIES_MAX)
		return 0;
	v->scan_tries++;
	ret = try_copy(v, b, &loc, b->c.raw_len);
	if (ret <= 0)
		return ret;
	ret = add_start(o, off);
	if (!ret)
		ret = grow(&o->ends, &o->ends_cap, o->nends, sizeof(*o->ends));
	if (ret)
		return ret;
	o->ends[o->nends++] = off + loc.len;
	return 1;
}

/*
 * A pack without a usable trailer (cut short, damaged, or a pack file
 * under another name): scan what is readable. First each damaged chunk
 * at the offset its row names (a pack copied or renamed keeps them);
 * then, as chunks lie back to back from the header on, at each place
 * where one can start: right after the header or where another ends,
 * unless a sound row's chunk starts there. Each chunk found adds its end
 * as a new place; passes repeat while they find something.
 */
static int scan_pack(struct verify *v, const struct pack_file *pf)
{
	struct offsets o = { .v = v, .size = pf->size };
	bool found = true;
	int ret;

	pthread_mutex_lock(&v->st->cat_lock);
	ret = stash_cat_verify_pack_rows(v->st->cat, pf->pack, on_pack_row, &o);
	pthread_mutex_unlock(&v->st->cat_lock);
	if (!ret)
		ret = grow(&o.ends, &o.ends_cap, o.nends, sizeof(*o.ends));
	if (ret)
		goto out;
	o.ends[o.nends++] = STASH_PACK_HDR_LEN;
	sort(o.starts, o.nstarts, sizeof(*o.starts), cmp_u64);
	for (size_t i = 0; i < v->nbad && ret >= 0; i++)
		if (!v->bad[i].fixed && !v->bad[i].c.malformed)
			ret = scan_try(v, &o, pf->pack, &v->bad[i],
				       v->bad[i].c.loc.off);
	while (found && ret >= 0 && v->scan_tries < SCAN_TRIES_MAX) {
		found = false;
		for (size_t i = 0; i < v->nbad && ret >= 0; i++) {
			struct bad_chunk *b = &v->bad[i];

			if (b->fixed || b->c.malformed)
				continue;
			for (size_t j = 0; j < o.nends && ret >= 0; j++) {
				ret = scan_try(v, &o, pf->pack, b, o.ends[j]);
				if (ret > 0) {
					found = true;
					break;
				}
			}
		}
	}
out:
	free(o.starts);
	free(o.ends);
	return ret < 0 ? ret : 0;
}

static int find_copies(struct verify *v)
{
	struct pack_list l = { 0 };
	char dir[4096];
	int ret;

	if (v->nbad == 0)
		return 0;
	if (snprintf(dir, sizeof(dir), "%s/packs", v->st->path) >=
	    (int)sizeof(dir))
		return -ENAMETOOLONG;
	ret = index_by_id(v);
	if (!ret)
		ret = stash_packs_list(v->st->packs, on_pack_file, &l);
	for (size_t i = 0; !ret && i < l.n && v->nfixed < v->nbad; i++) {
		struct trailer_ctx t = { v, l.p[i].pack };

		ret = stash_packs_read_trailer(dir, v->st->keys.trailer,
					       l.p[i].pack, on_trailer_entry,
					       &t);
		if (ret == -ENOMEM)
			break;
		if (ret) {
			/* No trailer (a torn tail), a damaged one, or none
			 * that can be read: scan what is readable. */
			v->trailers_bad++;
			l.p[v->trailers_bad - 1] = l.p[i];
			ret = 0;
		}
	}
	for (size_t i = 0; !ret && i < v->trailers_bad && v->nfixed < v->nbad;
	     i++)
		ret = scan_pack(v, &l.p[i]);
	free(l.p);
	if (ret == -ENOMEM)
		return ret;
	v->search_err = ret;
	return 0;
}

/* ---- step 5: the files that damage reaches ---- */

static int add_range(struct bad_file *f, uint64_t off, uint64_t len)
{
	struct range *last = f->nranges ? &f->ranges[f->nranges - 1] : NULL;

	if (last && last->off + last->len == off) {
		last->len += len;
		return 0;
	}
	if (grow(&f->ranges, &f->ranges_cap, f->nranges, sizeof(*f->ranges)))
		return -ENOMEM;
	f->ranges[f->nranges++] = (struct range){ off, len };
	return 0;
}

static int on_damaged_row(void *arg, const struct stash_cat_map_row *r)
{
	struct verify *v = arg;
	const struct use_slot *u = use_find(v, r->chunk);
	uint64_t key = r->snap_found ? file_key(r->snap, r->ino) : 0;
	struct bad_file *f;
	ssize_t i;

	if (!u || !u->bad || v->bad[u->bad - 1].fixed || !key || r->off < 0 ||
	    r->len <= 0 || r->len > INT64_MAX - r->off)
		return 0;
	i = file_get(v, key);
	if (i < 0)
		return (int)i;
	f = &v->files[i];
	if (f->chunks == 0 || (uint64_t)r->off < f->first_off)
		f->first_off = (uint64_t)r->off;
	f->chunks++;
	f->bytes += (uint64_t)r->len;
	/* Rows come in offset order within a file: ranges stay sorted. */
	return add_range(f, (uint64_t)r->off, (uint64_t)r->len);
}

static bool any_damage(const struct verify *v)
{
	for (size_t i = 0; i < v->nbad; i++)
		if (!v->bad[i].fixed && v->bad[i].uses)
			return true;
	return false;
}

/* Find the files using chunks that stay damaged (a second pass over the
 * file maps, only when there are some). */
static int attribute(struct verify *v)
{
	int ret;

	for (size_t i = 0; i < v->nfiles; i++) {
		struct bad_file *f = &v->files[i];

		f->chunks = f->bytes = f->first_off = 0;
		f->nranges = 0;
	}
	if (!any_damage(v))
		return 0;
	pthread_mutex_lock(&v->st->cat_lock);
	ret = stash_cat_verify_scan_maps(v->st->cat, on_damaged_row, v);
	pthread_mutex_unlock(&v->st->cat_lock);
	if (ret == -ENOMEM)
		return ret;
	v->attrib_err = ret;
	return 0;
}

/* The damage mark f should carry: its lost ranges (verify.h). */
static void mark_value(const struct bad_file *f, struct sbuf *sb)
{
	for (size_t i = 0; i < f->nranges; i++) {
		char piece[48];
		int n = snprintf(piece, sizeof(piece), "%s%llu-%llu",
				 i ? "," : "",
				 (unsigned long long)f->ranges[i].off,
				 (unsigned long long)(f->ranges[i].off +
						      f->ranges[i].len - 1));

		if (n < 0)
			break;
		if (sb->len + (size_t)n > STASH_VERIFY_MARK_MAX - 4) {
			sb_addf(sb, ",...");
			break;
		}
		sb_addf(sb, "%s", piece);
	}
}

static int on_mark(void *arg, int64_t snap, int64_t ino, const void *value,
		   size_t len)
{
	struct verify *v = arg;
	struct bad_file *f = file_find(v, file_key(snap, ino));

	if (f && f->nranges) {
		f->mark = malloc(len + 1);
		if (!f->mark)
			return -ENOMEM;
		if (len)
			memcpy(f->mark, value, len);
		f->mark[len] = '\0';
		f->mark_len = len;
		f->has_mark = true;
		return 0;
	}
	if (grow(&v->stale, &v->stale_cap, v->nstale, sizeof(*v->stale)))
		return -ENOMEM;
	v->stale[v->nstale++] = (struct stale_mark){ snap, ino };
	return 0;
}

/* Read the damage marks: which damaged files carry the right one, and
 * which marks are on files that are not damaged (any more). */
static int read_marks(struct verify *v)
{
	int ret;

	for (size_t i = 0; i < v->nfiles; i++) {
		free(v->files[i].mark);
		v->files[i].mark = NULL;
		v->files[i].has_mark = false;
	}
	v->nstale = 0;
	pthread_mutex_lock(&v->st->cat_lock);
	ret = stash_cat_verify_marks(v->st->cat, STASH_VERIFY_MARK_XATTR,
				     on_mark, v);
	pthread_mutex_unlock(&v->st->cat_lock);
	if (ret == -ENOMEM)
		return ret;
	v->marks_err = ret;
	for (size_t i = 0; i < v->nfiles; i++) {
		struct bad_file *f = &v->files[i];
		struct sbuf want = { 0 };

		if (!f->nranges)
			continue;
		mark_value(f, &want);
		if (want.oom)
			return -ENOMEM;
		f->marked = f->has_mark && f->mark_len == want.len &&
			    !memcmp(f->mark, want.buf, want.len);
		sb_free(&want);
	}
	return 0;
}

/* ---- step 6 (repair): one transaction ---- */

static int mark_file(struct verify *v, struct bad_file *f)
{
	struct sbuf value = { 0 };
	int ret;

	mark_value(f, &value);
	if (value.oom)
		return -ENOMEM;
	ret = stash_cat_verify_set_mark(
		v->st->cat, (int64_t)stash_ino_snap(f->ino),
		(int64_t)stash_ino_base(f->ino), STASH_VERIFY_MARK_XATTR,
		value.buf, value.len);
	sb_free(&value);
	return ret;
}

static int apply_repairs(struct verify *v)
{
	struct stash_cat *cat = v->st->cat;
	int ret;

	ret = stash_cat_begin(cat);
	if (ret)
		return ret;
	for (size_t i = 0; !ret && i < v->nbad; i++) {
		const struct bad_chunk *b = &v->bad[i];

		if (b->fixed)
			ret = stash_cat_verify_relocate(cat, b->c.row, &b->to,
							b->to_raw);
	}
	for (size_t i = 0; !ret && i < v->nref_fixes; i++)
		ret = stash_cat_verify_set_refs(cat, v->ref_fixes[i].row,
						(int64_t)v->ref_fixes[i].uses);
	for (size_t i = 0; !ret && i < v->nfiles; i++)
		if (v->files[i].nranges && !v->files[i].marked)
			ret = mark_file(v, &v->files[i]);
	for (size_t i = 0; !ret && i < v->nstale; i++)
		ret = stash_cat_verify_set_mark(
			cat, v->stale[i].snap, v->stale[i].ino,
			STASH_VERIFY_MARK_XATTR, NULL, 0);
	if (!ret)
		ret = stash_cat_commit(cat, 1);
	if (ret)
		stash_cat_rollback(cat);
	return ret;
}

static bool repairs_to_make(const struct verify *v)
{
	if (v->nfixed || v->nref_fixes || v->nstale)
		return true;
	for (size_t i = 0; i < v->nfiles; i++)
		if (v->files[i].nranges && !v->files[i].marked)
			return true;
	return false;
}

static int repair(struct verify *v)
{
	struct stash_verify_result *r = v->res;
	int ret;

	if (!repairs_to_make(v))
		return 0;
	pthread_mutex_lock(&v->st->cat_lock);
	ret = apply_repairs(v);
	pthread_mutex_unlock(&v->st->cat_lock);
	if (ret == -ENOMEM)
		return ret;
	if (ret) {
		/* Nothing changed: what looked repairable is damage. */
		v->repair_err = ret;
		for (size_t i = 0; i < v->nbad; i++)
			v->bad[i].fixed = false;
		v->nfixed = 0;
		ret = attribute(v);
		return ret ? ret : read_marks(v);
	}
	v->repair_done = true;
	r->relocated = v->nfixed;
	r->refs_fixed = v->nref_fixes;
	r->repaired = r->relocated + r->refs_fixed;
	/* A damaged chunk no file uses is dead once its refs are 0. */
	for (size_t i = 0; i < v->nbad; i++)
		if (!v->bad[i].fixed && v->bad[i].uses == 0)
			r->repaired++;
	for (size_t i = 0; i < v->nfiles; i++) {
		struct bad_file *f = &v->files[i];

		if (f->nranges && !f->marked)
			f->marked = f->mark_now = true;
	}
	return 0;
}

/* ---- naming damaged files ---- */

struct names {
	struct name_ref *refs;
	size_t n, cap;
	bool first_only; /* stop after the first entry */
};

static int on_name(void *arg, uint64_t parent, const char *name)
{
	struct names *ns = arg;

	if (grow(&ns->refs, &ns->cap, ns->n, sizeof(*ns->refs)))
		return -ENOMEM;
	ns->refs[ns->n].parent = parent;
	snprintf(ns->refs[ns->n].name, sizeof(ns->refs[ns->n].name), "%s",
		 name);
	ns->n++;
	return ns->first_only;
}

/* Where names come from: the live tree (catalog, by index) or one
 * snapshot's entries (loaded into memory, sorted by inode). */
struct namer {
	struct snap_ent *ents; /* NULL: the live tree */
	size_t nents;
};

static int cmp_ent(const void *a, const void *b)
{
	const struct snap_ent *x = a, *y = b;

	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The names of ino (base number for a snapshot) into ns. */
static int names_of(struct verify *v, const struct namer *nm, uint64_t ino,
		    struct names *ns)
{
	size_t lo = 0, hi = nm->nents;
	int ret = 0;

	if (!nm->ents) {
		ret = stash_cat_names_of(v->st->cat, ino, on_name, ns);
		return ret > 0 ? 0 : ret;
	}
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (nm->ents[mid].ino < ino)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < nm->nents && nm->ents[lo].ino == ino; lo++) {
		ret = on_name(ns, nm->ents[lo].parent, nm->ents[lo].name);
		if (ret)
			return ret > 0 ? 0 : ret;
	}
	return 0;
}

/*
 * The path of entry name in directory dir, from the root, into sb. A
 * directory without an entry (or a loop) ends the walk with a note in
 * place of the missing part. Catalog lock held.
 */
static int add_path(struct verify *v, const struct namer *nm, struct sbuf *sb,
		    uint64_t dir, const char *name)
{
	struct sbuf path = { 0 };
	struct names up = { .first_only = true };
	int depth, ret = 0;

	sb_prepend_name(&path, name);
	for (depth = 0; dir != STASH_ROOT_INO; depth++) {
		if (depth == PATH_DEPTH_MAX) {
			sb_addf(sb, "(a loop of directories)");
			break;
		}
		up.n = 0;
		ret = names_of(v, nm, dir, &up);
		if (ret < 0)
			break;
		if (up.n == 0) {
			sb_addf(sb, "(directory inode %llu, which has no name)",
				(unsigned long long)dir);
			break;
		}
		sb_prepend_name(&path, up.refs[0].name);
		dir = up.refs[0].parent;
	}
	free(up.refs);
	if (ret < 0) {
		sb_free(&path);
		return ret;
	}
	if (path.oom)
		sb->oom = true;
	else
		sb_addf(sb, "%s", path.buf);
	sb_free(&path);
	return 0;
}

/* What is wrong with f, after its name: ": ..." */
static void add_reasons(struct verify *v, struct sbuf *sb,
			const struct bad_file *f)
{
	char bytes[32];

	sb_addf(sb, ":");
	if (f->chunks) {
		human(f->bytes, bytes, sizeof(bytes));
		sb_addf(sb,
			" %s in %llu damaged %s (reads there fail with"
			" EIO), the first at offset %llu",
			bytes, (unsigned long long)f->chunks,
			plural(f->chunks, "chunk", "chunks"),
			(unsigned long long)f->first_off);
	}
	if (f->map_why)
		sb_addf(sb,
			"%s its file map is broken: %s (the file cannot"
			" be opened)",
			f->chunks ? ";" : "", f->map_why);
	if (f->nranges && f->mark_now)
		sb_addf(sb, "; marked as damaged now (" STASH_VERIFY_MARK_XATTR
			    ")");
	else if (f->nranges && f->marked)
		sb_addf(sb, "; marked as damaged by an earlier repair");
	else if (f->nranges && (v->flags & STASH_VERIFY_REPAIR))
		sb_addf(sb, "; not marked (the repair failed)");
}

/* One line per name of f, prefix before each path. Catalog lock held. */
static int name_file(struct verify *v, const struct namer *nm,
		     const char *prefix, const struct bad_file *f,
		     struct names *ns)
{
	struct sbuf *line = &v->file_lines;
	uint64_t base = stash_ino_base(f->ino);
	int ret;

	ns->n = 0;
	ret = names_of(v, nm, base, ns);
	if (ret)
		return ret;
	if (ns->n == 0) {
		sb_addf(line,
			"  %sinode %llu (unlinked: no name, but still in"
			" the catalog)",
			prefix, (unsigned long long)f->ino);
		add_reasons(v, line, f);
		sb_addf(line, "\n");
	}
	for (size_t j = 0; j < ns->n && !ret; j++) {
		sb_addf(line, "  %s", prefix);
		ret = add_path(v, nm, line, ns->refs[j].parent,
			       ns->refs[j].name);
		if (ns->n > 1)
			sb_addf(line, " (inode %llu, one of its %zu names)",
				(unsigned long long)f->ino, ns->n);
		add_reasons(v, line, f);
		sb_addf(line, "\n");
	}
	return ret;
}

struct ent_ctx {
	struct verify *v;
	const struct bad_file *files; /* this snapshot's, sorted by ino */
	size_t nfiles;
	struct snap_ent *ents;
	size_t n, cap;
};

static int cmp_file_ino(const void *key, const void *elem)
{
	uint64_t k = *(const uint64_t *)key;
	uint64_t e = stash_ino_base(((const struct bad_file *)elem)->ino);

	return k < e ? -1 : k > e;
}

/* Keep the entries of directories and of damaged files. */
static int on_snap_ent(void *arg, uint64_t parent, const char *name,
		       uint64_t ino, bool is_dir)
{
	struct ent_ctx *c = arg;
	struct snap_ent *e;

	if (!is_dir && !bsearch(&ino, c->files, c->nfiles, sizeof(*c->files),
				cmp_file_ino))
		return 0;
	if (grow(&c->ents, &c->cap, c->n, sizeof(*c->ents)))
		return -ENOMEM;
	e = &c->ents[c->n];
	*e = (struct snap_ent){ .ino = ino, .parent = parent, .seq = c->n };
	e->name = strdup(name);
	if (!e->name)
		return -ENOMEM;
	c->n++;
	return 0;
}

/* Name the damaged copies files[0..n) of snapshot snap. Catalog lock
 * held. */
static int name_snap_files(struct verify *v, uint64_t snap,
			   const struct bad_file *files, size_t n,
			   struct names *ns)
{
	struct ent_ctx c = { .v = v, .files = files, .nfiles = n };
	struct stash_cat_snap s;
	struct sbuf prefix = { 0 };
	struct namer nm;
	int ret;

	ret = stash_cat_snap_get(v->st->cat, snap, &s);
	if (ret && ret != -ENOENT)
		return ret;
	sb_addf(&prefix, "snapshot ");
	if (ret) /* rows left of a snapshot that is gone */
		sb_addf(&prefix, "#%llu (which does not exist)",
			(unsigned long long)snap);
	else
		sb_add_name(&prefix, s.name);
	sb_addf(&prefix, ": ");
	if (prefix.oom)
		return -ENOMEM;
	/* One pass over the snapshot's entries: snap_dirents has no index
	 * by inode, so looking names up one by one would scan it for each
	 * file and each directory above it. */
	ret = stash_cat_verify_snap_dirents(v->st->cat, snap, on_snap_ent, &c);
	if (!ret) {
		sort(c.ents, c.n, sizeof(*c.ents), cmp_ent);
		nm = (struct namer){ c.ents, c.n };
		for (size_t i = 0; i < n && !ret; i++)
			ret = name_file(v, &nm, prefix.buf, &files[i], ns);
	}
	for (size_t i = 0; i < c.n; i++)
		free(c.ents[i].name);
	free(c.ents);
	sb_free(&prefix);
	return ret;
}

static int cmp_file(const void *a, const void *b)
{
	uint64_t x = ((const struct bad_file *)a)->ino;
	uint64_t y = ((const struct bad_file *)b)->ino;

	return x < y ? -1 : x > y;
}

/* One line per name of each damaged file into v->file_lines: the live
 * tree's first, then each snapshot's. Catalog lock held. */
static int name_files(struct verify *v)
{
	const struct namer live = { 0 };
	struct names ns = { 0 };
	size_t i = 0;
	int ret = 0;

	/* Sorted by key: live numbers first, then by snapshot. The hash
	 * table is stale from here on. */
	sort(v->files, v->nfiles, sizeof(*v->files), cmp_file);
	free(v->slots);
	v->slots = NULL;
	v->nslots = 0;
	for (; i < v->nfiles && !ret && !stash_ino_snap(v->files[i].ino); i++)
		ret = name_file(v, &live, "", &v->files[i], &ns);
	while (i < v->nfiles && !ret) {
		uint64_t snap = stash_ino_snap(v->files[i].ino);
		size_t j = i;

		while (j < v->nfiles && stash_ino_snap(v->files[j].ino) == snap)
			j++;
		ret = name_snap_files(v, snap, &v->files[i], j - i, &ns);
		i = j;
	}
	free(ns.refs);
	return ret;
}

static int report_files(struct verify *v)
{
	struct stash_verify_result *r = v->res;
	int ret;

	for (size_t i = 0; i < v->nfiles; i++) {
		const struct bad_file *f = &v->files[i];

		if (!f->nranges && !f->map_why)
			continue;
		r->damaged_files++;
		if (stash_ino_snap(f->ino))
			r->damaged_snap++;
		if (f->nranges && f->marked)
			r->marked_files++;
		else if (f->nranges)
			r->unmarked_files++;
	}
	/* Files whose damage was all repaired are not named. */
	for (size_t i = 0; i < v->nfiles;) {
		if (!v->files[i].nranges && !v->files[i].map_why) {
			free(v->files[i].mark);
			free(v->files[i].ranges);
			v->files[i] = v->files[--v->nfiles];
		} else {
			i++;
		}
	}
	pthread_mutex_lock(&v->st->cat_lock);
	ret = name_files(v);
	pthread_mutex_unlock(&v->st->cat_lock);
	if (ret == -ENOMEM)
		return ret;
	if (v->nfiles)
		say(v, "damaged files (%zu):", v->nfiles);
	emit_lines(v, &v->file_lines);
	v->naming_err = ret;
	if (ret)
		say(v, "  (naming the damaged files stopped early: %s)",
		    strerror(-ret));
	return 0;
}

/* ---- the report ---- */

static void stopped_early(struct sbuf *sb, int err)
{
	if (err)
		sb_addf(sb, "; the catalog scan stopped early: %s",
			strerror(-err));
}

static void summarize_chunks(struct verify *v)
{
	bool repairing = v->flags & STASH_VERIFY_REPAIR;
	char hex[2 * SHORT_ID_BYTES + 1];
	struct sbuf sb = { 0 };

	if (!v->nbad)
		return;
	say(v, "damaged chunks (%zu%s):", v->nbad,
	    v->nbad > CHUNK_LINES_MAX ? ", the first ones" : "");
	for (size_t i = 0; i < v->nbad && i < CHUNK_LINES_MAX; i++) {
		const struct bad_chunk *b = &v->bad[i];

		short_id(b->c.id, hex);
		if (b->c.malformed)
			sb_addf(&sb, "  chunk row %lld (id %s): ",
				(long long)b->c.row, hex);
		else
			sb_addf(&sb,
				"  chunk %s in pack %016llx at offset %llu"
				" (%u bytes): ",
				hex, (unsigned long long)b->c.loc.pack,
				(unsigned long long)b->c.loc.off, b->c.loc.len);
		sb_addf(&sb, "%s", b->why ? b->why : "");
		if (b->fixed)
			sb_addf(&sb,
				"; relocated to pack %016llx at offset %llu"
				" (%u bytes)",
				(unsigned long long)b->to.pack,
				(unsigned long long)b->to.off, b->to.len);
		else if (repairing && b->uses == 0)
			sb_addf(&sb, "; no file uses it");
		else if (repairing)
			sb_addf(&sb, "; no good copy found");
		emit(v, &sb);
	}
	if (v->nbad > CHUNK_LINES_MAX)
		say(v, "  ... and %zu more", v->nbad - CHUNK_LINES_MAX);
	sb_free(&sb);
}

static void summarize(struct verify *v)
{
	const struct stash_verify_result *r = v->res;
	struct sbuf sb = { 0 };
	char read[32], decoded[32];

	if (r->ref_mismatches)
		sb_addf(&sb,
			"chunk refs: %llu of %llu chunks have a reference"
			" count that differs from the file-map rows (live"
			" and in snapshots) naming them: %s%s",
			(unsigned long long)r->ref_mismatches,
			(unsigned long long)r->chunks,
			v->ref_list.buf ? v->ref_list.buf : "",
			r->ref_mismatches > LISTED_MAX ? ", ..." : "");
	else
		sb_addf(&sb, "chunk refs: ok (%llu chunks)",
			(unsigned long long)r->chunks);
	stopped_early(&sb, v->chunk_err ? v->chunk_err : v->extent_err);
	emit(v, &sb);

	if (!r->dangling_extents && !r->stray_extents) {
		sb_addf(&sb, "extents: ok (%llu extents)",
			(unsigned long long)r->extents);
	} else {
		sb_addf(&sb, "extents:");
		if (r->dangling_extents)
			sb_addf(&sb,
				" %llu %s a chunk row that does not exist"
				" (files named below)%s",
				(unsigned long long)r->dangling_extents,
				plural(r->dangling_extents, "extent names",
				       "extents name"),
				r->stray_extents ? ";" : "");
		if (r->stray_extents)
			sb_addf(&sb, " %llu %s no regular file: %s%s",
				(unsigned long long)r->stray_extents,
				plural(r->stray_extents, "extent belongs to",
				       "extents belong to"),
				v->stray_list.buf ? v->stray_list.buf : "",
				v->stray_inodes > LISTED_MAX ? ", ..." : "");
	}
	stopped_early(&sb, v->extent_err);
	emit(v, &sb);

	if (r->bad_maps)
		sb_addf(&sb,
			"file maps: %llu %s not cover exactly [0, size)"
			" (named below)",
			(unsigned long long)r->bad_maps,
			plural(r->bad_maps, "file's extents do",
			       "files' extents do"));
	else
		sb_addf(&sb,
			"file maps: ok (%llu files, %llu more in snapshots)",
			(unsigned long long)r->files,
			(unsigned long long)r->snap_files);
	stopped_early(&sb, v->extent_err);
	emit(v, &sb);

	if (r->missing_chunks)
		sb_addf(&sb,
			"chunk locations: %llu of %llu chunks in use are"
			" missing from their pack files (listed below)",
			(unsigned long long)r->missing_chunks,
			(unsigned long long)r->chunks_in_use);
	else
		sb_addf(&sb,
			"chunk locations: ok (%llu chunks in use, %llu %s)",
			(unsigned long long)r->chunks_in_use,
			(unsigned long long)r->packs,
			plural(r->packs, "pack", "packs"));
	stopped_early(&sb, v->chunk_err);
	emit(v, &sb);

	human(r->bytes_read, read, sizeof(read));
	human(r->bytes_decoded, decoded, sizeof(decoded));
	if (!(v->flags & STASH_VERIFY_FULL))
		sb_addf(&sb, "chunk contents: not checked (--full reads and"
			     " authenticates every chunk)");
	else if (r->corrupt_chunks)
		sb_addf(&sb,
			"chunk contents: %llu of %llu chunks read are"
			" corrupt (listed below)",
			(unsigned long long)r->corrupt_chunks,
			(unsigned long long)r->chunks_read);
	else
		sb_addf(&sb,
			"chunk contents: ok (%llu chunks, %s read, %s"
			" decoded)",
			(unsigned long long)r->chunks_read, read, decoded);
	if (v->flags & STASH_VERIFY_FULL)
		stopped_early(&sb, v->chunk_err);
	emit(v, &sb);
	sb_free(&sb);
	summarize_chunks(v);
}

static void summarize_repair(struct verify *v)
{
	const struct stash_verify_result *r = v->res;
	uint64_t marked = 0;
	struct sbuf sb = { 0 };

	if (v->search_err)
		say(v, "repair: the search for good copies stopped early: %s",
		    strerror(-v->search_err));
	if (v->scan_tries >= SCAN_TRIES_MAX)
		say(v,
		    "repair: gave up guessing where chunks lie in packs"
		    " without a readable trailer after %u tries",
		    SCAN_TRIES_MAX);
	if (v->repair_err) {
		say(v, "repair: failed: %s; nothing was changed",
		    strerror(-v->repair_err));
		return;
	}
	if (!v->repair_done) {
		say(v, "repair: nothing to change");
		return;
	}
	for (size_t i = 0; i < v->nfiles; i++)
		marked += v->files[i].mark_now;
	sb_addf(&sb,
		"repair: relocated %llu %s, set the refs of %llu %s, marked"
		" %llu %s as damaged, removed %zu stale %s",
		(unsigned long long)r->relocated,
		plural(r->relocated, "chunk", "chunks"),
		(unsigned long long)r->refs_fixed,
		plural(r->refs_fixed, "chunk", "chunks"),
		(unsigned long long)marked, plural(marked, "file", "files"),
		v->nstale, plural(v->nstale, "mark", "marks"));
	if (v->trailers_bad)
		sb_addf(&sb, " (%llu %s without a readable trailer)",
			(unsigned long long)v->trailers_bad,
			plural(v->trailers_bad, "pack", "packs"));
	emit(v, &sb);
	sb_free(&sb);
}

static void summarize_marks(struct verify *v)
{
	if (v->marks_err)
		say(v, "damage marks: could not be read: %s",
		    strerror(-v->marks_err));
	if (!v->nstale || v->repair_done)
		return;
	say(v,
	    "damage marks: %zu %s marked as damaged but %s not any more"
	    " (verify --repair removes the %s)",
	    v->nstale, plural(v->nstale, "file is", "files are"),
	    plural(v->nstale, "is", "are"), plural(v->nstale, "mark", "marks"));
}

static void last_line(struct verify *v)
{
	const struct stash_verify_result *r = v->res;
	uint64_t left = r->problems - r->repaired;
	uint64_t lost = r->missing_chunks + r->corrupt_chunks;
	struct sbuf sb = { 0 };

	if (!r->problems) {
		say(v, "clean");
		return;
	}
	if (!left) {
		say(v, "repaired: %llu %s", (unsigned long long)r->problems,
		    plural(r->problems, "problem", "problems"));
		return;
	}
	sb_addf(&sb, "damaged: %llu %s", (unsigned long long)r->problems,
		plural(r->problems, "problem", "problems"));
	if (r->repaired)
		sb_addf(&sb, " (%llu repaired)",
			(unsigned long long)r->repaired);
	/* Only lost data left, and every file holding it is marked. */
	if (left <= lost && r->marked_files && !r->unmarked_files &&
	    r->damaged_files == r->marked_files)
		sb_addf(&sb, "; all in files marked as damaged (%llu)",
			(unsigned long long)r->marked_files);
	emit(v, &sb);
	sb_free(&sb);
}

static void release(struct verify *v)
{
	for (size_t i = 0; i < v->nfiles; i++) {
		free(v->files[i].map_why);
		free(v->files[i].ranges);
		free(v->files[i].mark);
	}
	for (size_t i = 0; i < v->nbad; i++)
		free(v->bad[i].why);
	free(v->files);
	free(v->slots);
	free(v->uses);
	free(v->packs);
	free(v->bad);
	free(v->by_id);
	free(v->ref_fixes);
	free(v->stale);
	free(v->sealed);
	free(v->plain);
	sb_free(&v->ref_list);
	sb_free(&v->stray_list);
	sb_free(&v->file_lines);
}

int stash_store_verify(struct stash_store *st,
		       const struct stash_verify_opts *opts,
		       struct stash_verify_result *out)
{
	struct verify v = {
		.st = st,
		.flags = opts->flags,
		.o = opts,
		.res = out,
	};
	struct stash_verify_result *r = out;
	bool repairing = opts->flags & STASH_VERIFY_REPAIR;
	int ret;

	memset(out, 0, sizeof(*out));
	check_catalog(&v);
	/* Rows read from a damaged catalog are no ground to change others
	 * on: report, repair nothing. */
	if (out->catalog_damaged && repairing) {
		repairing = false;
		v.flags &= ~(unsigned)STASH_VERIFY_REPAIR;
		v.repair_refused = true;
	}
	ret = v.oom ? -ENOMEM : check_maps(&v);
	if (!ret)
		ret = check_chunks(&v);
	if (!ret && repairing)
		ret = find_copies(&v);
	if (!ret)
		ret = attribute(&v);
	if (!ret)
		ret = read_marks(&v);
	if (!ret && repairing)
		ret = repair(&v);
	if (!ret) {
		r->incomplete = (v.chunk_err != 0) + (v.extent_err != 0) +
				(v.attrib_err != 0) + (v.marks_err != 0) +
				(v.repair_err != 0);
		r->problems = r->catalog_damaged + r->ref_mismatches +
			      r->dangling_extents + r->stray_extents +
			      r->bad_maps + r->missing_chunks +
			      r->corrupt_chunks + r->incomplete;
		summarize(&v);
		if (repairing)
			summarize_repair(&v);
		else if (v.repair_refused)
			say(&v, "repair: not attempted: the catalog itself is"
				" damaged (restore it from a backup)");
		summarize_marks(&v);
		ret = report_files(&v);
	}
	if (!ret && v.naming_err) {
		r->incomplete++;
		r->problems++;
	}
	if (!ret &&
	    (v.oom || v.ref_list.oom || v.stray_list.oom || v.file_lines.oom))
		ret = -ENOMEM;
	if (!ret)
		last_line(&v);
	release(&v);
	return ret;
}
