/*
 * cmd_restore.c - `stashfs restore` (copy a snapshot, or paths in it,
 * back into the live tree or into a directory) and `stashfs snapshot
 * diff` (what was added, removed and changed between two trees).
 *
 * Both read trees through tools/tree.h, so they work on a mount point
 * (MNT/.backups/NAME) and on an unmounted store alike. restore replaces
 * each file it restores in one rename, so a reader sees the old or the
 * new version, never a mix; what the snapshot does not have is left
 * alone.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "crypto.h"
#include "progress.h"
#include "tree.h"

#define IO_BUF (256u << 10)

/* A user's PATH inside a snapshot: leading '/' allowed, no "..". */
static int user_path(const char *in, char *out, size_t size)
{
	size_t o = 0;

	while (*in) {
		size_t len = strcspn(in, "/");

		if (len == 2 && in[0] == '.' && in[1] == '.')
			return -EINVAL;
		if (len && !(len == 1 && in[0] == '.')) {
			if (o + len + 2 > size)
				return -ENAMETOOLONG;
			if (o)
				out[o++] = '/';
			memcpy(out + o, in, len);
			o += len;
		}
		in += len + (in[len] == '/');
	}
	out[o] = '\0';
	return 0;
}

/* ---- restore ---- */

static const char restore_usage[] =
	"stashfs restore STORE|MNT SNAP [PATH...] [--to DIR]\n"
	"        [--key-file F | --passphrase-file F]\n"
	"  Copy snapshot SNAP, or only the PATHs in it, with modes, owners\n"
	"  (as root), times, symlinks, hard links and xattrs. Without --to,\n"
	"  into the live tree at the same paths: what exists there is\n"
	"  replaced by the snapshot's version (each file in one rename),\n"
	"  what the snapshot does not hold is left alone. With --to DIR,\n"
	"  into the directory DIR on disk (created if missing), keeping the\n"
	"  paths below the snapshot's root.";

struct restorer {
	struct tree *t;
	struct sink *sink;
	struct ino_map links;	/* inode -> first path restored */
	struct tree_nodes dirs; /* their metadata is set last */
	struct progress prog;
	bool with_owner;
	unsigned long seq; /* temporary names */
	char *buf;
};

static int copy_data(struct restorer *r, const char *path,
		     const struct tree_attr *a, const char *dst)
{
	struct tree_file *in;
	struct sink_file *out;
	ssize_t n;
	int ret = tree_file_open(r->t, path, a, &in), err;

	if (ret)
		return ret;
	ret = sink_create(r->sink, dst, &out);
	if (ret) {
		tree_file_close(in);
		return ret;
	}
	while (!ret && (n = tree_file_read(in, r->buf, IO_BUF)) != 0) {
		if (n < 0)
			ret = (int)n;
		else
			ret = sink_write(out, r->buf, (size_t)n);
		progress_add(&r->prog, n > 0 ? (uint64_t)n : 0, 0);
	}
	tree_file_close(in);
	err = sink_close(out);
	return ret ? ret : err;
}

/* Make the non-directory path at tmp, as the snapshot has it. */
static int make_copy(struct restorer *r, const char *path,
		     const struct tree_attr *a, const char *tmp)
{
	struct xattr_list xl;
	char target[PATH_MAX];
	int ret;

	if (S_ISREG(a->mode))
		ret = copy_data(r, path, a, tmp);
	else if (S_ISLNK(a->mode)) {
		ret = tree_readlink(r->t, path, a, target, sizeof(target));
		if (!ret)
			ret = sink_symlink(r->sink, tmp, target);
	} else {
		ret = sink_mknod(r->sink, tmp, a->mode, a->rdev);
	}
	if (ret)
		return ret;
	ret = tree_xattrs(r->t, path, a, &xl);
	if (!ret && xl.n)
		ret = sink_replace_xattrs(r->sink, tmp, &xl);
	xattr_list_release(&xl);
	return ret ? ret : sink_set_meta(r->sink, tmp, a, r->with_owner);
}

static int temp_name(const char *path, unsigned long seq, char *out,
		     size_t size)
{
	const char *slash = strrchr(path, '/');
	int dir = slash ? (int)(slash - path + 1) : 0;
	int n = snprintf(out, size, "%.*s.stashfs-restore-%d-%lu", dir, path,
			 (int)getpid(), seq);

	return n >= 0 && (size_t)n < size ? 0 : -ENAMETOOLONG;
}

static int restore_one(void *arg, const char *path, const struct tree_attr *a)
{
	struct restorer *r = arg;
	struct tree_attr cur;
	struct xattr_list xl;
	char tmp[TREE_PATH_MAX];
	const char *first = NULL;
	int have, ret = 0;

	if (!*path)
		return 0; /* the root: the target's own */
	if (S_ISSOCK(a->mode))
		return 0;
	have = sink_stat(r->sink, path, &cur);
	if (have && have != -ENOENT)
		goto fail_have;
	if (S_ISDIR(a->mode)) {
		if (!have && !S_ISDIR(cur.mode))
			ret = sink_remove(r->sink, path);
		if (!ret && (have || !S_ISDIR(cur.mode)))
			ret = sink_mkdir(r->sink, path, 0700);
		if (!ret)
			ret = tree_xattrs(r->t, path, a, &xl);
		if (!ret) {
			ret = sink_replace_xattrs(r->sink, path, &xl);
			xattr_list_release(&xl);
		}
		if (!ret)
			ret = tree_nodes_add(&r->dirs, path, a);
		goto out;
	}
	if (!have && S_ISDIR(cur.mode)) {
		ret = sink_remove(r->sink, path);
		have = -ENOENT;
	}
	if (S_ISREG(a->mode) && a->nlink > 1)
		first = ino_map_get(&r->links, a->ino);
	if (!ret && first) {
		if (!have)
			ret = sink_remove(r->sink, path);
		if (!ret)
			ret = sink_link(r->sink, first, path);
		goto out;
	}
	/* A temporary name beside the file, then one rename over it. */
	if (!ret)
		ret = temp_name(path, r->seq++, tmp, sizeof(tmp));
	if (!ret)
		ret = make_copy(r, path, a, tmp);
	if (!ret)
		ret = sink_rename(r->sink, tmp, path);
	if (ret)
		sink_remove(r->sink, tmp);
	if (!ret && S_ISREG(a->mode) && a->nlink > 1)
		ret = ino_map_put(&r->links, a->ino, path);
out:
	progress_add(&r->prog, 0, 1);
	if (ret)
		report("cannot restore", path, ret);
	return ret;
fail_have:
	report("cannot restore", path, have);
	return have;
}

/* The directories above path, made where missing, as the snapshot has
 * them (their metadata comes with the others at the end). */
static int restore_parents(struct restorer *r, const char *path)
{
	char p[TREE_PATH_MAX];
	struct tree_attr a;
	int ret = 0;

	snprintf(p, sizeof(p), "%s", path);
	for (char *s = p; !ret && (s = strchr(s, '/')); *s++ = '/') {
		*s = '\0';
		ret = tree_stat(r->t, p, &a);
		if (!ret)
			ret = restore_one(r, p, &a);
	}
	return ret;
}

static int by_path_desc(const void *a, const void *b)
{
	return tree_path_cmp(((const struct tree_node *)b)->path,
			     ((const struct tree_node *)a)->path);
}

static int restore_dir_meta(struct restorer *r)
{
	int ret = 0;

	if (r->dirs.n)
		qsort(r->dirs.v, r->dirs.n, sizeof(*r->dirs.v), by_path_desc);
	for (size_t i = 0; !ret && i < r->dirs.n; i++) {
		/* Restored twice (two PATHs): once is enough. */
		if (i && !strcmp(r->dirs.v[i].path, r->dirs.v[i - 1].path))
			continue;
		ret = sink_set_meta(r->sink, r->dirs.v[i].path,
				    &r->dirs.v[i].attr, r->with_owner);
		if (ret)
			report("cannot set attributes of", r->dirs.v[i].path,
			       ret);
	}
	return ret;
}

int cmd_restore(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "to", required_argument, NULL, 't' },
		SECRET_LONG_OPTIONS,
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct secret_opts so = { 0 };
	struct tree_place place = { 0 };
	struct restorer r = { 0 };
	const char *where, *snap, *to = NULL;
	char path[TREE_PATH_MAX];
	int c, ret, npaths;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (secret_option(c, &so))
			continue;
		switch (c) {
		case 't':
			to = optarg;
			break;
		case 'h':
			printf("usage: %s\n", restore_usage);
			return 0;
		default:
			die_usage(restore_usage);
		}
	}
	if (optind + 2 > argc)
		die_usage(restore_usage);
	where = argv[optind];
	snap = argv[optind + 1];
	npaths = argc - optind - 2;
	for (int i = 0; i < npaths; i++)
		if (user_path(argv[optind + 2 + i], path, sizeof(path))) {
			fprintf(stderr, "stashfs: bad path %s\n",
				argv[optind + 2 + i]);
			return EXIT_USAGE;
		}
	ret = place_open(&place, where, &so);
	if (ret)
		return exit_code(ret);
	ret = place_tree(&place, snap, &r.t, NULL);
	if (ret)
		goto out;
	if (to) {
		ret = mkdir_p(to, 0700);
		if (!ret)
			ret = sink_open_dir(&r.sink, to);
	} else {
		ret = place_sink(&place, &r.sink);
	}
	if (ret) {
		report("cannot write to", to ? to : where, ret);
		goto out;
	}
	r.with_owner = geteuid() == 0;
	r.buf = malloc(IO_BUF);
	if (!r.buf) {
		ret = -ENOMEM;
		goto out;
	}
	progress_init(&r.prog, "restore", 0);
	for (int i = 0; !ret && i < (npaths ? npaths : 1); i++) {
		struct tree_attr a;

		path[0] = '\0';
		if (npaths)
			user_path(argv[optind + 2 + i], path, sizeof(path));
		ret = tree_stat(r.t, path, &a);
		if (ret) {
			fprintf(stderr, "stashfs: snapshot %s has no /%s\n",
				snap, path);
			break;
		}
		ret = restore_parents(&r, path);
		if (!ret)
			ret = tree_walk(r.t, path, &a, restore_one, &r);
	}
	if (!ret)
		ret = restore_dir_meta(&r);
	progress_done(&r.prog);
	if (!ret)
		printf("restored %llu entries of %s into %s\n",
		       (unsigned long long)r.prog.files, snap, to ? to : where);
out:
	free(r.buf);
	ino_map_release(&r.links);
	tree_nodes_release(&r.dirs);
	sink_free(r.sink);
	tree_free(r.t);
	return place_exit(&place, where, ret);
}

/* ---- snapshot diff ---- */

static const char diff_usage[] =
	"stashfs snapshot diff STORE|MNT A B [--json]"
	" [--key-file F | --passphrase-file F]\n"
	"  What changed from snapshot A to snapshot B (- is the live tree):\n"
	"  '+ PATH' added, '- PATH' removed, 'M PATH' changed (contents,\n"
	"  type, mode, owner, mtime, symlink target or xattrs; directories\n"
	"  not for their times alone), sorted by path.";

struct change {
	char kind; /* '+', '-' or 'M' */
	const char *path;
};

static int by_change_path(const void *a, const void *b)
{
	return strcmp(((const struct change *)a)->path,
		      ((const struct change *)b)->path);
}

static int print_changes(struct change *v, size_t n, bool json)
{
	static const struct {
		char kind;
		const char *key;
	} keys[] = { { '+', "added" }, { '-', "removed" }, { 'M', "changed" } };
	cJSON *root;
	char *text;

	if (n)
		qsort(v, n, sizeof(*v), by_change_path);
	if (!json) {
		for (size_t i = 0; i < n; i++)
			printf("%c /%s\n", v[i].kind, v[i].path);
		return 0;
	}
	root = cJSON_CreateObject();
	for (size_t k = 0; root && k < STASH_ARRAY_SIZE(keys); k++) {
		cJSON *list = cJSON_AddArrayToObject(root, keys[k].key);
		char p[TREE_PATH_MAX + 1];

		for (size_t i = 0; list && i < n; i++) {
			if (v[i].kind != keys[k].kind)
				continue;
			snprintf(p, sizeof(p), "/%s", v[i].path);
			cJSON_AddItemToArray(list, cJSON_CreateString(p));
		}
	}
	text = root ? cJSON_Print(root) : NULL;
	cJSON_Delete(root);
	if (!text)
		return -ENOMEM;
	printf("%s\n", text);
	free(text);
	return 0;
}

int snapshot_diff_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		SECRET_LONG_OPTIONS,
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct secret_opts so = { 0 };
	struct tree_place place = { 0 };
	struct tree *ta = NULL, *tb = NULL;
	struct tree_nodes a = { 0 }, b = { 0 };
	struct change *v = NULL;
	size_t n = 0, i = 1, j = 1;
	bool json = false;
	const char *where;
	int c, ret, err;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (secret_option(c, &so))
			continue;
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'h':
			printf("usage: %s\n", diff_usage);
			return 0;
		default:
			die_usage(diff_usage);
		}
	}
	if (optind + 3 != argc)
		die_usage(diff_usage);
	where = argv[optind];
	ret = place_open(&place, where, &so);
	if (ret)
		return exit_code(ret);
	ret = place_tree(&place, argv[optind + 1], &ta, NULL);
	if (!ret)
		ret = place_tree(&place, argv[optind + 2], &tb, NULL);
	if (!ret)
		ret = tree_collect(ta, "", &a);
	if (!ret)
		ret = tree_collect(tb, "", &b);
	if (!ret) {
		v = calloc(a.n + b.n + 1, sizeof(*v));
		if (!v)
			ret = -ENOMEM;
	}
	/* Both lists are in walk order: merge them; index 0 is the root. */
	while (!ret && (i < a.n || j < b.n)) {
		int cmp = i >= a.n   ? 1
			  : j >= b.n ? -1
				     : tree_path_cmp(a.v[i].path, b.v[j].path);

		if (cmp < 0) {
			v[n++] = (struct change){ '-', a.v[i++].path };
			continue;
		}
		if (cmp > 0) {
			v[n++] = (struct change){ '+', b.v[j++].path };
			continue;
		}
		if ((a.v[i].attr.mode & S_IFMT) != (b.v[j].attr.mode & S_IFMT))
			ret = 1;
		else
			ret = tree_differs(ta, a.v[i].path, &a.v[i].attr, tb,
					   b.v[j].path, &b.v[j].attr, 0);
		if (ret == 1)
			v[n++] = (struct change){ 'M', b.v[j].path };
		if (ret < 0)
			report("cannot compare", b.v[j].path, ret);
		else
			ret = 0;
		i++;
		j++;
	}
	if (!ret)
		ret = print_changes(v, n, json);
	if (ret && ret != -ENOENT && ret != -EINVAL)
		report("cannot diff in", where, ret);
	free(v);
	tree_nodes_release(&a);
	tree_nodes_release(&b);
	tree_free(ta);
	tree_free(tb);
	err = place_close(&place);
	if (!ret && err)
		ret = err;
	return ret ? exit_code(ret) : 0;
}
