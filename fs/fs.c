/*
 * fs.c - libfuse low-level operations over store/.
 *
 * Inode numbers are the catalog's (root = 1 = FUSE_ROOT_ID) and never
 * reused, so the kernel's lookup counts need no bookkeeping here: forget
 * is a no-op. Each open file handle is a struct stash_file in fi->fh, from
 * open to release. Every request gets exactly one reply; errors are
 * positive errnos in fuse_reply_err. store/'s -EBADMSG (corruption) is
 * logged there and shown to users as EIO.
 */
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "backups.h"
#include "gc.h"
#include "search.h"
#include "util.h"

#define ATTR_TIMEOUT 1.0
#define ENTRY_TIMEOUT 1.0
#define MAX_IO (1u << 20)

/* The session's state: the store, and what the virtual folders keep. */
struct fs_ctx {
	struct stash_store *st;
	struct fs_search *search;
};

static struct stash_store *store_of(fuse_req_t req)
{
	return ((struct fs_ctx *)fuse_req_userdata(req))->st;
}

static struct fs_search *search_of(fuse_req_t req)
{
	return ((struct fs_ctx *)fuse_req_userdata(req))->search;
}

/* .stats at the root: the store's figures as JSON, current at each open. */
#define STATS_NAME ".stats"
#define FS_INO_STATS (FS_INO_VIRTUAL | 5)

static int stats_text(struct stash_store *st, struct fs_vfile **out)
{
	struct fs_vfile *vf = calloc(1, sizeof(*vf));
	int ret = vf ? stash_store_stats_json(st, &vf->data) : -ENOMEM;

	if (ret) {
		fs_vfile_free(vf);
		return ret;
	}
	vf->len = strlen(vf->data);
	*out = vf;
	return 0;
}

static int stats_attr(struct stash_store *st, struct stash_attr *out)
{
	struct fs_vfile *vf = NULL;
	int ret = stash_store_getattr(st, STASH_ROOT_INO, out);

	if (!ret)
		ret = stats_text(st, &vf);
	if (ret)
		return ret;
	out->ino = FS_INO_STATS;
	out->mode = S_IFREG | 0444;
	out->nlink = 1;
	out->size = vf->len;
	out->atime = out->mtime = out->ctime = stash_wall_ns();
	fs_vfile_free(vf);
	return 0;
}

/* Files that are not the store's: .stats and those of .search. */
static bool is_virtual_file(fuse_ino_t ino)
{
	return ino == FS_INO_STATS || fs_search_owns(ino);
}

/* Nothing virtual is cached: .search and .stats show what is now. */
static bool uncached(fuse_ino_t parent, const char *name)
{
	return fs_search_owns(parent) ||
	       (parent == FUSE_ROOT_ID &&
		(!strcmp(name, SEARCH_NAME) || !strcmp(name, STATS_NAME)));
}

static int user_err(int err)
{
	if (err == -EBADMSG)
		return EIO;
	return -err;
}

static void reply_err(fuse_req_t req, int err)
{
	fuse_reply_err(req, user_err(err));
}

static void to_stat(const struct stash_attr *a, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = a->ino;
	st->st_mode = a->mode;
	st->st_nlink = a->nlink;
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_size = (off_t)a->size;
	st->st_rdev = a->rdev;
	st->st_blksize = 64 * 1024;
	st->st_blocks = (blkcnt_t)((a->size + 511) / 512);
	st->st_atim.tv_sec = a->atime / 1000000000;
	st->st_atim.tv_nsec = a->atime % 1000000000;
	st->st_mtim.tv_sec = a->mtime / 1000000000;
	st->st_mtim.tv_nsec = a->mtime % 1000000000;
	st->st_ctim.tv_sec = a->ctime / 1000000000;
	st->st_ctim.tv_nsec = a->ctime % 1000000000;
}

static void to_entry(const struct stash_attr *a, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = a->ino;
	e->attr_timeout = ATTR_TIMEOUT;
	e->entry_timeout = ENTRY_TIMEOUT;
	to_stat(a, &e->attr);
}

static void reply_entry(fuse_req_t req, int ret, const struct stash_attr *a)
{
	struct fuse_entry_param e;

	if (ret) {
		reply_err(req, ret);
		return;
	}
	to_entry(a, &e);
	fuse_reply_entry(req, &e);
}

static void fs_op_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	conn->max_write = MAX_IO;
	conn->max_readahead = MAX_IO;
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO;
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	/* Leave setuid clearing on write and chown to the kernel. */
	if (conn->capable & FUSE_CAP_HANDLE_KILLPRIV)
		conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
	/*
	 * libfuse turns atomic O_TRUNC on by default: the kernel would then
	 * pass O_TRUNC to open and send no setattr, and open ignores it.
	 * Off, the kernel truncates with a setattr(size=0) after the open.
	 */
	conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
	/*
	 * With asynchronous direct I/O the kernel may end a read at end of
	 * file while requests for the rest are still queued, and a close
	 * then releases the handle under them: the files of .search and
	 * .stats are direct I/O and freed at release.
	 */
	conn->want &= ~FUSE_CAP_ASYNC_DIO;
}

/* Attributes of any inode: the catalog's or a virtual one. */
static int get_attr(fuse_req_t req, fuse_ino_t ino, struct stash_attr *a)
{
	if (ino == FS_INO_BACKUPS)
		return backups_getattr(store_of(req), a);
	if (ino == FS_INO_STATS)
		return stats_attr(store_of(req), a);
	if (fs_search_owns(ino))
		return fs_search_getattr(search_of(req), ino, a);
	return stash_store_getattr(store_of(req), ino, a);
}

static int lookup(fuse_req_t req, fuse_ino_t parent, const char *name,
		  struct stash_attr *a)
{
	struct stash_store *st = store_of(req);

	if (parent == FUSE_ROOT_ID && !strcmp(name, BACKUPS_NAME))
		return backups_getattr(st, a);
	if (parent == FUSE_ROOT_ID && !strcmp(name, SEARCH_NAME))
		return fs_search_getattr(search_of(req), FS_INO_SEARCH, a);
	if (parent == FUSE_ROOT_ID && !strcmp(name, STATS_NAME))
		return stats_attr(st, a);
	if (parent == FS_INO_BACKUPS)
		return backups_lookup(st, name, a);
	if (fs_search_owns(parent))
		return fs_search_lookup(search_of(req), parent, name, a);
	return stash_store_lookup(st, parent, name, a);
}

static void fs_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct stash_attr a;
	int ret = lookup(req, parent, name, &a);

	if (uncached(parent, name)) {
		struct fuse_entry_param e;

		if (ret) {
			reply_err(req, ret);
			return;
		}
		to_entry(&a, &e);
		e.attr_timeout = e.entry_timeout = 0;
		fuse_reply_entry(req, &e);
		return;
	}
	if (ret == -ENOENT) {
		/* A negative entry, cached like a positive one. */
		struct fuse_entry_param e = { .entry_timeout = ENTRY_TIMEOUT };

		fuse_reply_entry(req, &e);
		return;
	}
	reply_entry(req, ret, &a);
}

static void fs_op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	(void)ino;
	(void)nlookup;
	fuse_reply_none(req);
}

static void fs_op_forget_multi(fuse_req_t req, size_t count,
			       struct fuse_forget_data *forgets)
{
	(void)count;
	(void)forgets;
	fuse_reply_none(req);
}

static void fs_op_getattr(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	struct stash_attr a;
	struct stat st;
	int ret = get_attr(req, ino, &a);

	(void)fi;
	if (ret) {
		reply_err(req, ret);
		return;
	}
	to_stat(&a, &st);
	fuse_reply_attr(req, &st, is_virtual_file(ino) ? 0 : ATTR_TIMEOUT);
}

static int64_t ts_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

static void fs_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
			  int to_set, struct fuse_file_info *fi)
{
	struct stash_attr in = { 0 }, out;
	int64_t now = stash_wall_ns();
	unsigned valid = 0;
	struct stat st;
	int ret;

	(void)fi;
	if (to_set & FUSE_SET_ATTR_MODE) {
		valid |= STASH_SET_MODE;
		in.mode = attr->st_mode;
	}
	if (to_set & FUSE_SET_ATTR_UID) {
		valid |= STASH_SET_UID;
		in.uid = attr->st_uid;
	}
	if (to_set & FUSE_SET_ATTR_GID) {
		valid |= STASH_SET_GID;
		in.gid = attr->st_gid;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		valid |= STASH_SET_SIZE;
		in.size = (uint64_t)attr->st_size;
	}
	if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_ATIME_NOW)) {
		valid |= STASH_SET_ATIME;
		in.atime = (to_set & FUSE_SET_ATTR_ATIME_NOW)
				   ? now
				   : ts_ns(&attr->st_atim);
	}
	if (to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW)) {
		valid |= STASH_SET_MTIME;
		in.mtime = (to_set & FUSE_SET_ATTR_MTIME_NOW)
				   ? now
				   : ts_ns(&attr->st_mtim);
	}
	if (to_set & FUSE_SET_ATTR_CTIME) {
		valid |= STASH_SET_CTIME;
		in.ctime = ts_ns(&attr->st_ctim);
	}
	ret = stash_store_setattr(store_of(req), ino, &in, valid, &out);
	if (ret) {
		reply_err(req, ret);
		return;
	}
	to_stat(&out, &st);
	fuse_reply_attr(req, &st, ATTR_TIMEOUT);
}

static void fs_op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[4097];
	ssize_t n =
		stash_store_readlink(store_of(req), ino, buf, sizeof(buf) - 1);

	if (n < 0) {
		reply_err(req, (int)n);
		return;
	}
	if ((size_t)n >= sizeof(buf)) {
		reply_err(req, -ENAMETOOLONG);
		return;
	}
	buf[n] = '\0';
	fuse_reply_readlink(req, buf);
}

static void fs_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
			mode_t mode, dev_t rdev)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct stash_attr a;
	int ret = stash_store_mknod(store_of(req), parent, name, mode, rdev,
				    ctx->uid, ctx->gid, &a);

	reply_entry(req, ret, &a);
}

static void fs_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
			mode_t mode)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct stash_attr a;
	int ret = parent == FS_INO_BACKUPS
			  ? backups_mkdir(store_of(req), name, &a)
			  : stash_store_mkdir(store_of(req), parent, name, mode,
					      ctx->uid, ctx->gid, &a);

	reply_entry(req, ret, &a);
}

static void fs_op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
			  const char *name)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct stash_attr a;
	int ret = stash_store_symlink(store_of(req), parent, name, link,
				      ctx->uid, ctx->gid, &a);

	reply_entry(req, ret, &a);
}

static void fs_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		       const char *newname)
{
	struct stash_attr a;
	int ret = stash_store_link(store_of(req), ino, newparent, newname, &a);

	reply_entry(req, ret, &a);
}

/* The virtual entries of the root cannot be removed or moved, like a
 * mount point. */
static bool is_virtual_entry(fuse_ino_t parent, const char *name)
{
	return stash_name_reserved(parent, name);
}

static void fs_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	int ret = is_virtual_entry(parent, name)
			  ? -EBUSY
			  : stash_store_unlink(store_of(req), parent, name);

	fuse_reply_err(req, user_err(ret));
}

static void fs_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	int ret;

	if (parent == FS_INO_BACKUPS)
		ret = backups_rmdir(store_of(req), name);
	else if (is_virtual_entry(parent, name))
		ret = -EBUSY;
	else
		ret = stash_store_rmdir(store_of(req), parent, name);
	fuse_reply_err(req, user_err(ret));
}

static void fs_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
			 fuse_ino_t newparent, const char *newname,
			 unsigned int flags)
{
	unsigned sflags = 0;
	int ret;

	if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (flags & RENAME_NOREPLACE)
		sflags |= STASH_RENAME_NOREPLACE;
	if (flags & RENAME_EXCHANGE)
		sflags |= STASH_RENAME_EXCHANGE;
	/* Other moves into or out of .backups meet the store's EROFS. */
	if (parent == FS_INO_BACKUPS && newparent == FS_INO_BACKUPS)
		ret = backups_rename(store_of(req), name, newname, sflags);
	else if (is_virtual_entry(parent, name) ||
		 is_virtual_entry(newparent, newname))
		ret = -EBUSY;
	else
		ret = stash_store_rename(store_of(req), parent, name, newparent,
					 newname, sflags);
	fuse_reply_err(req, user_err(ret));
}

/* A file of .search: its content as it is now, read-only. */
static void open_virtual(fuse_req_t req, fuse_ino_t ino,
			 struct fuse_file_info *fi)
{
	struct fs_vfile *vf;
	int ret;

	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	ret = ino == FS_INO_STATS ? stats_text(store_of(req), &vf)
				  : fs_search_open(search_of(req), ino, &vf);
	if (ret) {
		reply_err(req, ret);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)vf;
	fi->direct_io = 1; /* its size may change from open to open */
	if (fuse_reply_open(req, fi) == -ENOENT)
		fs_vfile_free(vf);
}

static void fs_op_open(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct stash_file *f;
	int ret;

	if (is_virtual_file(ino)) {
		open_virtual(req, ino, fi);
		return;
	}
	if (stash_ino_snap(ino) &&
	    ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC))) {
		fuse_reply_err(req, EROFS); /* a snapshot's file */
		return;
	}
	ret = stash_file_open(store_of(req), ino, &f);
	if (ret) {
		reply_err(req, ret);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)f;
	/*
	 * Every change goes through this mount, so pages the kernel cached
	 * stay right across opens (and it drops them when size or mtime
	 * change): warm reads need not decrypt again.
	 */
	fi->keep_cache = 1;
	if (fuse_reply_open(req, fi) == -ENOENT) /* interrupted */
		stash_file_release(store_of(req), f);
}

static void fs_op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
			 mode_t mode, struct fuse_file_info *fi)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct stash_store *st = store_of(req);
	struct fuse_entry_param e;
	struct stash_file *f;
	struct stash_attr a;
	int ret = stash_store_mknod(st, parent, name, S_IFREG | (mode & 07777),
				    0, ctx->uid, ctx->gid, &a);

	if (!ret)
		ret = stash_file_open(st, a.ino, &f);
	if (ret) {
		reply_err(req, ret);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)f;
	fi->keep_cache = 1;
	to_entry(&a, &e);
	if (fuse_reply_create(req, &e, fi) == -ENOENT)
		stash_file_release(st, f);
}

static struct stash_file *file_of(struct fuse_file_info *fi)
{
	return (struct stash_file *)(uintptr_t)fi->fh;
}

static void fs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	char *buf;
	ssize_t n;

	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (is_virtual_file(ino)) {
		const struct fs_vfile *vf =
			(const struct fs_vfile *)(uintptr_t)fi->fh;
		size_t start = (uint64_t)off < vf->len ? (size_t)off : vf->len;

		fuse_reply_buf(req, vf->data + start,
			       STASH_MIN(size, vf->len - start));
		return;
	}
	buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = stash_file_read(store_of(req), file_of(fi), buf, size,
			    (uint64_t)off);
	if (n < 0)
		reply_err(req, (int)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static void fs_op_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
			size_t size, off_t off, struct fuse_file_info *fi)
{
	ssize_t n;

	(void)ino;
	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	n = stash_file_write(store_of(req), file_of(fi), buf, size,
			     (uint64_t)off);
	if (n < 0)
		reply_err(req, (int)n);
	else
		fuse_reply_write(req, (size_t)n);
}

static void fs_op_flush(fuse_req_t req, fuse_ino_t ino,
			struct fuse_file_info *fi)
{
	if (is_virtual_file(ino)) {
		fuse_reply_err(req, 0);
		return;
	}
	fuse_reply_err(req,
		       user_err(stash_file_flush(store_of(req), file_of(fi))));
}

static void fs_op_release(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	if (is_virtual_file(ino)) {
		fs_vfile_free((struct fs_vfile *)(uintptr_t)fi->fh);
		fuse_reply_err(req, 0);
		return;
	}
	fuse_reply_err(
		req, user_err(stash_file_release(store_of(req), file_of(fi))));
}

static void fs_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
			struct fuse_file_info *fi)
{
	(void)datasync;
	if (is_virtual_file(ino)) {
		fuse_reply_err(req, 0);
		return;
	}
	fuse_reply_err(req,
		       user_err(stash_file_fsync(store_of(req), file_of(fi))));
}

static void fs_op_opendir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	struct stash_attr a;
	int ret = get_attr(req, ino, &a);

	if (!ret && !S_ISDIR(a.mode))
		ret = -ENOTDIR;
	if (ret) {
		reply_err(req, ret);
		return;
	}
	/* Listings read the catalog from their cookie on: no state. */
	fi->fh = 0;
	fuse_reply_open(req, fi);
}

static void fs_op_releasedir(fuse_req_t req, fuse_ino_t ino,
			     struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

/* A reply buffer for readdir: entries are added until it is full. */
struct dirbuf {
	fuse_req_t req;
	char *buf;
	size_t size, used;
	bool plus;
	uint64_t self; /* the directory listed */
};

static int add_entry(struct dirbuf *d, const char *name,
		     const struct stash_attr *a, uint64_t next)
{
	size_t room = d->size - d->used, n;

	if (d->plus) {
		struct fuse_entry_param e;

		to_entry(a, &e);
		/* "." and "..", and names whose lookup runs a query: the
		 * kernel takes no lookup from the listing. */
		if (a->ino == d->self || fs_search_lookup_only(a->ino))
			e.ino = 0;
		n = fuse_add_direntry_plus(d->req, d->buf + d->used, room, name,
					   &e, (off_t)next);
	} else {
		struct stat st = { .st_ino = a->ino, .st_mode = a->mode };

		n = fuse_add_direntry(d->req, d->buf + d->used, room, name, &st,
				      (off_t)next);
	}
	if (n > room)
		return 1; /* full: stop; the kernel asks again from next */
	d->used += n;
	return 0;
}

/* Cookies: 1 after ".", 2 after "..", then 2 + the entry's row id. */
static int dirent_cb(void *arg, const char *name, const struct stash_attr *a,
		     uint64_t next_off)
{
	return add_entry(arg, name, a, next_off + 2);
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       bool plus)
{
	struct dirbuf d = {
		.req = req, .size = size, .plus = plus, .self = ino
	};
	struct stash_attr self = { 0 };
	int ret = 0;

	d.buf = malloc(size ? size : 1);
	if (!d.buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	/*
	 * "." and ".." carry the directory's own number: glibc hides
	 * entries whose d_ino is 0, and nothing reads d_ino of "..".
	 */
	self.ino = ino;
	self.mode = S_IFDIR;
	if (off < 1 && add_entry(&d, ".", &self, 1))
		goto reply;
	if (off < 2 && add_entry(&d, "..", &self, 2))
		goto reply;
	if (ino == FS_INO_BACKUPS)
		ret = backups_readdir(store_of(req),
				      off > 2 ? (uint64_t)off - 2 : 0,
				      dirent_cb, &d);
	else if (fs_search_owns(ino))
		ret = fs_search_readdir(search_of(req), ino,
					off > 2 ? (uint64_t)off - 2 : 0,
					dirent_cb, &d);
	else
		ret = stash_store_readdir(store_of(req), ino,
					  off > 2 ? (uint64_t)off - 2 : 0,
					  dirent_cb, &d);
reply:
	if (ret && d.used == 0)
		reply_err(req, ret);
	else
		fuse_reply_buf(req, d.buf, d.used);
	free(d.buf);
}

static void fs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size,
			  off_t off, struct fuse_file_info *fi)
{
	(void)fi;
	do_readdir(req, ino, size, off, false);
}

static void fs_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			      off_t off, struct fuse_file_info *fi)
{
	(void)fi;
	do_readdir(req, ino, size, off, true);
}

static void fs_op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;
	int ret = stash_store_statfs(store_of(req), &sv);

	(void)ino;
	if (ret)
		reply_err(req, ret);
	else
		fuse_reply_statfs(req, &sv);
}

static void fs_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			   const char *value, size_t size, int flags)
{
	/* `stashfs gc MNT`: gc runs inside this request (value: options). */
	if (ino == FUSE_ROOT_ID && !strcmp(name, "user.stashfs.gc")) {
		fuse_reply_err(req, user_err(stash_store_gc_json(store_of(req),
								 value, size)));
		return;
	}
	/* `stashfs reindex MNT`: the index is rebuilt in the background. */
	if (ino == FUSE_ROOT_ID && !strcmp(name, "user.stashfs.reindex")) {
		fuse_reply_err(req,
			       user_err(stash_store_reindex(store_of(req))));
		return;
	}
	fuse_reply_err(req,
		       user_err(stash_store_setxattr(store_of(req), ino, name,
						     value, size, flags)));
}

/* The root answers this unlisted xattr with the store's figures, so that
 * `stashfs stats MNT` can ask a running daemon. */
#define STATS_XATTR "user.stashfs.stats"

static void reply_stats(fuse_req_t req, size_t size)
{
	char *json;
	size_t len;
	int ret = stash_store_stats_json(store_of(req), &json);

	if (ret) {
		reply_err(req, ret);
		return;
	}
	len = strlen(json);
	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (size < len)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, json, len);
	free(json);
}

static void fs_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			   size_t size)
{
	char *buf;
	ssize_t n;

	if (ino == FUSE_ROOT_ID && !strcmp(name, STATS_XATTR)) {
		reply_stats(req, size);
		return;
	}
	/* The running gc's progress, else the last gc's report. */
	if (ino == FUSE_ROOT_ID && !strcmp(name, "user.stashfs.gc")) {
		char *json;
		int ret = stash_store_gc_status_json(store_of(req), &json);

		if (ret) {
			reply_err(req, ret);
		} else if (size == 0) {
			fuse_reply_xattr(req, strlen(json));
		} else if (size < strlen(json)) {
			fuse_reply_err(req, ERANGE);
		} else {
			fuse_reply_buf(req, json, strlen(json));
		}
		free(json);
		return;
	}
	buf = size ? malloc(size) : NULL;
	if (size && !buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	/* user.stashfs.path and .line: where a file (or record) lives. */
	n = fs_search_getxattr(search_of(req), ino, name, buf, size);
	if (n == -ENODATA && !fs_search_owns(ino))
		n = stash_store_getxattr(store_of(req), ino, name, buf, size);
	if (n < 0)
		reply_err(req, (int)n);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static void fs_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	char *buf = size ? malloc(size) : NULL;
	ssize_t n;

	if (size && !buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = stash_store_listxattr(store_of(req), ino, buf, size);
	if (n < 0)
		reply_err(req, (int)n);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static void fs_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	fuse_reply_err(req, user_err(stash_store_removexattr(store_of(req), ino,
							     name)));
}

/* The session ends: what the virtual folders kept goes (the store is the
 * caller's). */
static void fs_op_destroy(void *userdata)
{
	struct fs_ctx *ctx = userdata;

	fs_search_free(ctx->search);
	free(ctx);
}

static const struct fuse_lowlevel_ops fs_ops = {
	.init = fs_op_init,
	.destroy = fs_op_destroy,
	.lookup = fs_op_lookup,
	.forget = fs_op_forget,
	.forget_multi = fs_op_forget_multi,
	.getattr = fs_op_getattr,
	.setattr = fs_op_setattr,
	.readlink = fs_op_readlink,
	.mknod = fs_op_mknod,
	.mkdir = fs_op_mkdir,
	.symlink = fs_op_symlink,
	.link = fs_op_link,
	.unlink = fs_op_unlink,
	.rmdir = fs_op_rmdir,
	.rename = fs_op_rename,
	.open = fs_op_open,
	.create = fs_op_create,
	.read = fs_op_read,
	.write = fs_op_write,
	.flush = fs_op_flush,
	.release = fs_op_release,
	.fsync = fs_op_fsync,
	.opendir = fs_op_opendir,
	.readdir = fs_op_readdir,
	.readdirplus = fs_op_readdirplus,
	.releasedir = fs_op_releasedir,
	.statfs = fs_op_statfs,
	.setxattr = fs_op_setxattr,
	.getxattr = fs_op_getxattr,
	.listxattr = fs_op_listxattr,
	.removexattr = fs_op_removexattr,
};

struct fuse_session *stash_fs_session_new(struct stash_store *st,
					  struct fuse_args *args)
{
	struct fs_ctx *ctx = calloc(1, sizeof(*ctx));
	struct fuse_session *se;

	if (!ctx)
		return NULL;
	ctx->st = st;
	ctx->search = fs_search_new(st);
	if (!ctx->search) {
		free(ctx);
		return NULL;
	}
	se = fuse_session_new(args, &fs_ops, sizeof(fs_ops), ctx);
	if (!se)
		fs_op_destroy(ctx);
	return se;
}

int stash_fs_loop(struct fuse_session *se)
{
	struct fuse_loop_config *cfg = fuse_loop_cfg_create();
	int ret;

	if (!cfg)
		return -ENOMEM;
	fuse_loop_cfg_set_max_threads(cfg, 16);
	fuse_loop_cfg_set_idle_threads(cfg, 8);
	ret = fuse_session_loop_mt(se, cfg);
	fuse_loop_cfg_destroy(cfg);
	return ret < 0 ? ret : 0;
}
