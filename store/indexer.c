/*
 * indexer.c - turns queued files into index documents (docs/SEARCH.md).
 *
 * A change to a file drops its documents and queues it in the change's own
 * transaction (catalog_search.c); this thread then reads the file's
 * committed content (never bytes a writer holds in memory: those may never
 * be committed), parses it and adds its documents, unless the file was
 * queued again meanwhile. So the index never describes data that is not
 * there, and catches up within moments of each change. Searches first wait
 * for the queue to drain (stash_index_wait), so a search sees every file
 * committed before it began.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "article.h"
#include "catalog_search.h"
#include "store_int.h"

/* Larger files are indexed by name only: parsing holds them in memory. */
#define INDEX_MAX_BYTES (64u << 20)
#define INDEX_ERROR_XATTR "user.stashfs.index_error"
/* Files indexed per transaction, and the bytes they may hold. */
#define BATCH_FILES 64
#define BATCH_BYTES (2u << 20)
#define DEBOUNCE_MS 50
#define DEBOUNCE_MAX_MS 1000

struct extent_vec {
	struct stash_extent *v;
	size_t n, cap;
};

static int collect_extent(void *arg, const struct stash_extent *e)
{
	struct extent_vec *x = arg;

	if (x->n == x->cap) {
		size_t cap = x->cap ? 2 * x->cap : 16;
		struct stash_extent *v = realloc(x->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		x->v = v;
		x->cap = cap;
	}
	x->v[x->n++] = *e;
	return 0;
}

/* What the indexer needs to know of a file, read under the catalog lock. */
struct file_info {
	struct stash_attr attr;
	char name[STASH_NAME_MAX + 1];
	char area[STASH_NAME_MAX + 1]; /* top-level folder, "" at the root */
	struct extent_vec map;
};

/* The file's name, its area and its committed file map. */
static int file_info_load(struct stash_store *st, uint64_t ino,
			  struct file_info *fi)
{
	int ret;

	pthread_mutex_lock(&st->cat_lock);
	ret = stash_cat_getattr(st->cat, ino, &fi->attr);
	if (!ret)
		ret = stash_cat_name_area(st->cat, ino, fi->name, fi->area);
	if (!ret && S_ISREG(fi->attr.mode) && fi->attr.size <= INDEX_MAX_BYTES)
		ret = stash_cat_load_extents(st->cat, ino, collect_extent,
					     &fi->map);
	pthread_mutex_unlock(&st->cat_lock);
	return ret;
}

/* The committed content of the file, from its map. */
static int read_content(struct stash_store *st, const struct file_info *fi,
			char **out)
{
	char *buf = malloc(fi->attr.size + 1);
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; !ret && i < fi->map.n; i++) {
		const struct stash_extent *e = &fi->map.v[i];

		if (e->off + e->len > fi->attr.size) {
			ret = -EBADMSG;
		} else if (e->hole) {
			memset(buf + e->off, 0, e->len);
		} else {
			ret = stash_chunk_read(st, e->id, &e->loc,
					       (uint32_t)e->len, 0,
					       buf + e->off, e->len);
		}
	}
	if (ret) {
		free(buf);
		return ret;
	}
	buf[fi->attr.size] = '\0';
	*out = buf;
	return 0;
}

/* The documents of one file, gathered before the transaction. */
struct docs {
	struct stash_doc *v;
	struct stash_article *articles; /* owned strings of v */
	size_t n, cap;
	char err[256]; /* why it is not indexed as articles, or "" */
	const struct file_info *fi;
};

static struct stash_doc *docs_add(struct docs *d)
{
	if (d->n == d->cap) {
		size_t cap = d->cap ? 2 * d->cap : 8;
		struct stash_doc *v = realloc(d->v, cap * sizeof(*v));
		struct stash_article *a;

		if (!v)
			return NULL;
		d->v = v;
		a = realloc(d->articles, cap * sizeof(*a));
		if (!a)
			return NULL;
		d->articles = a;
		d->cap = cap;
	}
	memset(&d->v[d->n], 0, sizeof(d->v[0]));
	memset(&d->articles[d->n], 0, sizeof(d->articles[0]));
	d->v[d->n].ino = d->fi->attr.ino;
	d->v[d->n].name = d->fi->name;
	d->v[d->n].date = d->fi->attr.mtime;
	d->v[d->n].has_date = true;
	return &d->v[d->n++];
}

static void doc_from_article(struct stash_doc *doc, struct stash_article *a)
{
	doc->kind = STASH_DOC_ARTICLE;
	doc->title = a->title;
	doc->content = a->content;
	doc->author = a->author;
	doc->tags = a->tags;
	doc->url = a->url;
	doc->lang = a->lang;
	doc->meta = a->meta;
	if (a->has_published_at)
		doc->date = a->published_at;
}

/* A copy of a whose strings d owns (a lives only during the callback). */
static int article_copy(const struct stash_article *a,
			struct stash_article *out)
{
	char **dst[] = {
		&out->title, &out->content, &out->url,	&out->author,
		&out->tags,  &out->lang,    &out->meta, &out->warning
	};
	char *const src[] = { a->title, a->content, a->url,  a->author,
			      a->tags,	a->lang,    a->meta, a->warning };

	*out = *a;
	for (size_t i = 0; i < STASH_ARRAY_SIZE(dst); i++)
		*dst[i] = NULL;
	for (size_t i = 0; i < STASH_ARRAY_SIZE(dst); i++) {
		if (src[i] && !(*dst[i] = strdup(src[i]))) {
			stash_article_release(out);
			return -ENOMEM;
		}
	}
	return 0;
}

static int jsonl_line(void *arg, int rc, const struct stash_article *a,
		      const char *err)
{
	struct docs *d = arg;
	struct stash_doc *doc;

	if (rc) {
		/* Keep the first bad line's reason; the others still count. */
		if (!d->err[0])
			snprintf(d->err, sizeof(d->err), "%s", err);
		return rc == -ENOMEM ? rc : 0;
	}
	doc = docs_add(d);
	if (!doc || article_copy(a, &d->articles[d->n - 1]))
		return -ENOMEM;
	doc_from_article(doc, &d->articles[d->n - 1]);
	doc->line = d->articles[d->n - 1].line;
	doc->off = d->articles[d->n - 1].offset;
	doc->len = d->articles[d->n - 1].length;
	return 0;
}

static int build_docs(struct stash_store *st, const struct file_info *fi,
		      struct docs *d)
{
	enum stash_file_kind kind = stash_article_file_kind(fi->name);
	bool article_area = !strcmp(fi->area, "articles");
	struct stash_doc *doc;
	char *text = NULL;
	int ret = 0;

	d->fi = fi;
	if (S_ISREG(fi->attr.mode) && fi->attr.size <= INDEX_MAX_BYTES &&
	    fi->attr.size > 0)
		ret = read_content(st, fi, &text);
	if (ret)
		return ret;
	if (text && article_area && kind == STASH_FILE_JSONL) {
		ret = stash_article_each_line(text, fi->attr.size, jsonl_line,
					      d);
	} else if (text && article_area && kind == STASH_FILE_ARTICLE) {
		struct stash_article a = { 0 };

		ret = stash_article_parse(text, fi->attr.size, &a, d->err,
					  sizeof(d->err));
		if (!ret) {
			doc = docs_add(d);
			if (!doc) {
				stash_article_release(&a);
				ret = -ENOMEM;
			} else {
				d->articles[d->n - 1] = a;
				doc_from_article(doc, &d->articles[d->n - 1]);
				doc->len = fi->attr.size;
			}
		} else if (ret == -EINVAL || ret == -EFBIG) {
			ret = 0; /* malformed: stored as written, not indexed */
		}
	}
	if (!ret && d->n == 0) {
		/* A text file (or a bad article) by name and content, any
		 * other by name. */
		doc = docs_add(d);
		if (!doc) {
			ret = -ENOMEM;
		} else if (text && stash_article_is_text((const uint8_t *)text,
							 fi->attr.size)) {
			doc->kind = STASH_DOC_TEXT;
			doc->len = fi->attr.size;
			if (kind == STASH_FILE_HTML) {
				char *plain = NULL;
				size_t plain_len;

				ret = stash_article_html_to_text(
					text, fi->attr.size, &plain,
					&plain_len);
				if (!ret) {
					free(text);
					text = plain;
				}
			}
			doc->content = text;
		} else {
			doc->kind = STASH_DOC_NAME;
		}
	}
	/* The text stays alive as long as the documents point at it. */
	if (!ret && d->n && d->v[0].content == text)
		text = NULL;
	free(text);
	return ret;
}

static void docs_free(struct docs *d)
{
	for (size_t i = 0; i < d->n; i++) {
		if (d->v[i].kind == STASH_DOC_TEXT)
			free((char *)d->v[i].content);
		else
			stash_article_release(&d->articles[i]);
	}
	free(d->v);
	free(d->articles);
}

/* A queued file, read and parsed outside the catalog lock. */
struct job {
	uint64_t ino;
	int64_t gen;
	struct file_info fi;
	struct docs d;
	char *(*norm)[STASH_DOC_FIELDS]; /* d.v[i]'s fields, normalized */
	int ret; /* reading or parsing failed: no documents */
};

static void job_prepare(struct stash_store *st, struct job *j)
{
	j->ret = file_info_load(st, j->ino, &j->fi);
	if (!j->ret && !S_ISREG(j->fi.attr.mode))
		j->ret = -ENOENT;
	if (!j->ret)
		j->ret = build_docs(st, &j->fi, &j->d);
	if (!j->ret && j->d.n) {
		j->norm = calloc(j->d.n, sizeof(*j->norm));
		if (!j->norm)
			j->ret = -ENOMEM;
	}
	for (size_t i = 0; !j->ret && i < j->d.n; i++)
		j->ret = stash_doc_normalize(&j->d.v[i], j->norm[i]);
}

/* In the caller's transaction: take the file off the queue and add its
 * documents, unless it was queued again since it was read. */
static int job_apply(struct stash_store *st, struct job *j)
{
	int claimed = stash_cat_index_claim(st->cat, j->ino, j->gen);
	int err = claimed < 0 ? claimed : 0;

	/* Gone, or unreadable: off the queue, without documents. */
	if (claimed != 1 || j->ret)
		return err;
	for (size_t i = 0; !err && i < j->d.n; i++)
		err = stash_cat_doc_add(st->cat, &j->d.v[i], j->norm[i]);
	if (!err && j->d.err[0])
		err = stash_cat_setxattr(st->cat, j->ino, INDEX_ERROR_XATTR,
					 j->d.err, strlen(j->d.err), 0);
	else if (!err)
		err = stash_cat_removexattr(st->cat, j->ino, INDEX_ERROR_XATTR);
	if (err == -ENODATA)
		err = 0;
	if (!err && j->d.err[0])
		stash_log(STASH_LOG_WARN, "%s: not indexed as an article: %s",
			  j->fi.name, j->d.err);
	return err;
}

static void job_free(struct job *j)
{
	for (size_t i = 0; j->norm && i < j->d.n; i++)
		stash_doc_norm_free(j->norm[i]);
	free(j->norm);
	docs_free(&j->d);
	free(j->fi.map.v);
}

/*
 * Index up to BATCH_FILES queued files (or BATCH_BYTES of them) after
 * inode *after, in one transaction: one commit for many small files.
 * Returns how many were taken from the queue, or a negative errno.
 */
static int index_batch(struct stash_store *st, uint64_t *after)
{
	struct job *jobs = calloc(BATCH_FILES, sizeof(*jobs));
	uint64_t bytes = 0;
	size_t n = 0;
	int ret = 0;

	if (!jobs)
		return -ENOMEM;
	while (n < BATCH_FILES && bytes < BATCH_BYTES) {
		struct job *j = &jobs[n];

		pthread_mutex_lock(&st->cat_lock);
		ret = stash_cat_index_next(st->cat, *after, &j->ino, &j->gen);
		pthread_mutex_unlock(&st->cat_lock);
		if (ret)
			break;
		job_prepare(st, j);
		if (j->ret && j->ret != -ENOENT)
			stash_log(STASH_LOG_ERR, "indexing inode %llu: %s",
				  (unsigned long long)j->ino,
				  strerror(-j->ret));
		bytes += j->fi.attr.size;
		*after = j->ino;
		n++;
	}
	ret = ret == -ENOENT ? 0 : ret;
	if (n) {
		pthread_mutex_lock(&st->cat_lock);
		ret = stash_cat_begin(st->cat);
		for (size_t i = 0; !ret && i < n; i++)
			ret = job_apply(st, &jobs[i]);
		if (!ret)
			ret = stash_cat_commit(st->cat, 0);
		if (ret) {
			stash_cat_rollback(st->cat);
			stash_log(STASH_LOG_ERR, "indexing: %s",
				  strerror(-ret));
		}
		pthread_mutex_unlock(&st->cat_lock);
	}
	for (size_t i = 0; i < n; i++)
		job_free(&jobs[i]);
	free(jobs);
	return ret ? ret : (int)n;
}

/*
 * While changes keep coming (a cp of many files), wait for a pause of
 * DEBOUNCE_MS, up to DEBOUNCE_MAX_MS: indexing then runs after the burst
 * instead of competing with it. index_lock is held.
 */
static void debounce(struct stash_store *st)
{
	for (int waited = 0;
	     !st->index_stop && st->index_kicked && waited < DEBOUNCE_MAX_MS;
	     waited += DEBOUNCE_MS) {
		struct timespec ts;

		st->index_kicked = false;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += DEBOUNCE_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&st->index_cond, &st->index_lock, &ts);
	}
}

static void *indexer_main(void *arg)
{
	struct stash_store *st = arg;
	uint64_t after = 0;
	int n;

	pthread_mutex_lock(&st->index_lock);
	while (!st->index_stop) {
		pthread_mutex_unlock(&st->index_lock);
		n = index_batch(st, &after);
		pthread_mutex_lock(&st->index_lock);
		if (n > 0) {
			debounce(st);
			continue;
		}
		if (n < 0) {
			/* A catalog error: try again after the next change. */
			after = 0;
		} else if (after) {
			after = 0; /* a pass ended: look again from the start */
			continue;
		}
		/* The queue is empty: wake waiters, sleep until a change. */
		st->index_idle = true;
		pthread_cond_broadcast(&st->index_cond);
		while (!st->index_stop && !st->index_kicked)
			pthread_cond_wait(&st->index_cond, &st->index_lock);
		st->index_idle = false;
		debounce(st);
		st->index_kicked = false;
	}
	st->index_idle = true;
	pthread_cond_broadcast(&st->index_cond);
	pthread_mutex_unlock(&st->index_lock);
	return NULL;
}

int stash_index_start(struct stash_store *st)
{
	int ret;

	if (st->index_running)
		return -EINVAL;
	st->index_stop = false;
	st->index_idle = false;
	ret = -pthread_create(&st->indexer, NULL, indexer_main, st);
	if (!ret)
		st->index_running = true;
	return ret;
}

void stash_index_stop(struct stash_store *st)
{
	if (!st->index_running)
		return;
	pthread_mutex_lock(&st->index_lock);
	st->index_stop = true;
	pthread_cond_broadcast(&st->index_cond);
	pthread_mutex_unlock(&st->index_lock);
	pthread_join(st->indexer, NULL);
	st->index_running = false;
}

void stash_index_kick(struct stash_store *st)
{
	pthread_mutex_lock(&st->index_lock);
	st->index_kicked = true;
	pthread_cond_broadcast(&st->index_cond);
	pthread_mutex_unlock(&st->index_lock);
}

int stash_index_wait(struct stash_store *st, int timeout_ms)
{
	struct timespec ts;
	int ret = 0;

	if (!st->index_running)
		return -ESRCH;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&st->index_lock);
	/* A kick not yet seen means work the indexer has not looked at. */
	while (!ret && (!st->index_idle || st->index_kicked))
		ret = pthread_cond_timedwait(&st->index_cond, &st->index_lock,
					     &ts);
	pthread_mutex_unlock(&st->index_lock);
	return ret ? -ETIMEDOUT : 0;
}
