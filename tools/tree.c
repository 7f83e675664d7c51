/*
 * tree.c - read-only trees and writable sinks over a directory on disk or
 * a directory inside an opened store (see tree.h).
 *
 * On disk, a sink resolves every path one component at a time with
 * O_PATH | O_NOFOLLOW | O_DIRECTORY and then works relative to the parent
 * directory's descriptor, so a symlink anywhere in a path (one an archive
 * just created, say) is never followed. A read-only tree trusts the paths
 * its own walk produced and resolves user-given ones the same careful way.
 * In a store there is nothing to follow: every lookup is by name in a
 * directory inode.
 */
#include "tree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cli.h"

enum tree_kind { KIND_DIR, KIND_STORE };

struct tree {
	enum tree_kind kind;
	int rootfd;		/* KIND_DIR: the root, O_PATH */
	char root[PATH_MAX];	/* KIND_DIR: its path, for the xattr calls */
	bool hide_virtual;	/* KIND_DIR: leave out .backups & co */
	struct stash_store *st; /* KIND_STORE */
	uint64_t root_ino;	/* KIND_STORE */
};

struct tree_file {
	int fd;			/* KIND_DIR, else -1 */
	struct stash_store *st; /* KIND_STORE */
	struct stash_file *f;	/* KIND_STORE */
	uint64_t off;		/* next byte to read */
};

struct sink {
	enum tree_kind kind;
	int rootfd;		/* KIND_DIR: O_PATH */
	struct stash_store *st; /* KIND_STORE */
	uint64_t root_ino;	/* KIND_STORE */
};

struct sink_file {
	int fd;			/* KIND_DIR, else -1 */
	struct stash_store *st; /* KIND_STORE */
	struct stash_file *f;	/* KIND_STORE */
	uint64_t off;		/* bytes written */
	int err;		/* first write error */
};

/* The names fs/ shows at a mount's root that are not the tree. */
static const char *const virtual_names[] = { ".backups", ".search", ".stats",
					     NULL };

int tree_join(char *out, size_t size, const char *dir, const char *name)
{
	int n = *dir && *name ? snprintf(out, size, "%s/%s", dir, name)
			      : snprintf(out, size, "%s", *dir ? dir : name);

	return n >= 0 && (size_t)n < size ? 0 : -ENAMETOOLONG;
}

static void attr_from_stat(const struct stat *sb, struct tree_attr *a)
{
	*a = (struct tree_attr){
		.ino = sb->st_ino,
		.mode = sb->st_mode,
		.nlink = (uint32_t)sb->st_nlink,
		.uid = sb->st_uid,
		.gid = sb->st_gid,
		.size = (uint64_t)sb->st_size,
		.rdev = sb->st_rdev,
		.atime =
			sb->st_atim.tv_sec * 1000000000LL + sb->st_atim.tv_nsec,
		.mtime =
			sb->st_mtim.tv_sec * 1000000000LL + sb->st_mtim.tv_nsec,
		.ctime =
			sb->st_ctim.tv_sec * 1000000000LL + sb->st_ctim.tv_nsec,
	};
}

static void attr_from_store(const struct stash_attr *s, struct tree_attr *a)
{
	*a = (struct tree_attr){
		.ino = s->ino,
		.mode = s->mode,
		.nlink = s->nlink,
		.uid = s->uid,
		.gid = s->gid,
		.size = s->size,
		.rdev = s->rdev,
		.atime = s->atime,
		.mtime = s->mtime,
		.ctime = s->ctime,
	};
}

/* ---- resolving paths ---- */

/*
 * Open the directory holding path without following any symlink; *name
 * is its last component (a pointer into path). The root itself is
 * (root, ".").
 */
static int open_parent(int rootfd, const char *path, int *dirfd,
		       const char **name)
{
	char comp[NAME_MAX + 1];
	const char *p = path, *slash;
	int fd = openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	while ((slash = strchr(p, '/'))) {
		size_t len = (size_t)(slash - p);
		int next;

		if (len == 0 || len > NAME_MAX) {
			close(fd);
			return -EINVAL;
		}
		memcpy(comp, p, len);
		comp[len] = '\0';
		next = openat(fd, comp,
			      O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close(fd);
		if (next < 0)
			return errno == ELOOP ? -ENOTDIR : -errno;
		fd = next;
		p = slash + 1;
	}
	*dirfd = fd;
	*name = *p ? p : ".";
	return 0;
}

/* Look path up from root in a store; intermediate names must be
 * directories. With parent non-NULL, stop one short: *parent is the
 * directory holding path's last component, *name that component. */
static int store_resolve(struct stash_store *st, uint64_t root,
			 const char *path, struct stash_attr *out,
			 uint64_t *parent, const char **name)
{
	char comp[STASH_NAME_MAX + 1];
	const char *p = path, *slash;
	struct stash_attr a;
	int ret = stash_store_getattr(st, root, &a);

	while (!ret && (slash = strchr(p, '/'))) {
		size_t len = (size_t)(slash - p);

		if (len == 0 || len > STASH_NAME_MAX)
			return -EINVAL;
		if (!S_ISDIR(a.mode))
			return -ENOTDIR;
		memcpy(comp, p, len);
		comp[len] = '\0';
		ret = stash_store_lookup(st, a.ino, comp, &a);
		p = slash + 1;
	}
	if (ret)
		return ret;
	if (parent) {
		if (!S_ISDIR(a.mode))
			return -ENOTDIR;
		*parent = a.ino;
		*name = p;
		return *p ? 0 : -EINVAL;
	}
	if (!*p) {
		*out = a;
		return 0;
	}
	if (!S_ISDIR(a.mode))
		return -ENOTDIR;
	return stash_store_lookup(st, a.ino, p, out);
}

/* ---- read-only trees ---- */

int tree_open_dir(struct tree **out, const char *dir, bool hide_virtual)
{
	struct tree *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->kind = KIND_DIR;
	t->hide_virtual = hide_virtual;
	if (!realpath(dir, t->root)) {
		int ret = -errno;

		free(t);
		return ret;
	}
	t->rootfd = open(t->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (t->rootfd < 0) {
		int ret = -errno;

		free(t);
		return ret;
	}
	*out = t;
	return 0;
}

int tree_open_store(struct tree **out, struct stash_store *st, uint64_t root)
{
	struct tree *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->kind = KIND_STORE;
	t->rootfd = -1;
	t->st = st;
	t->root_ino = root;
	*out = t;
	return 0;
}

void tree_free(struct tree *t)
{
	if (!t)
		return;
	if (t->rootfd >= 0)
		close(t->rootfd);
	free(t);
}

int tree_stat(struct tree *t, const char *path, struct tree_attr *out)
{
	struct stash_attr sa;
	struct stat sb;
	const char *name;
	int dirfd, ret;

	if (t->kind == KIND_STORE) {
		ret = store_resolve(t->st, t->root_ino, path, &sa, NULL, NULL);
		if (!ret)
			attr_from_store(&sa, out);
		return ret;
	}
	ret = open_parent(t->rootfd, path, &dirfd, &name);
	if (ret)
		return ret;
	ret = fstatat(dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) ? -errno : 0;
	close(dirfd);
	if (!ret)
		attr_from_stat(&sb, out);
	return ret;
}

/* A growing array of entries. */
struct dirent_list {
	struct tree_dirent *d;
	size_t n, cap;
	int err;
};

static int list_add(struct dirent_list *l, const char *name,
		    const struct tree_attr *a)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 32;
		struct tree_dirent *d = reallocarray(l->d, cap, sizeof(*d));

		if (!d)
			return -ENOMEM;
		l->d = d;
		l->cap = cap;
	}
	l->d[l->n].name = strdup(name);
	if (!l->d[l->n].name)
		return -ENOMEM;
	l->d[l->n++].attr = *a;
	return 0;
}

/* Runs under the catalog lock: no store calls in here. */
static int list_store_entry(void *arg, const char *name,
			    const struct stash_attr *sa, uint64_t next_off)
{
	struct dirent_list *l = arg;
	struct tree_attr a;

	(void)next_off;
	attr_from_store(sa, &a);
	l->err = list_add(l, name, &a);
	return l->err;
}

static int list_dir(struct tree *t, const char *path, struct dirent_list *l)
{
	int fd = openat(t->rootfd, *path ? path : ".",
			O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct dirent *e;
	DIR *d;

	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while (!l->err && (errno = 0, e = readdir(d))) {
		struct tree_attr a;
		struct stat sb;
		bool skip = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");

		for (int i = 0; !*path && t->hide_virtual && virtual_names[i];
		     i++)
			skip |= !strcmp(e->d_name, virtual_names[i]);
		if (skip)
			continue;
		if (fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW)) {
			l->err = -errno;
			break;
		}
		attr_from_stat(&sb, &a);
		l->err = list_add(l, e->d_name, &a);
	}
	if (!l->err && errno)
		l->err = -errno;
	closedir(d);
	return l->err;
}

static int by_name(const void *x, const void *y)
{
	const struct tree_dirent *a = x, *b = y;

	return strcmp(a->name, b->name);
}

int tree_list(struct tree *t, const char *path, const struct tree_attr *a,
	      struct tree_dirent **out, size_t *n)
{
	struct dirent_list l = { 0 };
	int ret;

	if (t->kind == KIND_STORE) {
		ret = stash_store_readdir(t->st, a->ino, 0, list_store_entry,
					  &l);
		if (!ret)
			ret = l.err;
	} else {
		ret = list_dir(t, path, &l);
	}
	if (ret) {
		tree_dirents_free(l.d, l.n);
		return ret;
	}
	if (l.n)
		qsort(l.d, l.n, sizeof(*l.d), by_name);
	*out = l.d;
	*n = l.n;
	return 0;
}

void tree_dirents_free(struct tree_dirent *d, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(d[i].name);
	free(d);
}

int tree_readlink(struct tree *t, const char *path, const struct tree_attr *a,
		  char *buf, size_t size)
{
	ssize_t n;

	if (t->kind == KIND_STORE)
		n = stash_store_readlink(t->st, a->ino, buf, size);
	else if ((n = readlinkat(t->rootfd, path, buf, size)) < 0)
		n = -errno;
	if (n < 0)
		return (int)n;
	if ((size_t)n >= size)
		return -ENAMETOOLONG;
	buf[n] = '\0';
	return 0;
}

/* listxattr or getxattr (name non-NULL) of an entry, as -errno. */
static ssize_t xattr_call(struct tree *t, const char *full,
			  const struct tree_attr *a, const char *name,
			  void *buf, size_t size)
{
	ssize_t n;

	if (t->kind == KIND_STORE)
		return name ? stash_store_getxattr(t->st, a->ino, name, buf,
						   size)
			    : stash_store_listxattr(t->st, a->ino, buf, size);
	n = name ? lgetxattr(full, name, buf, size)
		 : llistxattr(full, buf, size);
	return n < 0 ? -errno : n;
}

/* The whole value (or name list) into a malloc'd buffer; the size may
 * change between the two calls, so retry on -ERANGE. */
static int xattr_fetch(struct tree *t, const char *path,
		       const struct tree_attr *a, const char *name, char **out,
		       size_t *len)
{
	char full[PATH_MAX] = "";
	char *buf = NULL;
	ssize_t n = -ERANGE;

	if (t->kind == KIND_DIR && tree_join(full, sizeof(full), t->root, path))
		return -ENAMETOOLONG;
	for (int tries = 0; n == -ERANGE && tries < 4; tries++) {
		n = xattr_call(t, full, a, name, NULL, 0);
		if (n < 0)
			break;
		free(buf);
		buf = malloc((size_t)n + 1);
		if (!buf)
			return -ENOMEM;
		if (n > 0)
			n = xattr_call(t, full, a, name, buf, (size_t)n);
	}
	if (n < 0) {
		free(buf);
		return (int)n;
	}
	*out = buf;
	*len = (size_t)n;
	return 0;
}

/* Split a NUL-separated name list and fetch each value. */
static int fetch_all(struct tree *t, const char *path,
		     const struct tree_attr *a, char *names, size_t len,
		     struct xattr_list *out)
{
	int ret = 0;

	for (size_t i = 0; !ret && i < len;) {
		const char *name = names + i;
		size_t l = strnlen(name, len - i);
		char *value;
		size_t vlen;

		i += l + 1;
		if (!strncmp(name, "system.", 7))
			continue;
		ret = xattr_fetch(t, path, a, name, &value, &vlen);
		if (ret == -ENODATA) { /* removed meanwhile */
			ret = 0;
			continue;
		}
		if (!ret)
			ret = xattr_list_add(out, name, value, vlen);
		free(value);
	}
	return ret;
}

int tree_xattrs(struct tree *t, const char *path, const struct tree_attr *a,
		struct xattr_list *out)
{
	char *names = NULL;
	size_t len = 0;
	int ret = xattr_fetch(t, path, a, NULL, &names, &len);

	memset(out, 0, sizeof(*out));
	if (ret == -ENOTSUP)
		return 0;
	if (!ret)
		ret = fetch_all(t, path, a, names, len, out);
	free(names);
	if (ret)
		xattr_list_release(out);
	else
		xattr_list_sort(out);
	return ret;
}

int xattr_list_add(struct xattr_list *x, const char *name, const void *value,
		   size_t len)
{
	struct xattr *v = reallocarray(x->v, x->n + 1, sizeof(*v));

	if (!v)
		return -ENOMEM;
	x->v = v;
	v += x->n;
	v->name = strdup(name);
	v->value = malloc(len + 1);
	v->len = len;
	if (!v->name || !v->value) {
		free(v->name);
		free(v->value);
		return -ENOMEM;
	}
	if (len)
		memcpy(v->value, value, len);
	x->n++;
	return 0;
}

static int by_xattr_name(const void *a, const void *b)
{
	return strcmp(((const struct xattr *)a)->name,
		      ((const struct xattr *)b)->name);
}

void xattr_list_sort(struct xattr_list *x)
{
	if (x->n)
		qsort(x->v, x->n, sizeof(*x->v), by_xattr_name);
}

void xattr_list_release(struct xattr_list *x)
{
	for (size_t i = 0; i < x->n; i++) {
		free(x->v[i].name);
		free(x->v[i].value);
	}
	free(x->v);
	memset(x, 0, sizeof(*x));
}

static bool xattrs_equal(const struct xattr_list *a, const struct xattr_list *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i].name, b->v[i].name) ||
		    a->v[i].len != b->v[i].len ||
		    memcmp(a->v[i].value, b->v[i].value, a->v[i].len))
			return false;
	return true;
}

int tree_file_open(struct tree *t, const char *path, const struct tree_attr *a,
		   struct tree_file **out)
{
	struct tree_file *f = calloc(1, sizeof(*f));
	int ret = 0;

	if (!f)
		return -ENOMEM;
	f->fd = -1;
	if (t->kind == KIND_STORE) {
		f->st = t->st;
		ret = stash_file_open(t->st, a->ino, &f->f);
	} else {
		f->fd = openat(t->rootfd, path,
			       O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (f->fd < 0)
			ret = -errno;
	}
	if (ret) {
		free(f);
		return ret;
	}
	*out = f;
	return 0;
}

ssize_t tree_file_read(struct tree_file *f, void *buf, size_t size)
{
	ssize_t n;

	if (f->st)
		n = stash_file_read(f->st, f->f, buf, size, f->off);
	else
		while ((n = read(f->fd, buf, size)) < 0 && errno == EINTR)
			;
	if (n < 0)
		return f->st ? n : -errno;
	f->off += (uint64_t)n;
	return n;
}

void tree_file_close(struct tree_file *f)
{
	if (!f)
		return;
	if (f->st)
		stash_file_release(f->st, f->f);
	else
		close(f->fd);
	free(f);
}

int tree_walk(struct tree *t, const char *path, const struct tree_attr *a,
	      tree_walk_fn fn, void *arg)
{
	struct tree_dirent *d = NULL;
	char *child = NULL;
	size_t n = 0;
	int ret = fn(arg, path, a);

	if (ret || !S_ISDIR(a->mode))
		return ret;
	ret = tree_list(t, path, a, &d, &n);
	if (ret)
		return ret;
	child = malloc(TREE_PATH_MAX);
	if (!child)
		ret = -ENOMEM;
	for (size_t i = 0; !ret && i < n; i++) {
		ret = tree_join(child, TREE_PATH_MAX, path, d[i].name);
		if (!ret)
			ret = tree_walk(t, child, &d[i].attr, fn, arg);
	}
	free(child);
	tree_dirents_free(d, n);
	return ret;
}

int tree_path_cmp(const char *a, const char *b)
{
	const unsigned char *x = (const void *)a, *y = (const void *)b;

	while (*x && *x == *y) {
		x++;
		y++;
	}
	if (*x == *y)
		return 0;
	if (!*x || (*x == '/' && *y))
		return -1;
	if (!*y || *y == '/')
		return 1;
	return *x < *y ? -1 : 1;
}

int tree_nodes_add(struct tree_nodes *l, const char *path,
		   const struct tree_attr *a)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		struct tree_node *v = reallocarray(l->v, cap, sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n].path = strdup(path);
	if (!l->v[l->n].path)
		return -ENOMEM;
	l->v[l->n++].attr = *a;
	return 0;
}

static int collect_one(void *arg, const char *path, const struct tree_attr *a)
{
	return tree_nodes_add(arg, path, a);
}

int tree_collect(struct tree *t, const char *path, struct tree_nodes *out)
{
	struct tree_attr a;
	int ret = tree_stat(t, path, &a);

	memset(out, 0, sizeof(*out));
	if (!ret)
		ret = tree_walk(t, path, &a, collect_one, out);
	if (ret)
		tree_nodes_release(out);
	return ret;
}

void tree_nodes_release(struct tree_nodes *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].path);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

ssize_t tree_nodes_find(const struct tree_nodes *l, const char *path)
{
	size_t lo = 0, hi = l->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = tree_path_cmp(l->v[mid].path, path);

		if (c == 0)
			return (ssize_t)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

#define CMP_BUF (256u << 10)

/* Up to size bytes: fewer only at the end of the file. */
static ssize_t read_full(struct tree_file *f, char *buf, size_t size)
{
	size_t got = 0;

	while (got < size) {
		ssize_t n = tree_file_read(f, buf + got, size - got);

		if (n < 0)
			return n;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* 1 if the bytes of two regular files differ. */
static int content_differs(struct tree *ta, const char *pa,
			   const struct tree_attr *a, struct tree *tb,
			   const char *pb, const struct tree_attr *b)
{
	struct tree_file *fa = NULL, *fb = NULL;
	char *ba = malloc(CMP_BUF), *bb = malloc(CMP_BUF);
	int ret = ba && bb ? 0 : -ENOMEM;

	if (!ret)
		ret = tree_file_open(ta, pa, a, &fa);
	if (!ret)
		ret = tree_file_open(tb, pb, b, &fb);
	while (!ret) {
		ssize_t na = read_full(fa, ba, CMP_BUF);
		ssize_t nb = read_full(fb, bb, CMP_BUF);

		if (na < 0 || nb < 0) {
			ret = (int)(na < 0 ? na : nb);
			break;
		}
		if (na != nb || memcmp(ba, bb, (size_t)na))
			ret = 1;
		else if (na == 0)
			break;
	}
	tree_file_close(fa);
	tree_file_close(fb);
	free(ba);
	free(bb);
	return ret;
}

int tree_differs(struct tree *ta, const char *pa, const struct tree_attr *a,
		 struct tree *tb, const char *pb, const struct tree_attr *b,
		 unsigned flags)
{
	struct xattr_list xa, xb;
	char la[PATH_MAX] = "", lb[PATH_MAX] = "";
	bool dir = S_ISDIR(a->mode);
	int ret;

	if (a->mode != b->mode || a->uid != b->uid || a->gid != b->gid)
		return 1;
	if (!dir || (flags & TREE_CMP_DIR_TIMES))
		if (a->mtime != b->mtime)
			return 1;
	if ((S_ISCHR(a->mode) || S_ISBLK(a->mode)) && a->rdev != b->rdev)
		return 1;
	if (S_ISREG(a->mode) &&
	    (a->size != b->size ||
	     ((flags & TREE_CMP_NLINK) && a->nlink != b->nlink)))
		return 1;
	if (S_ISLNK(a->mode)) {
		ret = tree_readlink(ta, pa, a, la, sizeof(la));
		if (!ret)
			ret = tree_readlink(tb, pb, b, lb, sizeof(lb));
		if (ret || strcmp(la, lb))
			return ret ? ret : 1;
	}
	ret = tree_xattrs(ta, pa, a, &xa);
	if (ret)
		return ret;
	ret = tree_xattrs(tb, pb, b, &xb);
	if (!ret)
		ret = !xattrs_equal(&xa, &xb);
	xattr_list_release(&xa);
	xattr_list_release(&xb);
	if (ret || !S_ISREG(a->mode))
		return ret;
	/* Every change to a stored inode sets its ctime, and a snapshot
	 * keeps an inode's number (its low 40 bits) and ctime. */
	if (stash_ino_base(a->ino) == stash_ino_base(b->ino) &&
	    a->ctime == b->ctime)
		return 0;
	return content_differs(ta, pa, a, tb, pb, b);
}

static size_t ino_hash(uint64_t ino, size_t cap)
{
	return (size_t)((ino * UINT64_C(0x9e3779b97f4a7c15)) >> 32) & (cap - 1);
}

const char *ino_map_get(const struct ino_map *m, uint64_t ino)
{
	if (!m->cap)
		return NULL;
	for (size_t i = ino_hash(ino, m->cap);; i = (i + 1) & (m->cap - 1)) {
		if (m->slots[i].ino == ino && m->slots[i].path)
			return m->slots[i].path;
		if (!m->slots[i].path)
			return NULL;
	}
}

static void ino_map_insert(struct ino_slot *slots, size_t cap,
			   struct ino_slot s)
{
	size_t i = ino_hash(s.ino, cap);

	while (slots[i].path)
		i = (i + 1) & (cap - 1);
	slots[i] = s;
}

int ino_map_put(struct ino_map *m, uint64_t ino, const char *path)
{
	struct ino_slot s = { ino, strdup(path) };

	if (!s.path)
		return -ENOMEM;
	if (2 * (m->n + 1) > m->cap) {
		size_t cap = m->cap ? 2 * m->cap : 64;
		struct ino_slot *slots = calloc(cap, sizeof(*slots));

		if (!slots) {
			free(s.path);
			return -ENOMEM;
		}
		for (size_t i = 0; i < m->cap; i++)
			if (m->slots[i].path)
				ino_map_insert(slots, cap, m->slots[i]);
		free(m->slots);
		m->slots = slots;
		m->cap = cap;
	}
	ino_map_insert(m->slots, m->cap, s);
	m->n++;
	return 0;
}

void ino_map_release(struct ino_map *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->slots[i].path);
	free(m->slots);
	memset(m, 0, sizeof(*m));
}

/* ---- sinks ---- */

int sink_open_dir(struct sink **out, const char *dir)
{
	struct sink *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->kind = KIND_DIR;
	s->rootfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (s->rootfd < 0) {
		int ret = -errno;

		free(s);
		return ret;
	}
	*out = s;
	return 0;
}

int sink_open_store(struct sink **out, struct stash_store *st, uint64_t dir)
{
	struct sink *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->kind = KIND_STORE;
	s->rootfd = -1;
	s->st = st;
	s->root_ino = dir;
	*out = s;
	return 0;
}

void sink_free(struct sink *s)
{
	if (!s)
		return;
	if (s->rootfd >= 0)
		close(s->rootfd);
	free(s);
}

/* The parent of path in a store sink, and its last name. */
static int sink_parent(struct sink *s, const char *path, uint64_t *parent,
		       const char **name)
{
	return store_resolve(s->st, s->root_ino, path, NULL, parent, name);
}

int sink_stat(struct sink *s, const char *path, struct tree_attr *out)
{
	struct tree t = { .kind = s->kind,
			  .rootfd = s->rootfd,
			  .st = s->st,
			  .root_ino = s->root_ino };

	return tree_stat(&t, path, out);
}

int sink_readlink(struct sink *s, const char *path, char *buf, size_t size)
{
	struct tree_attr a;
	const char *name;
	ssize_t n;
	int dirfd, ret;

	if (s->kind == KIND_STORE) {
		ret = sink_stat(s, path, &a);
		if (ret)
			return ret;
		n = stash_store_readlink(s->st, a.ino, buf, size);
	} else {
		ret = open_parent(s->rootfd, path, &dirfd, &name);
		if (ret)
			return ret;
		n = readlinkat(dirfd, name, buf, size);
		if (n < 0)
			n = -errno;
		close(dirfd);
	}
	if (n < 0)
		return (int)n;
	if ((size_t)n >= size)
		return -ENAMETOOLONG;
	buf[n] = '\0';
	return 0;
}

/* The kinds of entry a sink creates. */
enum make { MAKE_DIR, MAKE_SYMLINK, MAKE_NODE, MAKE_FILE };

static int make(struct sink *s, const char *path, enum make what, uint32_t mode,
		uint64_t rdev, const char *target, int *fd_out,
		struct stash_attr *sa_out)
{
	uid_t uid = geteuid();
	gid_t gid = getegid();
	struct stash_attr sa;
	const char *name;
	uint64_t parent;
	int dirfd, ret;

	if (what == MAKE_SYMLINK && !target)
		return -EINVAL;
	if (s->kind == KIND_STORE) {
		ret = sink_parent(s, path, &parent, &name);
		if (ret)
			return ret;
		switch (what) {
		case MAKE_DIR:
			return stash_store_mkdir(s->st, parent, name,
						 mode & 07777, uid, gid, &sa);
		case MAKE_SYMLINK:
			return stash_store_symlink(s->st, parent, name, target,
						   uid, gid, &sa);
		case MAKE_NODE:
			return stash_store_mknod(s->st, parent, name, mode,
						 rdev, uid, gid, &sa);
		case MAKE_FILE:
			return stash_store_mknod(s->st, parent, name,
						 S_IFREG | 0600, 0, uid, gid,
						 sa_out);
		}
		return -EINVAL;
	}
	ret = open_parent(s->rootfd, path, &dirfd, &name);
	if (ret)
		return ret;
	switch (what) {
	case MAKE_DIR:
		ret = mkdirat(dirfd, name, mode & 07777);
		break;
	case MAKE_SYMLINK:
		ret = symlinkat(target, dirfd, name);
		break;
	case MAKE_NODE:
		ret = mknodat(dirfd, name, mode, (dev_t)rdev);
		break;
	case MAKE_FILE:
		ret = *fd_out = openat(dirfd, name,
				       O_WRONLY | O_CREAT | O_EXCL |
					       O_NOFOLLOW | O_CLOEXEC,
				       0600);
		break;
	}
	ret = ret < 0 ? -errno : 0;
	close(dirfd);
	return ret;
}

int sink_mkdir(struct sink *s, const char *path, uint32_t mode)
{
	return make(s, path, MAKE_DIR, mode, 0, NULL, NULL, NULL);
}

int sink_symlink(struct sink *s, const char *path, const char *target)
{
	return make(s, path, MAKE_SYMLINK, 0, 0, target, NULL, NULL);
}

int sink_mknod(struct sink *s, const char *path, uint32_t mode, uint64_t rdev)
{
	if (S_ISREG(mode) || S_ISDIR(mode) || S_ISLNK(mode))
		return -EINVAL;
	return make(s, path, MAKE_NODE, mode, rdev, NULL, NULL, NULL);
}

int sink_create(struct sink *s, const char *path, struct sink_file **out)
{
	struct sink_file *f = calloc(1, sizeof(*f));
	struct stash_attr sa;
	int ret;

	if (!f)
		return -ENOMEM;
	f->fd = -1;
	ret = make(s, path, MAKE_FILE, 0, 0, NULL, &f->fd, &sa);
	if (!ret && s->kind == KIND_STORE) {
		f->st = s->st;
		ret = stash_file_open(s->st, sa.ino, &f->f);
	}
	if (ret) {
		free(f);
		return ret;
	}
	*out = f;
	return 0;
}

int sink_write(struct sink_file *f, const void *buf, size_t len)
{
	const char *p = buf;

	while (!f->err && len) {
		ssize_t n =
			f->st ? stash_file_write(f->st, f->f, p, len, f->off)
			      : write(f->fd, p, len);

		if (n < 0 && !f->st && errno == EINTR)
			continue;
		if (n <= 0)
			f->err = n < 0 ? (f->st ? (int)n : -errno) : -EIO;
		else {
			p += n;
			len -= (size_t)n;
			f->off += (uint64_t)n;
		}
	}
	return f->err;
}

int sink_close(struct sink_file *f)
{
	int ret;

	if (!f)
		return 0;
	ret = f->err;
	if (f->st) {
		int err = stash_file_release(f->st, f->f);

		ret = ret ? ret : err;
	} else if (close(f->fd) < 0 && !ret) {
		ret = -errno;
	}
	free(f);
	return ret;
}

int sink_link(struct sink *s, const char *existing, const char *path)
{
	struct stash_attr sa;
	struct tree_attr a;
	const char *name, *oname;
	uint64_t parent;
	int dirfd, odirfd, ret;

	if (s->kind == KIND_STORE) {
		ret = sink_stat(s, existing, &a);
		if (!ret && S_ISDIR(a.mode))
			ret = -EPERM;
		if (!ret)
			ret = sink_parent(s, path, &parent, &name);
		return ret ? ret
			   : stash_store_link(s->st, a.ino, parent, name, &sa);
	}
	ret = open_parent(s->rootfd, existing, &odirfd, &oname);
	if (ret)
		return ret;
	ret = open_parent(s->rootfd, path, &dirfd, &name);
	if (!ret) {
		ret = linkat(odirfd, oname, dirfd, name, 0) ? -errno : 0;
		close(dirfd);
	}
	close(odirfd);
	return ret;
}

int sink_setxattr(struct sink *s, const char *path, const char *name,
		  const void *value, size_t len)
{
	char proc[64 + NAME_MAX];
	struct tree_attr a;
	const char *last;
	int dirfd, ret;

	if (s->kind == KIND_STORE) {
		ret = sink_stat(s, path, &a);
		return ret ? ret
			   : stash_store_setxattr(s->st, a.ino, name, value,
						  len, 0);
	}
	ret = open_parent(s->rootfd, path, &dirfd, &last);
	if (ret)
		return ret;
	/* No lsetxattrat: name the entry through the parent's descriptor. */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d/%s", dirfd, last);
	ret = lsetxattr(proc, name, value, len, 0) ? -errno : 0;
	close(dirfd);
	return ret;
}

ssize_t sink_getxattr(struct sink *s, const char *path, const char *name,
		      void *buf, size_t size)
{
	char proc[64 + NAME_MAX];
	struct tree_attr a;
	const char *last;
	ssize_t n;
	int dirfd, ret;

	if (s->kind == KIND_STORE) {
		ret = sink_stat(s, path, &a);
		return ret ? ret
			   : stash_store_getxattr(s->st, a.ino, name, buf,
						  size);
	}
	ret = open_parent(s->rootfd, path, &dirfd, &last);
	if (ret)
		return ret;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d/%s", dirfd, last);
	n = lgetxattr(proc, name, buf, size);
	if (n < 0)
		n = -errno;
	close(dirfd);
	return n;
}

int sink_replace_xattrs(struct sink *s, const char *path,
			const struct xattr_list *x)
{
	struct tree_attr a = { 0 };
	struct xattr_list cur = { 0 };
	struct tree t = { .kind = s->kind, .rootfd = -1, .st = s->st };
	char proc[64 + NAME_MAX];
	const char *last = NULL;
	int dirfd = -1, ret;

	if (s->kind == KIND_DIR) {
		ret = open_parent(s->rootfd, path, &dirfd, &last);
		if (ret)
			return ret;
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d/%s", dirfd,
			 last);
		/* The tree reads proc + "/" + "": an empty relative path. */
		snprintf(t.root, sizeof(t.root), "%s", proc);
		ret = tree_xattrs(&t, "", &a, &cur);
	} else {
		ret = sink_stat(s, path, &a);
		if (!ret)
			ret = tree_xattrs(&t, path, &a, &cur);
	}
	for (size_t i = 0, j = 0; !ret && i < cur.n; i++) {
		while (j < x->n && strcmp(x->v[j].name, cur.v[i].name) < 0)
			j++;
		if (j < x->n && !strcmp(x->v[j].name, cur.v[i].name))
			continue;
		if (s->kind == KIND_STORE)
			ret = stash_store_removexattr(s->st, a.ino,
						      cur.v[i].name);
		else if (lremovexattr(proc, cur.v[i].name))
			ret = -errno;
	}
	for (size_t i = 0; !ret && i < x->n; i++) {
		if (s->kind == KIND_STORE)
			ret = stash_store_setxattr(s->st, a.ino, x->v[i].name,
						   x->v[i].value, x->v[i].len,
						   0);
		else if (lsetxattr(proc, x->v[i].name, x->v[i].value,
				   x->v[i].len, 0))
			ret = -errno;
	}
	xattr_list_release(&cur);
	if (dirfd >= 0)
		close(dirfd);
	return ret;
}

int sink_set_meta(struct sink *s, const char *path, const struct tree_attr *a,
		  bool with_owner)
{
	struct timespec ts[2] = {
		{ a->atime / 1000000000, a->atime % 1000000000 },
		{ a->mtime / 1000000000, a->mtime % 1000000000 },
	};
	struct stash_attr in = { .mode = a->mode,
				 .uid = a->uid,
				 .gid = a->gid,
				 .atime = a->atime,
				 .mtime = a->mtime },
			  out;
	struct tree_attr cur;
	const char *name;
	unsigned valid = STASH_SET_ATIME | STASH_SET_MTIME;
	int dirfd, ret;

	if (s->kind == KIND_STORE) {
		ret = sink_stat(s, path, &cur);
		if (ret)
			return ret;
		if (!S_ISLNK(cur.mode))
			valid |= STASH_SET_MODE;
		if (with_owner)
			valid |= STASH_SET_UID | STASH_SET_GID;
		return stash_store_setattr(s->st, cur.ino, &in, valid, &out);
	}
	ret = open_parent(s->rootfd, path, &dirfd, &name);
	if (ret)
		return ret;
	if (with_owner &&
	    fchownat(dirfd, name, a->uid, a->gid, AT_SYMLINK_NOFOLLOW))
		ret = -errno;
	/* After chown, which clears set-id bits. */
	if (!ret && !S_ISLNK(a->mode) &&
	    fchmodat(dirfd, name, a->mode & 07777, 0))
		ret = -errno;
	if (!ret && utimensat(dirfd, name, ts, AT_SYMLINK_NOFOLLOW))
		ret = -errno;
	close(dirfd);
	return ret;
}

int sink_rename(struct sink *s, const char *from, const char *to)
{
	const char *fname, *tname;
	uint64_t fparent, tparent;
	int fdir, tdir, ret;

	if (s->kind == KIND_STORE) {
		ret = sink_parent(s, from, &fparent, &fname);
		if (!ret)
			ret = sink_parent(s, to, &tparent, &tname);
		return ret ? ret
			   : stash_store_rename(s->st, fparent, fname, tparent,
						tname, 0);
	}
	ret = open_parent(s->rootfd, from, &fdir, &fname);
	if (ret)
		return ret;
	ret = open_parent(s->rootfd, to, &tdir, &tname);
	if (!ret) {
		ret = renameat(fdir, fname, tdir, tname) ? -errno : 0;
		close(tdir);
	}
	close(fdir);
	return ret;
}

/* Remove name in the directory open at dirfd, recursively. */
static int remove_at(int parent, const char *name)
{
	struct dirent *e;
	DIR *d;
	int fd, ret = 0;

	if (unlinkat(parent, name, 0) == 0)
		return 0;
	if (errno != EISDIR)
		return -errno;
	fd = openat(parent, name,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while (!ret && (e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			ret = remove_at(dirfd(d), e->d_name);
	closedir(d);
	if (!ret && unlinkat(parent, name, AT_REMOVEDIR))
		ret = -errno;
	return ret;
}

static int store_remove(struct stash_store *st, uint64_t parent,
			const char *name)
{
	struct dirent_list l = { 0 };
	struct stash_attr a;
	int ret = stash_store_lookup(st, parent, name, &a);

	if (ret)
		return ret;
	if (!S_ISDIR(a.mode))
		return stash_store_unlink(st, parent, name);
	ret = stash_store_readdir(st, a.ino, 0, list_store_entry, &l);
	if (!ret)
		ret = l.err;
	for (size_t i = 0; !ret && i < l.n; i++)
		ret = store_remove(st, a.ino, l.d[i].name);
	tree_dirents_free(l.d, l.n);
	return ret ? ret : stash_store_rmdir(st, parent, name);
}

int sink_remove(struct sink *s, const char *path)
{
	const char *name;
	uint64_t parent;
	int dirfd, ret;

	if (!*path)
		return -EINVAL;
	if (s->kind == KIND_STORE) {
		ret = sink_parent(s, path, &parent, &name);
		return ret ? ret : store_remove(s->st, parent, name);
	}
	ret = open_parent(s->rootfd, path, &dirfd, &name);
	if (ret)
		return ret;
	ret = remove_at(dirfd, name);
	close(dirfd);
	return ret;
}

/* ---- opening what the commands name ---- */

int place_open(struct tree_place *p, const char *where,
	       const struct secret_opts *so)
{
	struct stat sb;
	int ret;

	memset(p, 0, sizeof(*p));
	if (is_store_dir(where)) {
		ret = open_store_or_mount_hint(where, so, &p->st,
					       "give its mount point instead"
					       " of the store folder");
		if (ret && ret != -EBUSY)
			report("cannot open store", where, ret);
		return ret;
	}
	if (stat(where, &sb) || !S_ISDIR(sb.st_mode)) {
		fprintf(stderr,
			"stashfs: %s is neither a store folder nor a"
			" mounted store\n",
			where);
		return -ENOENT;
	}
	if (!realpath(where, p->dir))
		return -errno;
	return 0;
}

int place_close(struct tree_place *p)
{
	int ret = p->st ? stash_store_close(p->st) : 0;

	p->st = NULL;
	return ret;
}

int place_exit(struct tree_place *p, const char *where, int ret)
{
	int err = place_close(p);

	if (!ret && err) {
		report("cannot close store", where, err);
		ret = err;
	}
	return ret ? exit_code(ret) : 0;
}

static int check_snap_name(const char *snap)
{
	if (!*snap || !strcmp(snap, ".") || !strcmp(snap, "..") ||
	    strchr(snap, '/') || strlen(snap) > STASH_NAME_MAX) {
		fprintf(stderr, "stashfs: %s is not a snapshot name\n", snap);
		return -EINVAL;
	}
	return 0;
}

int place_tree(struct tree_place *p, const char *snap, struct tree **out,
	       int64_t *created)
{
	struct stash_snapshot s;
	char dir[PATH_MAX + STASH_NAME_MAX + 16];
	struct stat sb;
	bool live = !strcmp(snap, "-");
	int ret = live ? 0 : check_snap_name(snap);

	if (ret)
		return ret;
	if (created)
		*created = stash_wall_ns();
	if (p->st) {
		if (live)
			return tree_open_store(out, p->st, STASH_ROOT_INO);
		ret = stash_snap_find(p->st, snap, &s);
		if (ret == -ENOENT)
			fprintf(stderr, "stashfs: no snapshot named %s\n",
				snap);
		if (ret)
			return ret;
		if (created)
			*created = s.created;
		return tree_open_store(out, p->st, s.root);
	}
	if (live)
		return tree_open_dir(out, p->dir, true);
	snprintf(dir, sizeof(dir), "%s/.backups/%s", p->dir, snap);
	if (lstat(dir, &sb) || !S_ISDIR(sb.st_mode)) {
		ret = errno == ENOENT || !S_ISDIR(sb.st_mode) ? -ENOENT
							      : -errno;
		fprintf(stderr, "stashfs: no snapshot named %s in %s\n", snap,
			p->dir);
		return ret;
	}
	/* A snapshot's root directory carries its creation time. */
	if (created)
		*created =
			sb.st_mtim.tv_sec * 1000000000LL + sb.st_mtim.tv_nsec;
	return tree_open_dir(out, dir, false);
}

int place_sink(struct tree_place *p, struct sink **out)
{
	if (p->st)
		return sink_open_store(out, p->st, STASH_ROOT_INO);
	return sink_open_dir(out, p->dir);
}
