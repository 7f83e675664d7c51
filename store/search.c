/*
 * search.c - queries over the full-text index for the filesystem and the
 * CLI: parse (query.c), wait for the indexer, run (catalog_search.c), and
 * apply the filters that need the tree (area:, name:) before the limit.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
