/*
 * verify.c - check a store from end to end and report what is wrong in
 * terms a person can act on: which check failed, which chunks are
 * damaged, and which files (by path) that damage reaches.
 *
 * Checks: the catalog's own integrity (PRAGMA integrity_check); each
 * chunk's refs against the extents naming it; extents that name no chunk
 * row or no regular file; each regular file's map tiling [0, size)
 * exactly; each chunk in use lying inside an existing pack file; and with
 * STASH_VERIFY_FULL each chunk in use read, authenticated, decoded and
 * hashed back to its id.
 *
 * It changes nothing: no repair, no cache (chunks are read from their
 * packs). The catalog lock is held around catalog calls only; chunk rows
 * are fetched in batches so that pack reads happen without it.
 */
#include "verify.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

/* A damaged inode: what is wrong with its data or its map. */
struct bad_file {
	uint64_t ino;	    /* inode number */
	uint64_t chunks;    /* uses of damaged chunks in its map */
	uint64_t bytes;	    /* bytes those uses cover */
	uint64_t first_off; /* offset of the first of them */
	char *map_why;	    /* first problem of its map, or NULL (owned) */
};

/* A directory entry naming an inode. */
struct name_ref {
	uint64_t parent;	       /* directory holding it */
	char name[STASH_NAME_MAX + 1]; /* NUL-terminated */
};

struct verify {
	struct stash_store *st;
	unsigned flags; /* STASH_VERIFY_* */
	void (*report)(void *arg, const char *line);
	void *arg;
	struct stash_verify_result *res;
	bool oom; /* memory ran out: the run stops with -ENOMEM */

	/* chunk scan */
	struct pack_info *packs; /* sorted by pack id */
	size_t npacks, packs_cap;
	int64_t *bad_rows; /* chunks rows of damaged chunks */
	size_t nbad, bad_cap;
	struct sbuf chunk_lines; /* the first CHUNK_LINES_MAX, one per line */
	struct sbuf ref_list;	 /* the first LISTED_MAX mismatched refs */
	int chunk_err;		 /* why the chunk scan stopped early */
	uint8_t *sealed, *plain; /* read buffers (full) */
	size_t sealed_cap, plain_cap;

	/* extent scan */
	bool in_file;		/* cur_* describe the inode being scanned */
	uint64_t cur_ino;	/* its number */
	bool cur_reg;		/* it is a regular file */
	int64_t cur_size;	/* its size */
	int64_t cur_next;	/* where its next extent must start */
	bool cur_broken;	/* its map failed already */
	uint64_t stray_inodes;	/* inodes with stray extents */
	struct sbuf stray_list; /* the first LISTED_MAX of them */
	int extent_err;		/* why the extent scan stopped early */

	/* damaged files, with an ino -> index + 1 hash table */
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
	else if (v->report)
		v->report(v->arg, sb->buf ? sb->buf : "");
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
		if (v->report)
			v->report(v->arg, line);
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

/* ---- damaged files ---- */

static size_t ino_hash(uint64_t ino, size_t nslots)
{
	return (size_t)((ino * 0x9E3779B97F4A7C15ull) >> 17) & (nslots - 1);
}

static int rehash(struct verify *v)
{
	size_t n = v->nslots ? 2 * v->nslots : 256;
	size_t *slots = calloc(n, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < v->nfiles; i++) {
		size_t h = ino_hash(v->files[i].ino, n);

		while (slots[h])
			h = (h + 1) & (n - 1);
		slots[h] = i + 1;
	}
	free(v->slots);
	v->slots = slots;
	v->nslots = n;
	return 0;
}

/* The damaged-file record of ino, made if new: its index, or -ENOMEM. */
static ssize_t file_get(struct verify *v, uint64_t ino)
{
	size_t h;

	if (v->nslots) {
		for (h = ino_hash(ino, v->nslots); v->slots[h];
		     h = (h + 1) & (v->nslots - 1))
			if (v->files[v->slots[h] - 1].ino == ino)
				return (ssize_t)(v->slots[h] - 1);
	}
	if (v->nfiles == v->files_cap) {
		size_t cap = v->files_cap ? 2 * v->files_cap : 64;
		struct bad_file *p = realloc(v->files, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		v->files = p;
		v->files_cap = cap;
	}
	if (2 * (v->nfiles + 1) > v->nslots && rehash(v))
		return -ENOMEM;
	v->files[v->nfiles] = (struct bad_file){ .ino = ino };
	for (h = ino_hash(ino, v->nslots); v->slots[h];
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

/* ---- checks 2, 5, 6: chunks ---- */

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
	if (v->npacks == v->packs_cap) {
		size_t cap = v->packs_cap ? 2 * v->packs_cap : 64;

		p = realloc(v->packs, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		v->packs = p;
		v->packs_cap = cap;
	}
	p = &v->packs[lo];
	memmove(p + 1, p, (v->npacks - lo) * sizeof(*p));
	v->npacks++;
	v->res->packs++;
	*p = (struct pack_info){ .pack = pack };
	p->err = stash_packs_size(v->st->packs, pack, &p->size);
	*out = p;
	return 0;
}

/* Note a damaged chunk, fmt saying what is wrong: 1, or -ENOMEM. */
static int bad_chunk(struct verify *v, const struct stash_cat_chunk *c,
		     const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int bad_chunk(struct verify *v, const struct stash_cat_chunk *c,
		     const char *fmt, ...)
{
	char hex[2 * SHORT_ID_BYTES + 1];
	va_list ap;

	if (v->nbad == v->bad_cap) {
		size_t cap = v->bad_cap ? 2 * v->bad_cap : 64;
		int64_t *p = realloc(v->bad_rows, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		v->bad_rows = p;
		v->bad_cap = cap;
	}
	v->bad_rows[v->nbad++] = c->row;
	if (v->nbad > CHUNK_LINES_MAX)
		return 1;
	short_id(c->id, hex);
	if (c->malformed)
		sb_addf(&v->chunk_lines,
			"  chunk row %lld (id %s): ", (long long)c->row, hex);
	else
		sb_addf(&v->chunk_lines,
			"  chunk %s in pack %016llx at offset %llu"
			" (%u bytes): ",
			hex, (unsigned long long)c->loc.pack,
			(unsigned long long)c->loc.off, c->loc.len);
	va_start(ap, fmt);
	sb_vaddf(&v->chunk_lines, fmt, ap);
	va_end(ap);
	sb_addf(&v->chunk_lines, "\n");
	return v->chunk_lines.oom ? -ENOMEM : 1;
}

/* Check 5: is the chunk where the catalog says? 1 if not, 0, -errno. */
static int check_location(struct verify *v, const struct stash_cat_chunk *c)
{
	const struct pack_info *p;
	int ret;

	if (c->malformed)
		return bad_chunk(v, c,
				 "its catalog row holds impossible"
				 " values");
	if (c->raw_len > STASH_CHUNK_MAX_LIMIT ||
	    c->loc.len <= STASH_CHUNK_OVERHEAD ||
	    c->loc.len > stash_chunk_sealed_max(c->raw_len))
		return bad_chunk(v, c,
				 "a sealed length of %u bytes is impossible"
				 " for %u bytes of data",
				 c->loc.len, c->raw_len);
	if (c->loc.off < STASH_PACK_HDR_LEN)
		return bad_chunk(v, c, "the offset lies in the pack header");
	ret = pack_lookup(v, c->loc.pack, &p);
	if (ret)
		return ret;
	if (p->err == -ENOENT)
		return bad_chunk(v, c, "the pack file is missing");
	if (p->err)
		return bad_chunk(v, c, "the pack file cannot be examined: %s",
				 strerror(-p->err));
	if (c->loc.off > p->size || c->loc.len > p->size - c->loc.off)
		return bad_chunk(v, c,
				 "the pack file ends at %llu, before the"
				 " chunk does",
				 (unsigned long long)p->size);
	return 0;
}

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

/* Check 6: read, open and hash the chunk. 1 if damaged, 0, -ENOMEM. */
static int check_content(struct verify *v, const struct stash_cat_chunk *c)
{
	const struct stash_keys *k = &v->st->keys;
	uint8_t id[STASH_ID_LEN];
	int ret;

	if (reserve(&v->sealed, &v->sealed_cap, c->loc.len) ||
	    reserve(&v->plain, &v->plain_cap, c->raw_len))
		return -ENOMEM;
	v->res->chunks_read++;
	ret = stash_packs_read(v->st->packs, &c->loc, v->sealed);
	if (ret == -EBADMSG)
		return bad_chunk(v, c, "the pack file ends inside it");
	if (ret == -ENOMEM)
		return ret;
	if (ret)
		return bad_chunk(v, c, "cannot be read: %s", strerror(-ret));
	v->res->bytes_read += c->loc.len;
	ret = stash_chunk_decode(k->chunk_data, k->key_id, c->id, v->sealed,
				 c->loc.len, v->plain, c->raw_len);
	if (ret == -ENOMEM)
		return ret;
	if (ret)
		return bad_chunk(v, c,
				 "corrupt: it does not authenticate or"
				 " decode");
	ret = stash_crypto_hmac(k->chunk_id, v->plain, c->raw_len, id);
	if (ret)
		return bad_chunk(v, c, "cannot be hashed: %s", strerror(-ret));
	if (memcmp(id, c->id, STASH_ID_LEN))
		return bad_chunk(v, c,
				 "corrupt: its data does not match its"
				 " id");
	v->res->bytes_decoded += c->raw_len;
	return 0;
}

static int check_one_chunk(struct verify *v, const struct stash_cat_chunk *c)
{
	struct stash_verify_result *r = v->res;
	int ret;

	r->chunks++;
	if (c->refs < 0 || (uint64_t)c->refs != c->uses) {
		char hex[2 * SHORT_ID_BYTES + 1];

		if (r->ref_mismatches++ < LISTED_MAX) {
			short_id(c->id, hex);
			sb_addf(&v->ref_list, "%s%s (refs %lld, %llu %s)",
				r->ref_mismatches > 1 ? ", " : "", hex,
				(long long)c->refs, (unsigned long long)c->uses,
				plural(c->uses, "extent", "extents"));
		}
	}
	if (c->refs <= 0 && c->uses == 0)
		return 0; /* dead: kept for gc, never read */
	r->chunks_in_use++;
	ret = check_location(v, c);
	if (ret > 0)
		r->missing_chunks++;
	if (ret || !(v->flags & STASH_VERIFY_FULL))
		return ret < 0 ? ret : 0;
	ret = check_content(v, c);
	if (ret > 0)
		r->corrupt_chunks++;
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
	if (n < 0 && n != -ENOMEM)
		v->chunk_err = (int)n;
	else if (n == -ENOMEM)
		ret = -ENOMEM;
	free(batch);
	return ret;
}

/* ---- checks 3 and 4: extents and file maps ---- */

/* The extents of one inode are over: does its map end at its size? */
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

/* The first problem of the map of the inode being scanned. */
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

static int on_extent(void *arg, const struct stash_cat_extent_row *r)
{
	struct verify *v = arg;
	int ret;

	v->res->extents++;
	if (!v->in_file || r->ino != v->cur_ino) {
		ret = end_file(v);
		if (ret)
			return ret;
		v->in_file = true;
		v->cur_ino = r->ino;
		v->cur_reg = r->ino_found && S_ISREG(r->mode);
		v->cur_size = r->size;
		v->cur_next = 0;
		v->cur_broken = false;
		if (v->cur_reg) {
			v->res->files++;
		} else if (v->stray_inodes++ < LISTED_MAX) {
			sb_addf(&v->stray_list, "%sinode %llu (%s)",
				v->stray_inodes > 1 ? ", " : "",
				(unsigned long long)r->ino,
				kind_of(r->ino_found, r->mode));
		}
	}
	if (!v->cur_reg) {
		v->res->stray_extents++;
		return 0;
	}
	if (r->chunk != 0 && !r->chunk_found) {
		v->res->dangling_extents++;
		ret = map_problem(v, r->ino,
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

static int on_unmapped(void *arg, uint64_t ino, int64_t size)
{
	struct verify *v = arg;

	v->res->bad_maps++;
	return map_problem(v, ino, "it has no extents for its %lld bytes",
			   (long long)size);
}

static int check_extents(struct verify *v)
{
	int ret;

	pthread_mutex_lock(&v->st->cat_lock);
	ret = stash_cat_scan_extents(v->st->cat, on_extent, v);
	if (!ret)
		ret = end_file(v);
	if (!ret)
		ret = stash_cat_unmapped_files(v->st->cat, on_unmapped, v);
	pthread_mutex_unlock(&v->st->cat_lock);
	if (ret == -ENOMEM)
		return ret;
	v->extent_err = ret;
	return 0;
}

/* ---- naming damaged files ---- */

static int on_user(void *arg, uint64_t ino, uint64_t off, uint64_t len)
{
	struct verify *v = arg;
	ssize_t i = file_get(v, ino);
	struct bad_file *f;

	if (i < 0)
		return (int)i;
	f = &v->files[i];
	if (f->chunks == 0 || off < f->first_off)
		f->first_off = off;
	f->chunks++;
	f->bytes += len;
	return 0;
}

struct names {
	struct name_ref *refs;
	size_t n, cap;
	bool first_only; /* stop after the first entry */
};

static int on_name(void *arg, uint64_t parent, const char *name)
{
	struct names *ns = arg;

	if (ns->n == ns->cap) {
		size_t cap = ns->cap ? 2 * ns->cap : 4;
		struct name_ref *p = realloc(ns->refs, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		ns->refs = p;
		ns->cap = cap;
	}
	ns->refs[ns->n].parent = parent;
	snprintf(ns->refs[ns->n].name, sizeof(ns->refs[ns->n].name), "%s",
		 name);
	ns->n++;
	return ns->first_only;
}

/*
 * The path of entry name in directory dir, from the root, into sb. A
 * directory without an entry (or a loop) ends the walk with a note in
 * place of the missing part. Catalog lock held.
 */
static int add_path(struct verify *v, struct sbuf *sb, uint64_t dir,
		    const char *name)
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
		ret = stash_cat_names_of(v->st->cat, dir, on_name, &up);
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
static void add_reasons(struct sbuf *sb, const struct bad_file *f)
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
}

/* One line per name of each damaged inode into v->file_lines. Catalog
 * lock held. */
static int name_files(struct verify *v)
{
	struct sbuf *line = &v->file_lines;
	struct names ns = { 0 };
	int ret = 0;

	for (size_t i = 0; i < v->nfiles && !ret; i++) {
		const struct bad_file *f = &v->files[i];

		ns.n = 0;
		ret = stash_cat_names_of(v->st->cat, f->ino, on_name, &ns);
		if (ret)
			break;
		if (ns.n == 0) {
			sb_addf(line,
				"  inode %llu (unlinked: no name, but"
				" still in the catalog)",
				(unsigned long long)f->ino);
			add_reasons(line, f);
			sb_addf(line, "\n");
		}
		for (size_t j = 0; j < ns.n && !ret; j++) {
			sb_addf(line, "  ");
			ret = add_path(v, line, ns.refs[j].parent,
				       ns.refs[j].name);
			if (ns.n > 1)
				sb_addf(line,
					" (inode %llu, one of its %zu"
					" names)",
					(unsigned long long)f->ino, ns.n);
			add_reasons(line, f);
			sb_addf(line, "\n");
		}
	}
	free(ns.refs);
	return ret;
}

static int report_files(struct verify *v)
{
	int ret = 0;

	pthread_mutex_lock(&v->st->cat_lock);
	for (size_t i = 0; i < v->nbad && !ret; i++)
		ret = stash_cat_chunk_users(v->st->cat, v->bad_rows[i], on_user,
					    v);
	if (!ret)
		ret = name_files(v);
	pthread_mutex_unlock(&v->st->cat_lock);
	if (ret == -ENOMEM)
		return ret;
	v->res->damaged_files = v->nfiles;
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

static void summarize(struct verify *v)
{
	const struct stash_verify_result *r = v->res;
	struct sbuf sb = { 0 };
	char read[32], decoded[32];

	if (r->ref_mismatches)
		sb_addf(&sb,
			"chunk refs: %llu of %llu chunks have a reference"
			" count that differs from the extents naming them:"
			" %s%s",
			(unsigned long long)r->ref_mismatches,
			(unsigned long long)r->chunks,
			v->ref_list.buf ? v->ref_list.buf : "",
			r->ref_mismatches > LISTED_MAX ? ", ..." : "");
	else
		sb_addf(&sb, "chunk refs: ok (%llu chunks)",
			(unsigned long long)r->chunks);
	stopped_early(&sb, v->chunk_err);
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
		sb_addf(&sb, "file maps: ok (%llu files)",
			(unsigned long long)r->files);
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

	if (v->nbad) {
		say(v, "damaged chunks (%zu%s):", v->nbad,
		    v->nbad > CHUNK_LINES_MAX ? ", the first ones" : "");
		emit_lines(v, &v->chunk_lines);
		if (v->nbad > CHUNK_LINES_MAX)
			say(v, "  ... and %zu more", v->nbad - CHUNK_LINES_MAX);
	}
}

static void release(struct verify *v)
{
	for (size_t i = 0; i < v->nfiles; i++)
		free(v->files[i].map_why);
	free(v->files);
	free(v->slots);
	free(v->packs);
	free(v->bad_rows);
	free(v->sealed);
	free(v->plain);
	sb_free(&v->chunk_lines);
	sb_free(&v->ref_list);
	sb_free(&v->stray_list);
	sb_free(&v->file_lines);
}

int stash_store_verify(struct stash_store *st, unsigned flags,
		       void (*report)(void *arg, const char *line), void *arg,
		       struct stash_verify_result *out)
{
	struct verify v = {
		.st = st,
		.flags = flags,
		.report = report,
		.arg = arg,
		.res = out,
	};
	struct stash_verify_result *r = out;
	int ret;

	memset(out, 0, sizeof(*out));
	check_catalog(&v);
	ret = v.oom ? -ENOMEM : check_chunks(&v);
	if (!ret)
		ret = check_extents(&v);
	if (!ret) {
		summarize(&v);
		ret = report_files(&v);
	}
	if (!ret && (v.oom || v.ref_list.oom || v.stray_list.oom))
		ret = -ENOMEM;
	if (!ret) {
		r->incomplete = (v.chunk_err != 0) + (v.extent_err != 0) +
				(v.naming_err != 0);
		r->problems = r->catalog_damaged + r->ref_mismatches +
			      r->dangling_extents + r->stray_extents +
			      r->bad_maps + r->missing_chunks +
			      r->corrupt_chunks + r->incomplete;
		if (r->problems)
			say(&v, "damaged: %llu %s",
			    (unsigned long long)r->problems,
			    plural(r->problems, "problem", "problems"));
		else
			say(&v, "clean");
	}
	release(&v);
	return ret;
}
