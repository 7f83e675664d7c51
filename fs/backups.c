/*
 * backups.c - the .backups virtual directory (see backups.h).
 */
#include "backups.h"

#include <errno.h>
#include <sys/stat.h>

int backups_getattr(struct stash_store *st, struct stash_attr *out)
{
	/* Owned like the root, so its owner is who may take snapshots. */
	int ret = stash_store_getattr(st, STASH_ROOT_INO, out);

	if (ret)
		return ret;
	out->ino = FS_INO_BACKUPS;
	out->mode = S_IFDIR | 0755;
	out->nlink = 2;
	out->size = 0;
	return 0;
}

static int snapshot_attr(struct stash_store *st, const struct stash_snapshot *s,
			 struct stash_attr *out)
{
	/* Its root's mtime is the snapshot's creation time (catalog). */
	return stash_store_getattr(st, s->root, out);
}

int backups_lookup(struct stash_store *st, const char *name,
		   struct stash_attr *out)
{
	struct stash_snapshot s;
	int ret = stash_snap_find(st, name, &s);

	return ret ? ret : snapshot_attr(st, &s, out);
}

int backups_mkdir(struct stash_store *st, const char *name,
		  struct stash_attr *out)
{
	struct stash_snapshot s;
	int ret = stash_snap_create(st, name, &s);

	return ret ? ret : snapshot_attr(st, &s, out);
}

int backups_rmdir(struct stash_store *st, const char *name)
{
	return stash_snap_delete(st, name);
}

int backups_rename(struct stash_store *st, const char *name,
		   const char *newname, unsigned flags)
{
	if (flags & STASH_RENAME_EXCHANGE)
		return -EINVAL;
	return stash_snap_rename(st, name, newname);
}

struct list_args {
	struct stash_store *st;
	stash_cat_dirent_fn fn;
	void *arg;
};

static int list_one(void *arg, const struct stash_snapshot *s)
{
	struct list_args *a = arg;
	struct stash_attr attr;
	int ret = snapshot_attr(a->st, s, &attr);

	if (ret == -ENOENT)
		return 0; /* dropped meanwhile */
	if (ret)
		return ret;
	return a->fn(a->arg, s->name, &attr, s->id) ? 1 : 0;
}

int backups_readdir(struct stash_store *st, uint64_t off,
		    stash_cat_dirent_fn fn, void *arg)
{
	struct list_args a = { st, fn, arg };
	int ret = stash_snap_list(st, off, list_one, &a);

	return ret > 0 ? 0 : ret;
}
