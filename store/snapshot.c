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
#include <string.h>

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
	stash_log(STASH_LOG_INFO, "snapshot %s taken", name);
	if (out)
		to_snapshot(&snap, out);
	return 0;
}

/* Find a snapshot by name and run fn on it inside one transaction. */
static int with_snap(struct stash_store *st, const char *name,
		     int (*fn)(struct stash_cat *cat, uint64_t id,
			       const void *arg),
		     const void *arg)
{
	struct stash_cat_snap snap;
	int ret = check_snap_name(name);

	if (ret)
		return ret == -EINVAL ? -ENOENT : ret;
	pthread_mutex_lock(&st->cat_lock);
	ret = stash_cat_begin(st->cat);
	if (!ret) {
		ret = stash_cat_snap_find(st->cat, name, &snap);
		if (!ret)
			ret = fn(st->cat, snap.id, arg);
		if (!ret)
			ret = stash_cat_commit(st->cat, 0);
		if (ret)
			stash_cat_rollback(st->cat);
	}
	pthread_mutex_unlock(&st->cat_lock);
	if (!ret)
		stash_store_note_commit(st);
	return ret;
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
		stash_log(STASH_LOG_INFO, "snapshot %s dropped", name);
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
