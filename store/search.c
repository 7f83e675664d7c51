/*
 * search.c - queries over the full-text index for the filesystem and the
 * CLI: parse (query.c), wait for the indexer, run (catalog_search.c), and
 * apply the filters that need the tree (area:, name:) before the limit.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "article.h"
#include "catalog_search.h"
#include "query.h"
#include "store_int.h"

/* How long a search waits for the indexer to catch up. */
#define INDEX_WAIT_MS 10000

struct found {
	struct stash_search_hit hit;
	char name[STASH_NAME_MAX + 1];
	char area[STASH_NAME_MAX + 1];
	char *strings[5]; /* title, url, author, tags, lang */
};

struct collect {
	struct stash_cat *cat;
	const struct stash_query *q;
	struct found *v;
	size_t n, cap;
	int error;
};

static bool area_ok(const struct stash_query *q, const char *area)
{
	if (!q->n_areas)
		return true;
	for (size_t i = 0; i < q->n_areas; i++)
		if (!strcmp(q->areas[i], area))
			return true;
	return false;
}

static int collect_hit(void *arg, const struct stash_hit *h)
{
	struct collect *c = arg;
	const char *strings[5] = { h->title, h->url, h->author, h->tags,
				   h->lang };
	struct found *f;

	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 64;
		struct found *v = realloc(c->v, cap * sizeof(*v));

		if (!v) {
			c->error = -ENOMEM;
			return 1;
		}
		c->v = v;
		c->cap = cap;
	}
	f = &c->v[c->n];
	memset(f, 0, sizeof(*f));
	c->error = stash_cat_name_area(c->cat, h->ino, f->name, f->area);
	if (c->error)
		return 1;
	/* Unlinked meanwhile, or filtered out by the tree. */
	if (!f->name[0] || !area_ok(c->q, f->area) ||
	    !stash_query_name_match(c->q, f->name))
		return 0;
	for (size_t i = 0; i < STASH_ARRAY_SIZE(strings); i++) {
		if (strings[i] && !(f->strings[i] = strdup(strings[i]))) {
			c->error = -ENOMEM;
			c->n++; /* so that what was copied is freed */
			return 1;
		}
	}
	f->hit = (struct stash_search_hit){
		.doc = h->doc,
		.ino = h->ino,
		.line = h->line,
		.off = h->off,
		.len = h->len,
		.score = h->score,
		.date = h->date,
		.has_date = h->has_date,
	};
	c->n++;
	return c->n >= c->q->limit;
}

int stash_store_search(struct stash_store *st, const char *query,
		       int (*fn)(void *arg, const struct stash_search_hit *h),
		       void *arg, char *err, size_t errlen)
{
	struct stash_query *q = NULL;
	struct collect c = { 0 };
	bool stop;
	int ret = stash_query_parse(query, &q, err, errlen);

	if (ret)
		return ret;
	if (st->index_running &&
	    stash_index_wait(st, INDEX_WAIT_MS) == -ETIMEDOUT)
		stash_log(STASH_LOG_WARN, "search: the index is still catching"
					  " up; results may be incomplete");
	c.q = q;
	c.cat = st->cat;
	pthread_mutex_lock(&st->cat_lock);
	ret = stash_cat_search(st->cat, q, collect_hit, &c, err, errlen);
	pthread_mutex_unlock(&st->cat_lock);
	if (!ret)
		ret = c.error;
	stop = ret != 0;
	for (size_t i = 0; i < c.n && !stop; i++) {
		struct found *f = &c.v[i];

		f->hit.name = f->name;
		f->hit.area = f->area;
		f->hit.title = f->strings[0];
		f->hit.url = f->strings[1];
		f->hit.author = f->strings[2];
		f->hit.tags = f->strings[3];
		f->hit.lang = f->strings[4];
		stop = fn(arg, &f->hit) != 0;
	}
	for (size_t i = 0; i < c.n; i++)
		for (size_t k = 0; k < STASH_ARRAY_SIZE(c.v[i].strings); k++)
			free(c.v[i].strings[k]);
	free(c.v);
	stash_query_free(q);
	return ret;
}

/* ---- paths, documents, reindexing ---- */

struct up {
	uint64_t parent;
	char name[STASH_NAME_MAX + 1];
};

static int first_entry(void *arg, uint64_t parent, const char *name)
{
	struct up *u = arg;

	u->parent = parent;
	snprintf(u->name, sizeof(u->name), "%s", name);
	return 1;
}

int stash_store_path(struct stash_store *st, uint64_t ino, char *buf,
		     size_t size)
{
	size_t at = size;
	int ret = 0, depth = 0;

	if (size == 0)
		return -ERANGE;
	buf[--at] = '\0';
	pthread_mutex_lock(&st->cat_lock);
	/* Build from the end: each step puts "/name" before what is there. */
	while (ino != STASH_ROOT_INO && depth++ < 4096) {
		struct up u;
		size_t len;

		ret = stash_cat_names_of(st->cat, ino, first_entry, &u);
		if (ret != 1) {
			ret = ret ? ret : -ENOENT;
			break;
		}
		ret = 0;
		len = strlen(u.name);
		if (len + 1 > at) {
			ret = -ENAMETOOLONG;
			break;
		}
		at -= len;
		memcpy(buf + at, u.name, len);
		buf[--at] = '/';
		ino = u.parent;
	}
	pthread_mutex_unlock(&st->cat_lock);
	if (ret)
		return ret;
	if (at == size - 1)
		buf[--at] = '/'; /* the root itself */
	memmove(buf, buf + at, size - at);
	return 0;
}

int stash_store_doc(struct stash_store *st, uint64_t doc, uint64_t *ino,
		    uint64_t *line, uint64_t *off, uint64_t *len)
{
	int ret;

	pthread_mutex_lock(&st->cat_lock);
	ret = stash_cat_doc_get(st->cat, doc, ino, line, off, len);
	pthread_mutex_unlock(&st->cat_lock);
	return ret;
}

static int do_reindex(struct stash_store *st, void *arg)
{
	(void)arg;
	return stash_cat_index_all(st->cat);
}

int stash_store_reindex(struct stash_store *st)
{
	return stash_store_in_txn(st, do_reindex, NULL);
}

/* ---- results as JSON ---- */

#define SNIPPET_READ (256u << 10) /* bytes of a file read for a snippet */
#define SNIPPET_SIDE 80		  /* bytes of context on each side */

/* The words of a query worth marking: not operators, not filters. */
static size_t query_words(const char *query, char words[][64], size_t max)
{
	static const char *const ops[] = { "AND", "OR", "NOT" };
	size_t n = 0;
	const char *p = query;

	while (*p && n < max) {
		size_t len = 0;
		const char *colon;
		bool op = false;

		while (*p && strchr(" \t\"()*^,", *p))
			p++;
		while (p[len] && !strchr(" \t\"()*^,", p[len]))
			len++;
		if (!len)
			break;
		colon = memchr(p, ':', len);
		for (size_t i = 0; i < STASH_ARRAY_SIZE(ops); i++)
			if (len == strlen(ops[i]) && !memcmp(p, ops[i], len))
				op = true;
		if (colon) {
			/* A column field's value is a word; other filters
			 * (dates, names, areas, limits) are not. */
			static const char *const cols[] = {
				"author:",  "tag:", "tags:", "title:",
				"content:", "url:", "lang:"
			};
			bool col = false;

			for (size_t i = 0; i < STASH_ARRAY_SIZE(cols); i++)
				if (!strncasecmp(p, cols[i], strlen(cols[i])))
					col = true;
			len -= (size_t)(colon + 1 - p);
			p = colon + 1;
			op = !col;
		}
		if (!op && len && len < 64 && strncmp(p, "NEAR", 4)) {
			memcpy(words[n], p, len);
			words[n][len] = '\0';
			n++;
		}
		p += len;
	}
	return n;
}

/* Where the first of words appears in text (ASCII case folded), or NULL;
 * *wlen gets its length. */
static const char *find_word(const char *text, char words[][64], size_t n,
			     size_t *wlen)
{
	const char *best = NULL;

	for (size_t i = 0; i < n; i++) {
		const char *at = strcasestr(text, words[i]);

		if (at && (!best || at < best)) {
			best = at;
			*wlen = strlen(words[i]);
		}
	}
	return best;
}

/* Step back or forward to a UTF-8 character boundary. */
static const char *utf8_back(const char *start, const char *p)
{
	while (p > start && ((unsigned char)*p & 0xC0) == 0x80)
		p--;
	return p;
}

static char *make_snippet(const char *text, char words[][64], size_t n)
{
	size_t wlen = 0, len = strlen(text), out_len;
	const char *at = find_word(text, words, n, &wlen);
	const char *from, *to;
	char *out;

	if (!at) {
		at = text;
		wlen = 0;
	}
	from = utf8_back(text,
			 at - text > SNIPPET_SIDE ? at - SNIPPET_SIDE : text);
	to = at + wlen + SNIPPET_SIDE < text + len ? at + wlen + SNIPPET_SIDE
						   : text + len;
	to = utf8_back(text, to);
	out_len = (size_t)(to - from) + 16;
	out = malloc(out_len);
	if (!out)
		return NULL;
	snprintf(out, out_len, "%.*s%s%.*s%s%.*s", (int)(at - from), from,
		 wlen ? "**" : "", (int)wlen, at, wlen ? "**" : "",
		 (int)(to - at - (ptrdiff_t)wlen), at + wlen);
	/* One line: newlines and tabs read as spaces. */
	for (char *c = out; *c; c++)
		if (*c == '\n' || *c == '\r' || *c == '\t')
			*c = ' ';
	return out;
}

/* The text of a hit for its snippet: an article's body, else the file. */
static char *hit_text(struct stash_store *st, const struct stash_search_hit *h)
{
	struct stash_file *f;
	uint64_t want = h->len && h->len < SNIPPET_READ ? h->len : SNIPPET_READ;
	char *buf = malloc(want + 1);
	ssize_t got;

	if (!buf)
		return NULL;
	if (stash_file_open(st, h->ino, &f)) {
		free(buf);
		return NULL;
	}
	got = stash_file_read(st, f, buf, want, h->off);
	stash_file_release(st, f);
	if (got < 0) {
		free(buf);
		return NULL;
	}
	buf[got] = '\0';
	if (h->title || h->line) {
		struct stash_article a = { 0 };

		if (stash_article_parse(buf, (size_t)got, &a, NULL, 0) == 0 &&
		    (a.content || a.title)) {
			char *text = strdup(a.content ? a.content : a.title);

			stash_article_release(&a);
			free(buf);
			return text;
		}
		stash_article_release(&a);
	}
	return buf;
}

struct json_args {
	struct stash_store *st;
	cJSON *arr;
	char words[16][64];
	size_t nwords;
	int error;
};

static void add_string(cJSON *o, const char *key, const char *value)
{
	if (value)
		cJSON_AddStringToObject(o, key, value);
}

static int add_json_hit(void *arg, const struct stash_search_hit *h)
{
	struct json_args *a = arg;
	cJSON *o = cJSON_CreateObject();
	char path[4096], when[40];
	char *text, *snippet = NULL;
	size_t len;

	if (!o || !cJSON_AddItemToArray(a->arr, o)) {
		cJSON_Delete(o);
		a->error = -ENOMEM;
		return 1;
	}
	if (stash_store_path(a->st, h->ino, path, sizeof(path)) == 0)
		cJSON_AddStringToObject(o, "path", path);
	cJSON_AddStringToObject(o, "name", h->name);
	cJSON_AddNumberToObject(o, "line", (double)h->line);
	add_string(o, "title", h->title);
	add_string(o, "url", h->url);
	add_string(o, "author", h->author);
	add_string(o, "tags", h->tags);
	add_string(o, "lang", h->lang);
	if (h->has_date) {
		time_t t = (time_t)(h->date / 1000000000);
		struct tm tm;

		gmtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		cJSON_AddStringToObject(o, "published_at", when);
	}
	/* bm25 is lower for better matches; scripts expect the opposite. */
	cJSON_AddNumberToObject(o, "score", -h->score);
	text = hit_text(a->st, h);
	/* Where the body does not hold a word of the query, the title may. */
	if (text && h->title && !find_word(text, a->words, a->nwords, &len)) {
		free(text);
		text = strdup(h->title);
	}
	if (text)
		snippet = make_snippet(text, a->words, a->nwords);
	add_string(o, "snippet", snippet);
	free(text);
	free(snippet);
	return 0;
}

int stash_store_search_json(struct stash_store *st, const char *query,
			    char **out, char *err, size_t errlen)
{
	struct json_args a = { .st = st, .arr = cJSON_CreateArray() };
	int ret;

	if (!a.arr)
		return -ENOMEM;
	a.nwords = query_words(query, a.words, STASH_ARRAY_SIZE(a.words));
	ret = stash_store_search(st, query, add_json_hit, &a, err, errlen);
	if (!ret)
		ret = a.error;
	if (!ret) {
		*out = cJSON_PrintUnformatted(a.arr);
		if (!*out)
			ret = -ENOMEM;
	}
	cJSON_Delete(a.arr);
	return ret;
}
