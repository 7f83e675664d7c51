/*
 * search.c - the .search virtual directory (see search.h).
 *
 * A lookup of .search/QUERY runs the query and keeps its matches as a
 * result set, numbered; the query directory's inode names that set, so a
 * listing stays the same from its first readdir to its last. The same
 * query looked up again within a second reuses the set (a path is looked
 * up again at every component); after that it runs again, so a listing
 * shows the index as it is. The newest RESULT_SETS sets are kept.
 */
#include "search.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util.h"

#define KIND_SHIFT 56
#define KIND_MASK ((UINT64_C(1) << KIND_SHIFT) - 1)
enum kind {
	K_FIXED = 0,   /* .search, README, .errors (and .backups) */
	K_QUERY = 1,   /* a query directory: the result set's number */
	K_RESULTS = 2, /* its .results.json */
	K_RECORD = 3,  /* a JSON Lines record: the index document */
	K_RECENT = 4,  /* a recent query as listed (never looked up) */
};
#define INO(kind, n) (FS_INO_VIRTUAL | (uint64_t)(kind) << KIND_SHIFT | (n))
#define INO_README INO(K_FIXED, 3)
#define INO_ERRORS INO(K_FIXED, 4)

#define RESULT_SETS 64
#define REUSE_NS 1000000000LL /* a set is reused for a second */
#define RECENT 20
#define ERRORS 50
#define RESULTS_NAME ".results.json"

static const char readme[] =
	"stashfs search\n"
	"==============\n"
	"\n"
	"  ls .search/QUERY/            the files that match, best first\n"
	"                               (ls -U keeps that order)\n"
	"  cat .search/QUERY/.results.json   the same for scripts: path,\n"
	"                               title, url, author, published_at,\n"
	"                               score, snippet (match between **)\n"
	"  getfattr -n user.stashfs.path .search/QUERY/NAME   its real path\n"
	"\n"
	"QUERY is SQLite FTS5 syntax plus fields and filters:\n"
	"  storage engine            both words\n"
	"  storage OR disk           either        (AND, OR, NOT, NEAR(a b, 5)\n"
	"  storage NOT disk          not disk       must be upper case)\n"
	"  \"merge trees\"             a phrase\n"
	"  stor*                     a prefix\n"
	"  author:smith  tag:news  url:example.com  lang:fa  title:x  "
	"content:x\n"
	"  area:articles             under a top-level folder\n"
	"  name:*.pdf                file name (glob, case-insensitive)\n"
	"  after:2024-01-01 before:2024-02-01   dates (published_at, or the\n"
	"                            file's mtime), after inclusive\n"
	"  limit:50                  at most 50 results (default 1000)\n"
	"A '/' cannot be part of a file name: write it %2F (and '%' as %25):\n"
	"  ls '.search/url:example.com%2Fnews/'\n"
	"Words are found case- and accent-insensitively, in any language;\n"
	"Chinese and Japanese are matched by pairs of characters.\n"
	"A query that does not parse fails with 'Invalid argument'; the\n"
	"reason is in .search/.errors. A match inside a JSON Lines batch is\n"
	"a read-only file NAME.L<line>.json holding that one record.\n";

struct entry {
	char name[STASH_NAME_MAX + 1];
	uint64_t ino; /* a live file, or INO(K_RECORD, doc) */
};

struct rset {
	uint64_t id;
	char *query;
	int64_t made; /* ns */
	struct entry *v;
	size_t n, cap;
	char *json; /* .results.json, made at first use */
};

struct fs_search {
	struct stash_store *st;
	pthread_mutex_t lock;		/* guards everything below */
	struct rset *sets[RESULT_SETS]; /* a ring, newest at next - 1 */
	size_t next;
	uint64_t next_id;
	char *recent[RECENT]; /* a ring of queries */
	size_t recent_next;
	char *errors[ERRORS]; /* a ring of "QUERY: reason" lines */
	size_t errors_next;
};

static enum kind kind_of(uint64_t ino)
{
	return (enum kind)((ino & ~FS_INO_VIRTUAL) >> KIND_SHIFT);
}

bool fs_search_owns(uint64_t ino)
{
	return (ino & FS_INO_VIRTUAL) &&
	       (kind_of(ino) != K_FIXED || ino == FS_INO_SEARCH ||
		ino == INO_README || ino == INO_ERRORS);
}

bool fs_search_lookup_only(uint64_t ino)
{
	return (ino & FS_INO_VIRTUAL) && kind_of(ino) == K_RECENT;
}

struct fs_search *fs_search_new(struct stash_store *st)
{
	struct fs_search *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->st = st;
	s->next_id = 1;
	pthread_mutex_init(&s->lock, NULL);
	return s;
}

static void rset_free(struct rset *r)
{
	if (!r)
		return;
	free(r->query);
	free(r->v);
	free(r->json);
	free(r);
}

void fs_search_free(struct fs_search *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < RESULT_SETS; i++)
		rset_free(s->sets[i]);
	for (size_t i = 0; i < RECENT; i++)
		free(s->recent[i]);
	for (size_t i = 0; i < ERRORS; i++)
		free(s->errors[i]);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* Keep str in a ring of n (the oldest goes). */
static void ring_put(char **ring, size_t n, size_t *next, char *str)
{
	free(ring[*next % n]);
	ring[*next % n] = str;
	(*next)++;
}

/* ---- result sets ---- */

/* Under s->lock. */
static struct rset *find_set(struct fs_search *s, uint64_t id)
{
	for (size_t i = 0; i < RESULT_SETS; i++)
		if (s->sets[i] && s->sets[i]->id == id)
			return s->sets[i];
	return NULL;
}

/* "name" as it is, or "base~N.ext" when taken (N = 2, 3, ...). */
static bool name_taken(const struct rset *r, const char *name)
{
	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->v[i].name, name))
			return true;
	return false;
}

static void unique_name(const struct rset *r, const char *want, char *out)
{
	const char *dot = strrchr(want, '.');
	size_t base = dot && dot != want ? (size_t)(dot - want) : strlen(want);

	snprintf(out, STASH_NAME_MAX + 1, "%s", want);
	for (int k = 2; name_taken(r, out) && k < 1000000; k++) {
		char suffix[16];
		size_t slen =
			(size_t)snprintf(suffix, sizeof(suffix), "~%d", k);
		size_t ext = strlen(want) - base;
		size_t keep = base;

		/* Shorten the base so that the name stays a valid one. */
		if (keep + slen + ext > STASH_NAME_MAX)
			keep = STASH_NAME_MAX - slen - ext;
		snprintf(out, STASH_NAME_MAX + 1, "%.*s%s%s", (int)keep, want,
			 suffix, want + base);
	}
}

static int add_hit(void *arg, const struct stash_search_hit *h)
{
	struct rset *r = arg;
	char want[STASH_NAME_MAX + 1];
	struct entry *e;

	if (r->n == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 64;
		struct entry *v = realloc(r->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		r->v = v;
		r->cap = cap;
	}
	e = &r->v[r->n];
	if (h->line) {
		/* A record: BATCH.L<line>.json, cut to fit a name. */
		char tail[32];
		size_t tlen =
			(size_t)snprintf(tail, sizeof(tail), ".L%llu.json",
					 (unsigned long long)h->line);

		snprintf(want, sizeof(want), "%.*s%s",
			 (int)(STASH_NAME_MAX - tlen), h->name, tail);
		e->ino = INO(K_RECORD, h->doc);
	} else {
		snprintf(want, sizeof(want), "%s", h->name);
		e->ino = h->ino;
	}
	unique_name(r, want, e->name);
	r->n++;
	return 0;
}

/* The result set of query, made now or reused; *id gets its number. */
static int run_query(struct fs_search *s, const char *query, uint64_t *id)
{
	int64_t now = stash_now_ns();
	struct rset *r;
	char err[256] = "";
	int ret;

	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < RESULT_SETS; i++) {
		r = s->sets[i];
		if (r && !strcmp(r->query, query) && now - r->made < REUSE_NS) {
			*id = r->id;
			pthread_mutex_unlock(&s->lock);
			return 0;
		}
	}
	pthread_mutex_unlock(&s->lock);

	r = calloc(1, sizeof(*r));
	if (!r || !(r->query = strdup(query))) {
		rset_free(r);
		return -ENOMEM;
	}
	ret = stash_store_search(s->st, query, add_hit, r, err, sizeof(err));
	if (ret) {
		rset_free(r);
		if (ret == -EINVAL) {
			char *line = NULL;

			stash_log(STASH_LOG_WARN, "search: %s: %s", query, err);
			if (asprintf(&line, "%s: %s\n", query, err) < 0)
				line = NULL;
			pthread_mutex_lock(&s->lock);
			if (line)
				ring_put(s->errors, ERRORS, &s->errors_next,
					 line);
			pthread_mutex_unlock(&s->lock);
		}
		return ret;
	}
	r->made = stash_now_ns();
	pthread_mutex_lock(&s->lock);
	r->id = s->next_id++;
	*id = r->id;
	rset_free(s->sets[s->next % RESULT_SETS]);
	s->sets[s->next % RESULT_SETS] = r;
	s->next++;
	/* A query already in the ring moves to the front. */
	for (size_t i = 0; i < RECENT; i++) {
		if (s->recent[i] && !strcmp(s->recent[i], query)) {
			free(s->recent[i]);
			s->recent[i] = NULL;
		}
	}
	{
		char *copy = strdup(query);

		if (copy)
			ring_put(s->recent, RECENT, &s->recent_next, copy);
	}
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* ---- attributes ---- */

/* Directories and files of this module look like the root's, read-only. */
static int virtual_attr(struct fs_search *s, uint64_t ino, uint32_t mode,
			uint64_t size, struct stash_attr *out)
{
	int ret = stash_store_getattr(s->st, STASH_ROOT_INO, out);

	if (ret)
		return ret;
	out->ino = ino;
	out->mode = mode;
	out->nlink = S_ISDIR(mode) ? 2 : 1;
	out->size = size;
	out->atime = out->mtime = out->ctime = stash_wall_ns();
	return 0;
}

static char *errors_text(struct fs_search *s)
{
	size_t len = 0;
	char *text;

	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < ERRORS; i++)
		if (s->errors[(s->errors_next + i) % ERRORS])
			len += strlen(s->errors[(s->errors_next + i) % ERRORS]);
	text = calloc(1, len + 1);
	len = 0;
	for (size_t i = 0; text && i < ERRORS; i++) {
		const char *line = s->errors[(s->errors_next + i) % ERRORS];
		size_t n = line ? strlen(line) : 0;

		memcpy(text + len, line ? line : "", n);
		len += n;
	}
	pthread_mutex_unlock(&s->lock);
	return text;
}

/* The .results.json of set id, made on first use (malloc'd copy). */
static int results_json(struct fs_search *s, uint64_t id, char **out)
{
	char *query = NULL, *json = NULL;
	char err[256];
	struct rset *r;
	int ret = 0;

	pthread_mutex_lock(&s->lock);
	r = find_set(s, id);
	if (!r)
		ret = -ENOENT;
	else if (r->json)
		json = strdup(r->json);
	else
		query = strdup(r->query);
	pthread_mutex_unlock(&s->lock);
	if (ret || json) {
		*out = json;
		return ret ? ret : 0;
	}
	if (!query)
		return -ENOMEM;
	ret = stash_store_search_json(s->st, query, &json, err, sizeof(err));
	free(query);
	if (ret)
		return ret;
	pthread_mutex_lock(&s->lock);
	r = find_set(s, id);
	if (r && !r->json)
		r->json = strdup(json);
	pthread_mutex_unlock(&s->lock);
	*out = json;
	return 0;
}

/* A record's file and bytes, or -ENOENT once its batch changed. */
static int record_attr(struct fs_search *s, uint64_t ino,
		       struct stash_attr *out)
{
	uint64_t file, line, off, len;
	int ret = stash_store_doc(s->st, ino & KIND_MASK, &file, &line, &off,
				  &len);

	if (!ret)
		ret = stash_store_getattr(s->st, file, out);
	if (ret)
		return ret;
	out->ino = ino;
	out->mode = S_IFREG | 0444;
	out->nlink = 1;
	out->size = len + 1; /* the line and its newline */
	return 0;
}

int fs_search_getattr(struct fs_search *s, uint64_t ino, struct stash_attr *out)
{
	char *text;
	int ret;

	switch (kind_of(ino)) {
	case K_QUERY:
		pthread_mutex_lock(&s->lock);
		ret = find_set(s, ino & KIND_MASK) ? 0 : -ENOENT;
		pthread_mutex_unlock(&s->lock);
		return ret ? ret : virtual_attr(s, ino, S_IFDIR | 0555, 0, out);
	case K_RESULTS:
		ret = results_json(s, ino & KIND_MASK, &text);
		if (ret)
			return ret;
		ret = virtual_attr(s, ino, S_IFREG | 0444, strlen(text), out);
		free(text);
		return ret;
	case K_RECORD:
		return record_attr(s, ino, out);
	default:
		break;
	}
	if (ino == FS_INO_SEARCH)
		return virtual_attr(s, ino, S_IFDIR | 0555, 0, out);
	if (ino == INO_README)
		return virtual_attr(s, ino, S_IFREG | 0444, strlen(readme),
				    out);
	if (ino == INO_ERRORS) {
		text = errors_text(s);
		if (!text)
			return -ENOMEM;
		ret = virtual_attr(s, ino, S_IFREG | 0444, strlen(text), out);
		free(text);
		return ret;
	}
	return -ENOENT;
}

int fs_search_lookup(struct fs_search *s, uint64_t parent, const char *name,
		     struct stash_attr *out)
{
	uint64_t id, ino = 0;
	int ret;

	if (parent == FS_INO_SEARCH) {
		if (!strcmp(name, "README"))
			return fs_search_getattr(s, INO_README, out);
		if (!strcmp(name, ".errors"))
			return fs_search_getattr(s, INO_ERRORS, out);
		ret = run_query(s, name, &id);
		return ret ? ret : fs_search_getattr(s, INO(K_QUERY, id), out);
	}
	if (kind_of(parent) != K_QUERY)
		return -ENOENT;
	id = parent & KIND_MASK;
	if (!strcmp(name, RESULTS_NAME))
		return fs_search_getattr(s, INO(K_RESULTS, id), out);
	pthread_mutex_lock(&s->lock);
	{
		struct rset *r = find_set(s, id);

		for (size_t i = 0; r && i < r->n; i++) {
			if (!strcmp(r->v[i].name, name)) {
				ino = r->v[i].ino;
				break;
			}
		}
	}
	pthread_mutex_unlock(&s->lock);
	if (!ino)
		return -ENOENT;
	if (ino & FS_INO_VIRTUAL)
		return record_attr(s, ino, out);
	return stash_store_getattr(s->st, ino, out);
}

/* ---- listings ---- */

static int list_search(struct fs_search *s, uint64_t off,
		       stash_cat_dirent_fn fn, void *arg)
{
	char *names[RECENT + 2] = { "README", ".errors" };
	uint64_t inos[RECENT + 2] = { INO_README, INO_ERRORS };
	size_t n = 2;
	int ret = 0;

	pthread_mutex_lock(&s->lock);
	/* Newest first. */
	for (size_t i = 1; i <= RECENT; i++) {
		char *q = s->recent[(s->recent_next + RECENT - i) % RECENT];

		if (q && (names[n] = strdup(q))) {
			inos[n] = INO(K_RECENT, n);
			n++;
		}
	}
	pthread_mutex_unlock(&s->lock);
	for (size_t i = off; !ret && i < n; i++) {
		struct stash_attr a;

		if (inos[i] == INO_README || inos[i] == INO_ERRORS)
			ret = fs_search_getattr(s, inos[i], &a);
		else
			ret = virtual_attr(s, inos[i], S_IFDIR | 0555, 0, &a);
		if (!ret && fn(arg, names[i], &a, i + 1))
			break;
	}
	for (size_t i = 2; i < n; i++)
		free(names[i]);
	return ret;
}

static int list_query(struct fs_search *s, uint64_t id, uint64_t off,
		      stash_cat_dirent_fn fn, void *arg)
{
	struct entry *v = NULL;
	size_t n = 0;
	struct rset *r;
	int ret = 0;

	/* A copy, so that attributes are read without the lock. */
	pthread_mutex_lock(&s->lock);
	r = find_set(s, id);
	if (!r) {
		pthread_mutex_unlock(&s->lock);
		return -ENOENT;
	}
	n = r->n;
	if (n && (v = malloc(n * sizeof(*v))))
		memcpy(v, r->v, n * sizeof(*v));
	pthread_mutex_unlock(&s->lock);
	if (n && !v)
		return -ENOMEM;
	/* Cookie 1 is .results.json, k + 2 the k-th match. */
	if (off == 0) {
		struct stash_attr a;

		ret = fs_search_getattr(s, INO(K_RESULTS, id), &a);
		if (!ret && fn(arg, RESULTS_NAME, &a, 1))
			off = UINT64_MAX;
		else
			off = 1;
	}
	for (size_t i = off - 1; !ret && off != UINT64_MAX && i < n; i++) {
		struct stash_attr a;
		int err = v[i].ino & FS_INO_VIRTUAL
				  ? record_attr(s, v[i].ino, &a)
				  : stash_store_getattr(s->st, v[i].ino, &a);

		if (err == -ENOENT)
			continue; /* changed since the query ran */
		ret = err;
		if (!ret && fn(arg, v[i].name, &a, i + 2))
			break;
	}
	free(v);
	return ret;
}

int fs_search_readdir(struct fs_search *s, uint64_t ino, uint64_t off,
		      stash_cat_dirent_fn fn, void *arg)
{
	if (ino == FS_INO_SEARCH)
		return list_search(s, off, fn, arg);
	if (kind_of(ino) == K_QUERY)
		return list_query(s, ino & KIND_MASK, off, fn, arg);
	return -ENOTDIR;
}

/* ---- file contents ---- */

static int record_text(struct fs_search *s, uint64_t ino, char **out,
		       size_t *len)
{
	uint64_t file, line, off, rlen;
	struct stash_file *f;
	char *buf;
	ssize_t got;
	int ret = stash_store_doc(s->st, ino & KIND_MASK, &file, &line, &off,
				  &rlen);

	if (ret)
		return ret;
	buf = malloc(rlen + 1);
	if (!buf)
		return -ENOMEM;
	ret = stash_file_open(s->st, file, &f);
	if (ret) {
		free(buf);
		return ret;
	}
	got = stash_file_read(s->st, f, buf, rlen, off);
	stash_file_release(s->st, f);
	if (got < 0 || (uint64_t)got != rlen) {
		free(buf);
		return got < 0 ? (int)got : -EIO;
	}
	buf[rlen] = '\n';
	*out = buf;
	*len = rlen + 1;
	return 0;
}

int fs_search_open(struct fs_search *s, uint64_t ino, struct fs_vfile **out)
{
	struct fs_vfile *vf = calloc(1, sizeof(*vf));
	int ret = 0;

	if (!vf)
		return -ENOMEM;
	if (ino == INO_README) {
		vf->data = strdup(readme);
		ret = vf->data ? 0 : -ENOMEM;
	} else if (ino == INO_ERRORS) {
		vf->data = errors_text(s);
		ret = vf->data ? 0 : -ENOMEM;
	} else if (kind_of(ino) == K_RESULTS) {
		ret = results_json(s, ino & KIND_MASK, &vf->data);
	} else if (kind_of(ino) == K_RECORD) {
		ret = record_text(s, ino, &vf->data, &vf->len);
	} else {
		ret = -EISDIR;
	}
	if (!ret && !vf->len)
		vf->len = strlen(vf->data);
	if (ret) {
		fs_vfile_free(vf);
		return ret;
	}
	*out = vf;
	return 0;
}

void fs_vfile_free(struct fs_vfile *vf)
{
	if (!vf)
		return;
	free(vf->data);
	free(vf);
}

/* ---- xattrs ---- */

static ssize_t reply_value(const char *value, char *buf, size_t size)
{
	size_t len = strlen(value);

	if (size == 0)
		return (ssize_t)len;
	if (len > size)
		return -ERANGE;
	memcpy(buf, value, len);
	return (ssize_t)len;
}

ssize_t fs_search_getxattr(struct fs_search *s, uint64_t ino, const char *name,
			   char *buf, size_t size)
{
	uint64_t file = ino, line = 0, off, len;
	char value[4096];
	int ret;

	if (strcmp(name, "user.stashfs.path") &&
	    strcmp(name, "user.stashfs.line"))
		return -ENODATA;
	if ((ino & FS_INO_VIRTUAL) && kind_of(ino) == K_RECORD) {
		ret = stash_store_doc(s->st, ino & KIND_MASK, &file, &line,
				      &off, &len);
		if (ret)
			return ret;
	} else if ((ino & FS_INO_VIRTUAL) || stash_ino_snap(ino)) {
		return -ENODATA;
	}
	if (!strcmp(name, "user.stashfs.line")) {
		if (!line)
			return -ENODATA;
		snprintf(value, sizeof(value), "%llu",
			 (unsigned long long)line);
		return reply_value(value, buf, size);
	}
	ret = stash_store_path(s->st, file, value, sizeof(value));
	return ret ? ret : reply_value(value, buf, size);
}
