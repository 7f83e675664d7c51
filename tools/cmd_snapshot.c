/*
 * cmd_snapshot.c - `stashfs snapshot create|list|delete|rename|prune`.
 *
 * Each works on an unmounted store (opened here) or on a mount point,
 * where it goes through MNT/.backups with mkdir, readdir, rmdir and
 * rename: the daemon holds the store, and those calls are the
 * filesystem's own interface to snapshots.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"

static const char snapshot_usage[] =
	"stashfs snapshot COMMAND STORE|MNT ...\n"
	"  create STORE|MNT NAME        take a snapshot of the whole tree\n"
	"  list STORE|MNT [--json]      list snapshots, oldest first\n"
	"  delete STORE|MNT NAME...     drop snapshots\n"
	"  rename STORE|MNT NAME NEW    rename a snapshot\n"
	"  diff STORE|MNT A B [--json]  paths added (+), removed (-), changed (M)\n"
	"                               from A to B; '-' is the live tree\n"
	"  prune STORE|MNT --keep-last N --keep-hourly N --keep-daily N\n"
	"        --keep-weekly N --keep-monthly N --keep-yearly N\n"
	"        [--prefix P] [--dry-run]\n"
	"                               drop what no rule keeps (restic's\n"
	"                               rules; local time; at least one rule)\n"
	"  STORE needs --key-file F or --passphrase-file F as for mount.\n"
	"  On a mount point these are mkdir, ls, rmdir and mv in MNT/.backups.";

/* Where the snapshots are: an opened store, or a mount's .backups. */
struct target {
	struct stash_store *st; /* NULL: a mount */
	char backups[PATH_MAX]; /* MNT/.backups */
	const char *path;	/* as the user wrote it */
};

static int target_open(struct target *t, const char *path,
		       const struct secret_opts *so)
{
	t->path = path;
	t->st = NULL;
	if (is_store_dir(path))
		return open_store_or_mount_hint(path, so, &t->st,
						"name its mount point instead");
	if ((size_t)snprintf(t->backups, sizeof(t->backups), "%s/.backups",
			     path) >= sizeof(t->backups))
		return -ENAMETOOLONG;
	if (access(t->backups, F_OK) < 0)
		return errno == ENOENT ? -ENOENT : -errno;
	return 0;
}

static int target_close(struct target *t)
{
	return t->st ? stash_store_close(t->st) : 0;
}

static int snap_path(const struct target *t, const char *name, char *out)
{
	if ((size_t)snprintf(out, PATH_MAX, "%s/%s", t->backups, name) >=
	    PATH_MAX)
		return -ENAMETOOLONG;
	return 0;
}

static int t_create(struct target *t, const char *name)
{
	char p[PATH_MAX];
	int ret;

	if (t->st)
		return stash_snap_create(t->st, name, NULL);
	ret = snap_path(t, name, p);
	if (!ret && mkdir(p, 0755) < 0)
		ret = -errno;
	return ret;
}

static int t_delete(struct target *t, const char *name)
{
	char p[PATH_MAX];
	int ret;

	if (t->st)
		return stash_snap_delete(t->st, name);
	ret = snap_path(t, name, p);
	if (!ret && rmdir(p) < 0)
		ret = -errno;
	return ret;
}

static int t_rename(struct target *t, const char *name, const char *newname)
{
	char p[PATH_MAX], q[PATH_MAX];
	int ret;

	if (t->st)
		return stash_snap_rename(t->st, name, newname);
	ret = snap_path(t, name, p);
	if (!ret)
		ret = snap_path(t, newname, q);
	/* A snapshot is never replaced: refuse an existing name. */
	if (!ret && renameat2(AT_FDCWD, p, AT_FDCWD, q, RENAME_NOREPLACE) < 0)
		ret = -errno;
	return ret;
}

/* Every snapshot into *out (malloc'd), oldest first. */
static int collect(void *arg, const struct stash_snapshot *s)
{
	struct {
		struct stash_snapshot *v;
		size_t n, cap;
	} *vec = arg;

	if (vec->n == vec->cap) {
		size_t cap = vec->cap ? 2 * vec->cap : 64;
		struct stash_snapshot *v = realloc(vec->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		vec->v = v;
		vec->cap = cap;
	}
	vec->v[vec->n++] = *s;
	return 0;
}

/* A snapshot operation failed: errno's own words fit (File exists, ...). */
static void fail(const char *what, const char *name, int err)
{
	fprintf(stderr, "stashfs: %s %s: %s\n", what, name,
		err == -EINVAL ? "invalid snapshot name" : strerror(-err));
}

static int by_id(const void *a, const void *b)
{
	const struct stash_snapshot *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

static int t_list(struct target *t, struct stash_snapshot **out, size_t *n)
{
	struct {
		struct stash_snapshot *v;
		size_t n, cap;
	} vec = { 0 };
	struct dirent *de;
	DIR *dir;
	int ret = 0;

	if (t->st) {
		ret = stash_snap_list(t->st, 0, collect, &vec);
		goto out;
	}
	dir = opendir(t->backups);
	if (!dir)
		return -errno;
	while (!ret && (errno = 0, de = readdir(dir))) {
		struct stash_snapshot s = { 0 };
		struct stat sb;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fstatat(dirfd(dir), de->d_name, &sb, AT_SYMLINK_NOFOLLOW)) {
			if (errno == ENOENT)
				continue; /* dropped meanwhile */
			ret = -errno;
			break;
		}
		/* The root's inode number holds the id; mtime = created. */
		s.root = sb.st_ino;
		s.id = stash_ino_snap(sb.st_ino);
		s.created = (int64_t)sb.st_mtim.tv_sec * 1000000000 +
			    sb.st_mtim.tv_nsec;
		snprintf(s.name, sizeof(s.name), "%s", de->d_name);
		ret = collect(&vec, &s);
	}
	if (!ret && errno)
		ret = -errno;
	closedir(dir);
	qsort(vec.v, vec.n, sizeof(*vec.v), by_id);
out:
	if (ret) {
		free(vec.v);
		return ret;
	}
	*out = vec.v;
	*n = vec.n;
	return 0;
}

static void iso_time(int64_t ns, char *out, size_t size)
{
	time_t t = (time_t)(ns / 1000000000);
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(out, size, "%Y-%m-%dT%H:%M:%S%z", &tm);
}

static int print_list(struct target *t, bool json)
{
	struct stash_snapshot *v = NULL;
	size_t n = 0;
	char when[64];
	int ret = t_list(t, &v, &n);

	if (ret)
		return ret;
	if (json) {
		cJSON *arr = cJSON_CreateArray();
		char *text;

		for (size_t i = 0; arr && i < n; i++) {
			cJSON *o = cJSON_CreateObject();

			iso_time(v[i].created, when, sizeof(when));
			cJSON_AddNumberToObject(o, "id", (double)v[i].id);
			cJSON_AddStringToObject(o, "name", v[i].name);
			cJSON_AddStringToObject(o, "created", when);
			cJSON_AddItemToArray(arr, o);
		}
		text = arr ? cJSON_Print(arr) : NULL;
		if (text)
			printf("%s\n", text);
		else
			ret = -ENOMEM;
		free(text);
		cJSON_Delete(arr);
	} else {
		for (size_t i = 0; i < n; i++) {
			iso_time(v[i].created, when, sizeof(when));
			printf("%-6llu %s  %s\n", (unsigned long long)v[i].id,
			       when, v[i].name);
		}
	}
	free(v);
	return ret;
}

/* Prune on a mount: the same rules over what .backups lists. */
static int prune_mount(struct target *t, const struct stash_retention *keep,
		       const char *prefix, bool dry_run)
{
	struct stash_snapshot *v = NULL, *sel;
	size_t n = 0, m = 0;
	int64_t *created;
	bool *kept;
	int ret = t_list(t, &v, &n);

	if (ret)
		return ret;
	sel = calloc(n ? n : 1, sizeof(*sel));
	created = calloc(n ? n : 1, sizeof(*created));
	kept = calloc(n ? n : 1, sizeof(*kept));
	if (!sel || !created || !kept)
		ret = -ENOMEM;
	for (size_t i = 0; !ret && i < n; i++) {
		if (prefix && strncmp(v[i].name, prefix, strlen(prefix)))
			continue;
		sel[m] = v[i];
		created[m++] = v[i].created;
	}
	if (!ret)
		ret = stash_retention_apply(keep, created, m, kept);
	for (size_t i = 0; !ret && i < m; i++) {
		if (kept[i])
			continue;
		if (!dry_run)
			ret = t_delete(t, sel[i].name);
		if (!ret)
			printf("%s %s\n", dry_run ? "would drop" : "dropped",
			       sel[i].name);
	}
	free(v);
	free(sel);
	free(created);
	free(kept);
	return ret;
}

static int print_dropped(void *arg, const struct stash_snapshot *s)
{
	printf("%s %s\n", *(bool *)arg ? "would drop" : "dropped", s->name);
	return 0;
}

int cmd_snapshot(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "prefix", required_argument, NULL, 'p' },
		{ "keep-last", required_argument, NULL, 'K' },
		{ "keep-hourly", required_argument, NULL, 'K' },
		{ "keep-daily", required_argument, NULL, 'K' },
		{ "keep-weekly", required_argument, NULL, 'K' },
		{ "keep-monthly", required_argument, NULL, 'K' },
		{ "keep-yearly", required_argument, NULL, 'K' },
		SECRET_LONG_OPTIONS,
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct stash_retention keep = { 0 };
	struct secret_opts so = { 0 };
	struct target t;
	const char *sub, *prefix = NULL;
	bool json = false, dry_run = false;
	int c, idx, ret, err, nargs;
	char setting[64];

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		if (argc < 2)
			die_usage(snapshot_usage);
		printf("usage: %s\n", snapshot_usage);
		return 0;
	}
	sub = argv[1];
	if (!strcmp(sub, "diff"))
		return snapshot_diff_main(argc - 1, argv + 1);
	argc--;
	argv++;
	while ((c = getopt_long(argc, argv, "h", opts, &idx)) != -1) {
		if (secret_option(c, &so))
			continue;
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'n':
			dry_run = true;
			break;
		case 'p':
			prefix = optarg;
			break;
		case 'K':
			/* "--keep-daily" + "=N" is a keep setting. */
			snprintf(setting, sizeof(setting), "%s=%s",
				 opts[idx].name, optarg);
			if (stash_retention_parse(&keep, setting) != 1) {
				fprintf(stderr, "stashfs: bad --%s value %s\n",
					opts[idx].name, optarg);
				return EXIT_USAGE;
			}
			break;
		case 'h':
			printf("usage: %s\n", snapshot_usage);
			return 0;
		default:
			die_usage(snapshot_usage);
		}
	}
	nargs = argc - optind;
	if (nargs < 1)
		die_usage(snapshot_usage);
	if (!strcmp(sub, "create") || !strcmp(sub, "rename")) {
		if (nargs != (!strcmp(sub, "create") ? 2 : 3))
			die_usage(snapshot_usage);
	} else if (!strcmp(sub, "delete")) {
		if (nargs < 2)
			die_usage(snapshot_usage);
	} else if (!strcmp(sub, "list")) {
		if (nargs != 1)
			die_usage(snapshot_usage);
	} else if (!strcmp(sub, "prune")) {
		if (nargs != 1)
			die_usage(snapshot_usage);
		if (!stash_retention_any(&keep)) {
			fprintf(stderr, "stashfs: prune needs at least one"
					" --keep-* rule\n");
			return EXIT_USAGE;
		}
	} else {
		fprintf(stderr, "stashfs: unknown snapshot command '%s'\n",
			sub);
		die_usage(snapshot_usage);
	}

	/* A name the mount would read as a path is refused here too. */
	for (int i = optind + 1; i < argc; i++) {
		const char *name = argv[i];

		if (!*name || strchr(name, '/') || !strcmp(name, ".") ||
		    !strcmp(name, "..") || strlen(name) > STASH_NAME_MAX) {
			fprintf(stderr, "stashfs: invalid snapshot name '%s'\n",
				name);
			return EXIT_USAGE;
		}
	}
	ret = target_open(&t, argv[optind], &so);
	if (ret) {
		if (ret != -EBUSY)
			report("cannot open", argv[optind],
			       ret == -ENOENT ? -ENOENT : ret);
		return exit_code(ret);
	}
	if (!strcmp(sub, "create")) {
		ret = t_create(&t, argv[optind + 1]);
		if (!ret)
			printf("snapshot %s taken\n", argv[optind + 1]);
		else
			fail("cannot take snapshot", argv[optind + 1], ret);
	} else if (!strcmp(sub, "delete")) {
		for (int i = optind + 1; i < argc; i++) {
			err = t_delete(&t, argv[i]);
			if (err)
				fail("cannot drop snapshot", argv[i], err);
			if (err && !ret)
				ret = err;
		}
	} else if (!strcmp(sub, "rename")) {
		ret = t_rename(&t, argv[optind + 1], argv[optind + 2]);
		if (ret)
			fail("cannot rename snapshot", argv[optind + 1], ret);
	} else if (!strcmp(sub, "list")) {
		ret = print_list(&t, json);
		if (ret)
			fail("cannot list snapshots of", t.path, ret);
	} else {
		ret = t.st ? stash_snap_prune(t.st, &keep, prefix, dry_run,
					      print_dropped, &dry_run)
			   : prune_mount(&t, &keep, prefix, dry_run);
		if (ret)
			fail("cannot prune snapshots of", t.path, ret);
	}
	err = target_close(&t);
	if (err && !ret) {
		report("cannot close", t.path, err);
		ret = err;
	}
	return ret ? exit_code(ret) : 0;
}
