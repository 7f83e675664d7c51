/*
 * snapshot.c - snapshots of the whole tree: take, drop, rename, find and
 * list them (the rows are copied by catalog_snap.c).
 *
 * A snapshot is one catalog transaction under the catalog lock, so it
 * sees every commit before it and none after: a file being written
 * appears as of its last flush, whatever writers do meanwhile. Reading a
 * snapshot needs nothing here: its inode numbers work with every read
 * call of store.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store_int.h"

static int check_snap_name(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > STASH_NAME_MAX || strchr(name, '/') ||
	    !strcmp(name, ".") || !strcmp(name, ".."))
		return -EINVAL;
	return 0;
}

static void to_snapshot(const struct stash_cat_snap *c,
			struct stash_snapshot *out)
{
	out->id = c->id;
	memcpy(out->name, c->name, sizeof(out->name));
	out->created = c->created;
	out->root = stash_ino_make(c->id, STASH_ROOT_INO);
}

int stash_snap_create(struct stash_store *st, const char *name,
		      struct stash_snapshot *out)
{
	struct stash_cat_snap snap;
	int ret = check_snap_name(name);

	if (ret)
		return ret;
	pthread_mutex_lock(&st->cat_lock);
	/* Durable like fsync: the chunks it names are on disk first. */
	ret = stash_packs_sync(st->packs);
	if (!ret)
		ret = stash_cat_begin(st->cat);
	if (!ret) {
		ret = stash_cat_snap_create(st->cat, name, stash_wall_ns(),
					    &snap);
		if (!ret)
			ret = stash_cat_commit(st->cat, 1);
		if (ret)
			stash_cat_rollback(st->cat);
	}
	pthread_mutex_unlock(&st->cat_lock);
	if (ret)
		return ret;
	stash_store_note_commit(st);
	stash_log(STASH_LOG_DEBUG, "snapshot %s taken", name);
	if (out)
		to_snapshot(&snap, out);
	return 0;
}

/* What with_snap runs in its transaction. */
struct snap_txn {
	const char *name; /* the snapshot's */
	int (*fn)(struct stash_cat *cat, uint64_t id, const void *arg);
	const void *arg; /* for fn */
};

static int run_on_snap(struct stash_store *st, void *arg)
{
	const struct snap_txn *t = arg;
	struct stash_cat_snap snap;
	int ret = stash_cat_snap_find(st->cat, t->name, &snap);

	return ret ? ret : t->fn(st->cat, snap.id, t->arg);
}

/* Find a snapshot by name and run fn on it inside one transaction. */
static int with_snap(struct stash_store *st, const char *name,
		     int (*fn)(struct stash_cat *cat, uint64_t id,
			       const void *arg),
		     const void *arg)
{
	struct snap_txn t = { .name = name, .fn = fn, .arg = arg };
	int ret = check_snap_name(name);

	if (ret)
		return ret == -EINVAL ? -ENOENT : ret;
	return stash_store_in_txn(st, run_on_snap, &t);
}

static int do_delete(struct stash_cat *cat, uint64_t id, const void *arg)
{
	(void)arg;
	return stash_cat_snap_delete(cat, id);
}

static int do_rename(struct stash_cat *cat, uint64_t id, const void *arg)
{
	return stash_cat_snap_rename(cat, id, arg);
}

int stash_snap_delete(struct stash_store *st, const char *name)
{
	int ret = with_snap(st, name, do_delete, NULL);

	if (!ret)
		stash_log(STASH_LOG_DEBUG, "snapshot %s dropped", name);
	return ret;
}

int stash_snap_rename(struct stash_store *st, const char *name,
		      const char *newname)
{
	int ret = check_snap_name(newname);

	if (ret)
		return ret;
	if (!strcmp(name, newname)) {
		struct stash_snapshot s;

		return stash_snap_find(st, name, &s);
	}
	return with_snap(st, name, do_rename, newname);
}

int stash_snap_find(struct stash_store *st, const char *name,
		    struct stash_snapshot *out)
{
	struct stash_cat_snap snap;
	int ret = check_snap_name(name);

	if (ret)
		return ret == -EINVAL ? -ENOENT : ret;
	pthread_mutex_lock(&st->cat_lock);
	ret = stash_cat_snap_find(st->cat, name, &snap);
	pthread_mutex_unlock(&st->cat_lock);
	if (!ret)
		to_snapshot(&snap, out);
	return ret;
}

struct list_args {
	stash_snap_fn fn;
	void *arg;
	struct stash_cat_snap *batch;
	size_t n;
};

static int collect(void *arg, const struct stash_cat_snap *s)
{
	struct list_args *a = arg;

	a->batch[a->n++] = *s;
	return a->n == 64; /* a full batch */
}

int stash_snap_list(struct stash_store *st, uint64_t after, stash_snap_fn fn,
		    void *arg)
{
	struct stash_cat_snap batch[64];
	struct list_args a = { fn, arg, batch, 0 };
	int ret;

	/* In batches, so fn runs without the catalog lock held. */
	do {
		a.n = 0;
		pthread_mutex_lock(&st->cat_lock);
		ret = stash_cat_snap_list(st->cat, after, collect, &a);
		pthread_mutex_unlock(&st->cat_lock);
		if (ret < 0)
			return ret;
		for (size_t i = 0; i < a.n; i++) {
			struct stash_snapshot s;

			to_snapshot(&batch[i], &s);
			ret = fn(arg, &s);
			if (ret)
				return ret;
			after = s.id;
		}
	} while (a.n == STASH_ARRAY_SIZE(batch));
	return 0;
}

/* ---- pruning ---- */

struct snap_vec {
	struct stash_snapshot *v;
	size_t n, cap;
	const char *prefix;
};

static int gather(void *arg, const struct stash_snapshot *s)
{
	struct snap_vec *sv = arg;

	if (sv->prefix && strncmp(s->name, sv->prefix, strlen(sv->prefix)))
		return 0;
	if (sv->n == sv->cap) {
		size_t cap = sv->cap ? 2 * sv->cap : 64;
		struct stash_snapshot *v = realloc(sv->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		sv->v = v;
		sv->cap = cap;
	}
	sv->v[sv->n++] = *s;
	return 0;
}

int stash_snap_prune(struct stash_store *st, const struct stash_retention *keep,
		     const char *prefix, bool dry_run, stash_snap_fn fn,
		     void *arg)
{
	struct snap_vec sv = { .prefix = prefix };
	int64_t *created = NULL;
	bool *kept = NULL;
	int ret = stash_snap_list(st, 0, gather, &sv);

	if (ret || sv.n == 0)
		goto out;
	created = calloc(sv.n, sizeof(*created));
	kept = calloc(sv.n, sizeof(*kept));
	if (!created || !kept) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < sv.n; i++)
		created[i] = sv.v[i].created;
	ret = stash_retention_apply(keep, created, sv.n, kept);
	for (size_t i = 0; !ret && i < sv.n; i++) {
		if (kept[i])
			continue;
		if (!dry_run) {
			ret = stash_snap_delete(st, sv.v[i].name);
			if (ret == -ENOENT) {
				ret = 0; /* dropped meanwhile */
				continue;
			}
		}
		if (!ret && fn)
			ret = fn(arg, &sv.v[i]);
	}
out:
	free(sv.v);
	free(created);
	free(kept);
	return ret;
}

/* ---- automatic snapshots ---- */

static int newest_auto(void *arg, const struct stash_snapshot *s)
{
	int64_t *newest = arg;

	if (!strncmp(s->name, STASH_AUTO_SNAP_PREFIX,
		     strlen(STASH_AUTO_SNAP_PREFIX)) &&
	    s->created > *newest)
		*newest = s->created;
	return 0;
}

/* Take one automatic snapshot, named after the time (UTC), and prune. */
static void auto_snapshot(struct stash_store *st)
{
	char name[64];
	time_t now = time(NULL);
	struct tm tm;
	size_t len;
	int ret;

	gmtime_r(&now, &tm);
	len = strftime(name, sizeof(name),
		       STASH_AUTO_SNAP_PREFIX "%Y%m%d-%H%M%S", &tm);
	ret = stash_snap_create(st, name, NULL);
	/* Two in one second (a short interval): number the later ones. */
	for (int i = 2; ret == -EEXIST && i < 100; i++) {
		snprintf(name + len, sizeof(name) - len, "-%d", i);
		ret = stash_snap_create(st, name, NULL);
	}
	if (ret) {
		stash_log(STASH_LOG_ERR, "automatic snapshot %s: %s", name,
			  strerror(-ret));
		return;
	}
	stash_log(STASH_LOG_INFO, "snapshot %s taken", name);
	ret = stash_snap_prune(st, &st->autosnap_keep, STASH_AUTO_SNAP_PREFIX,
			       false, NULL, NULL);
	if (ret)
		stash_log(STASH_LOG_ERR, "pruning automatic snapshots: %s",
			  strerror(-ret));
}

static void *autosnap_main(void *arg)
{
	struct stash_store *st = arg;
	int64_t newest = 0, due;
	struct timespec ts;

	if (stash_snap_list(st, 0, newest_auto, &newest))
		newest = 0;
	due = newest ? newest + st->autosnap_every : 0;
	pthread_mutex_lock(&st->flusher_lock);
	while (!st->autosnap_stop) {
		if (stash_wall_ns() >= due) {
			pthread_mutex_unlock(&st->flusher_lock);
			auto_snapshot(st);
			pthread_mutex_lock(&st->flusher_lock);
			due = stash_wall_ns() + st->autosnap_every;
			continue;
		}
		ts.tv_sec = (time_t)(due / 1000000000);
		ts.tv_nsec = (long)(due % 1000000000);
		pthread_cond_timedwait(&st->autosnap_cond, &st->flusher_lock,
				       &ts);
	}
	pthread_mutex_unlock(&st->flusher_lock);
	return NULL;
}

int stash_snap_auto_start(struct stash_store *st, int64_t every_ns,
			  const struct stash_retention *keep)
{
	int ret;

	if (every_ns <= 0 || st->autosnap_running)
		return -EINVAL;
	st->autosnap_every = every_ns;
	st->autosnap_keep = *keep;
	st->autosnap_stop = false;
	ret = -pthread_create(&st->autosnap, NULL, autosnap_main, st);
	if (!ret)
		st->autosnap_running = true;
	return ret;
}

void stash_snap_auto_stop(struct stash_store *st)
{
	if (!st->autosnap_running)
		return;
	pthread_mutex_lock(&st->flusher_lock);
	st->autosnap_stop = true;
	pthread_cond_signal(&st->autosnap_cond);
	pthread_mutex_unlock(&st->flusher_lock);
	pthread_join(st->autosnap, NULL);
	st->autosnap_running = false;
}
