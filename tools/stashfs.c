/*
 * stashfs.c - the `stashfs` command: main, and init, mount, umount,
 * stats, passwd (the other subcommands are in cmd_*.c).
 *
 * A thin CLI over store/ and fs/: it finds the secret that unlocks a store
 * (key file, passphrase prompt, STASHFS_PASSPHRASE or a passphrase file),
 * turns errors into messages a person can act on, and runs the mount
 * daemon. Exit codes: 0 success, 1 failure, 2 usage, 3 wrong key or
 * passphrase, 4 store busy (already mounted).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <syslog.h>
#include <termios.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "codec.h"
#include "crypto.h"
#include "fs.h"
#include "store.h"

#include "cli.h"

/* ---- init ---- */

static const char init_usage[] =
	"stashfs init STORE [--passphrase | --passphrase-file F |"
	" --key-file F] [--codec zstd[:LEVEL]|zlib[:LEVEL]|none]\n"
	"  Create a store in the folder STORE (created if missing, must be"
	" empty).\n"
	"  By default a new random key file is written outside the store, to\n"
	"  ~/.config/stashfs/keys/STORE-ID.key (mode 0600; $STASHFS_KEY_DIR"
	" overrides).\n"
	"  --key-file F       use the key file F (created if it does not"
	" exist)\n"
	"  --passphrase       protect the store with a passphrase (prompt,\n"
	"                     or STASHFS_PASSPHRASE) instead of a key file\n"
	"  --passphrase-file F  read the passphrase from F";

static int write_key_file(const char *path)
{
	uint8_t key[STASH_KEY_LEN];
	char hex[2 * STASH_KEY_LEN + 2];
	int fd, ret;

	ret = stash_crypto_random(key, sizeof(key));
	if (ret)
		return ret;
	stash_hex(key, sizeof(key), hex);
	stash_crypto_wipe(key, sizeof(key));
	hex[2 * STASH_KEY_LEN] = '\n';
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		goto out;
	}
	ret = stash_pwrite_all(fd, hex, 2 * STASH_KEY_LEN + 1, 0);
	if (!ret && fsync(fd) < 0)
		ret = -errno;
	close(fd);
	if (ret)
		unlink(path);
out:
	stash_crypto_wipe(hex, sizeof(hex));
	return ret;
}

static int cmd_init(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "passphrase", no_argument, NULL, 'p' },
		{ "passphrase-file", required_argument, NULL, 'P' },
		{ "key-file", required_argument, NULL, 'k' },
		{ "codec", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct secret_opts so = { 0 };
	struct stash_config cfg;
	struct stash_secret secret;
	char buf[MAX_SECRET], path[PATH_MAX], dir[PATH_MAX];
	uint8_t id[STASH_STORE_ID_LEN];
	const char *store, *key = NULL, *codec = NULL;
	bool made_key = false;
	size_t len = 0;
	int c, ret;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			so.passphrase = true;
			break;
		case 'P':
			so.passphrase = true;
			so.passphrase_file = optarg;
			break;
		case 'k':
			so.key_file = optarg;
			break;
		case 'c':
			codec = optarg;
			break;
		case 'h':
			printf("usage: %s\n", init_usage);
			return 0;
		default:
			die_usage(init_usage);
		}
	}
	if (optind + 1 != argc || (so.passphrase && so.key_file))
		die_usage(init_usage);
	store = argv[optind];
	stash_config_defaults(&cfg);
	if (codec && stash_codec_parse(codec, &cfg.codec, &cfg.level) < 0) {
		fprintf(stderr, "stashfs: unknown codec %s\n", codec);
		return EXIT_USAGE;
	}
	ret = stash_crypto_random(id, sizeof(id));
	if (ret)
		goto fail;
	stash_hex(id, sizeof(id), cfg.store_id);

	if (so.passphrase) {
		cfg.kdf = STASH_KDF_SCRYPT;
		ret = get_passphrase(so.passphrase_file, "STASHFS_PASSPHRASE",
				     true, buf, sizeof(buf), &len);
		if (ret)
			goto fail;
	} else {
		cfg.kdf = STASH_KDF_KEYFILE;
		if (so.key_file) {
			key = so.key_file;
		} else {
			ret = key_dir(dir, sizeof(dir));
			if (!ret)
				ret = mkdir_p(dir, 0700);
			if (!ret)
				ret = default_key_path(cfg.store_id, path,
						       sizeof(path));
			if (ret)
				goto fail;
			key = path;
		}
		if (access(key, F_OK) != 0) {
			ret = write_key_file(key);
			if (ret) {
				report("cannot write key file", key, ret);
				return EXIT_FAILURE;
			}
			made_key = true;
		}
		ret = read_secret_file(key, buf, sizeof(buf), &len);
		if (ret) {
			report("cannot read key file", key, ret);
			return EXIT_FAILURE;
		}
	}
	secret = (struct stash_secret){ buf, len };
	ret = stash_store_init(store, &cfg, &secret);
	stash_crypto_wipe(buf, sizeof(buf));
	if (ret) {
		if (made_key)
			unlink(key);
		goto fail;
	}
	printf("Created store %s\n", store);
	if (key)
		printf("Key file: %s (keep a copy somewhere safe: without it"
		       " the store cannot be read)\n",
		       key);
	else
		printf("Protected by your passphrase (without it the store"
		       " cannot be read)\n");
	printf("Mount it with: stashfs mount %s MOUNTPOINT\n", store);
	return 0;
fail:
	stash_crypto_wipe(buf, sizeof(buf));
	report("cannot create store", store, ret);
	return exit_code(ret);
}

/* ---- mount ---- */

static const char mount_usage[] =
	"stashfs mount STORE MOUNTPOINT [-f] [-d] [-o OPTION[,OPTION...]]"
	" [--key-file F | --passphrase-file F]\n"
	"  Mount STORE at MOUNTPOINT. Returns once the filesystem answers;\n"
	"  with -f it stays in the foreground (-d: also print FUSE"
	" debugging).\n"
	"  -o passes libfuse mount options through (allow_other, ro, ...);\n"
	"  -o snapshot_every=1h[,keep_last=24,keep_daily=7,...] takes\n"
	"  automatic snapshots (auto-YYYYMMDD-HHMMSS, UTC) and prunes them\n"
	"  with restic's rules (keep_last, keep_hourly, keep_daily,\n"
	"  keep_weekly, keep_monthly, keep_yearly); other snapshots are\n"
	"  never pruned automatically.\n"
	"  default_permissions is always on, so the kernel checks modes.";

static void syslog_sink(enum stash_log_level level, const char *msg)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

	syslog(prio[level], "%s", msg);
}

/* Run the session; returns the process exit code. */
static int serve(struct stash_store *st, const char *store, const char *mnt,
		 struct fuse_args *args, int notify_fd)
{
	struct fuse_session *se = stash_fs_session_new(st, args);
	int ret, status = 0;

	if (!se) {
		ret = -EINVAL;
		fprintf(stderr, "stashfs: invalid mount options\n");
		goto out_store;
	}
	if (fuse_set_signal_handlers(se) != 0) {
		ret = -EIO;
		goto out_session;
	}
	if (fuse_session_mount(se, mnt) != 0) {
		ret = -EIO;
		fprintf(stderr, "stashfs: cannot mount at %s\n", mnt);
		goto out_signals;
	}
	if (notify_fd >= 0) {
		/*
		 * Tell the parent we are mounted, then leave the terminal.
		 * Logs go to syslog, or to the file named by STASHFS_LOG.
		 */
		const char *log = getenv("STASHFS_LOG");
		int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
		int logfd =
			log ? open(log,
				   O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
				   0600)
			    : -1;

		status = 0;
		if (write(notify_fd, &status, sizeof(status)) < 0)
			status = 0;
		close(notify_fd);
		notify_fd = -1;
		if (logfd < 0) {
			openlog("stashfs", LOG_PID, LOG_DAEMON);
			stash_log_set_sink(syslog_sink);
		}
		if (devnull >= 0) {
			dup2(devnull, STDIN_FILENO);
			dup2(devnull, STDOUT_FILENO);
			dup2(logfd >= 0 ? logfd : devnull, STDERR_FILENO);
			close(devnull);
		}
		if (logfd >= 0)
			close(logfd);
	}
	stash_log(STASH_LOG_INFO, "serving %s at %s", store, mnt);
	ret = stash_fs_loop(se);
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
out_store : {
	int err = stash_store_close(st);

	if (err) {
		stash_log(STASH_LOG_ERR, "closing the store: %s",
			  strerror(-err));
		if (!ret)
			ret = err;
	}
}
	if (notify_fd >= 0) {
		status = ret ? ret : -EIO;
		if (write(notify_fd, &status, sizeof(status)) < 0)
			status = 0;
		close(notify_fd);
	}
	return ret ? EXIT_FAILURE : 0;
}

/* Automatic snapshots asked for with -o snapshot_every=...,keep_*=N. */
struct autosnap_opts {
	int64_t every_ns; /* 0: none */
	struct stash_retention keep;
};

/* "90s", "30m", "1h", "2d", "1w" (a bare number is seconds) in ns. */
static int parse_duration(const char *s, int64_t *ns)
{
	static const struct {
		char unit;
		int64_t seconds;
	} units[] = { { 's', 1 },
		      { 'm', 60 },
		      { 'h', 3600 },
		      { 'd', 86400 },
		      { 'w', 604800 } };
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || v <= 0 || v > 100000000)
		return -EINVAL;
	if (!*end) {
		*ns = v * 1000000000LL;
		return 0;
	}
	for (size_t i = 0; i < STASH_ARRAY_SIZE(units); i++) {
		if (end[0] == units[i].unit && !end[1]) {
			*ns = v * units[i].seconds * 1000000000LL;
			return 0;
		}
	}
	return -EINVAL;
}

/*
 * Take stashfs's own options out of an -o list (snapshot_every=DURATION
 * and keep_RULE=N) and hand the rest to libfuse.
 */
static int mount_options(const char *list, struct fuse_args *args,
			 struct autosnap_opts *a)
{
	char *copy = strdup(list), *save = NULL, *rest;
	size_t used = 0, size = strlen(list) + 1;
	int ret = copy ? 0 : -ENOMEM;

	rest = copy ? calloc(1, size) : NULL;
	if (copy && !rest)
		ret = -ENOMEM;
	for (char *o = ret ? NULL : strtok_r(copy, ",", &save); o && !ret;
	     o = strtok_r(NULL, ",", &save)) {
		int r = stash_retention_parse(&a->keep, o);

		if (r < 0) {
			ret = r;
		} else if (r == 0 && !strncmp(o, "snapshot_every=", 15)) {
			ret = parse_duration(o + 15, &a->every_ns);
		} else if (r == 0) {
			used += (size_t)snprintf(rest + used, size - used,
						 "%s%s", used ? "," : "", o);
		}
		if (ret)
			fprintf(stderr, "stashfs: bad mount option %s\n", o);
	}
	if (!ret && used) {
		fuse_opt_add_arg(args, "-o");
		fuse_opt_add_arg(args, rest);
	}
	free(copy);
	free(rest);
	return ret;
}

/* Open the store and start what the mount options ask for. */
static int open_for_mount(const char *store, const struct secret_opts *so,
			  const struct autosnap_opts *a,
			  struct stash_store **out)
{
	int ret = open_store(store, so, out);

	if (!ret)
		ret = stash_index_start(*out);
	if (!ret && a->every_ns)
		ret = stash_snap_auto_start(*out, a->every_ns, &a->keep);
	if (ret && *out) {
		stash_store_close(*out);
		*out = NULL;
	}
	return ret;
}

static int cmd_mount(int argc, char **argv)
{
	static const struct option opts[] = {
		SECRET_LONG_OPTIONS,
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct autosnap_opts autosnap = { 0 };
	struct secret_opts so = { 0 };
	struct stash_store *st = NULL;
	char store[PATH_MAX], mnt[PATH_MAX], base[PATH_MAX + 128];
	bool foreground = false, debug = false;
	int c, ret, pipefd[2], status;
	pid_t pid;

	/*
	 * Up to 16 FUSE threads and the workers each get a malloc arena by
	 * default; freed chunk buffers then linger in all of them. Two
	 * arenas keep the daemon's memory near what it really holds.
	 */
	mallopt(M_ARENA_MAX, 2);
	fuse_opt_add_arg(&args, "stashfs");
	while ((c = getopt_long(argc, argv, "fdo:h", opts, NULL)) != -1) {
		if (secret_option(c, &so))
			continue;
		switch (c) {
		case 'f':
			foreground = true;
			break;
		case 'd':
			debug = foreground = true;
			break;
		case 'o':
			if (mount_options(optarg, &args, &autosnap)) {
				fuse_opt_free_args(&args);
				return EXIT_USAGE;
			}
			break;
		case 'h':
			printf("usage: %s\n", mount_usage);
			fuse_opt_free_args(&args);
			return 0;
		default:
			die_usage(mount_usage);
		}
	}
	if (optind + 2 != argc)
		die_usage(mount_usage);
	if (stash_retention_any(&autosnap.keep) && !autosnap.every_ns) {
		fprintf(stderr,
			"stashfs: keep_* options need snapshot_every\n");
		fuse_opt_free_args(&args);
		return EXIT_USAGE;
	}
	if (!realpath(argv[optind], store)) {
		report("cannot open store", argv[optind], -errno);
		fuse_opt_free_args(&args);
		return EXIT_FAILURE;
	}
	if (!realpath(argv[optind + 1], mnt)) {
		report("cannot use mount point", argv[optind + 1], -errno);
		fuse_opt_free_args(&args);
		return EXIT_FAILURE;
	}
	snprintf(base, sizeof(base),
		 "fsname=%s,subtype=stashfs,default_permissions", store);
	fuse_opt_add_arg(&args, "-o");
	fuse_opt_add_arg(&args, base);
	if (debug)
		fuse_opt_add_arg(&args, "-d");

	if (foreground) {
		ret = open_for_mount(store, &so, &autosnap, &st);
		if (ret) {
			report("cannot open store", store, ret);
			fuse_opt_free_args(&args);
			return exit_code(ret);
		}
		ret = serve(st, store, mnt, &args, -1);
		fuse_opt_free_args(&args);
		return ret;
	}

	/*
	 * The store is opened in the child: its threads would not survive
	 * a fork. The child reports success or the error through a pipe.
	 */
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		perror("stashfs: pipe");
		return EXIT_FAILURE;
	}
	pid = fork();
	if (pid < 0) {
		perror("stashfs: fork");
		return EXIT_FAILURE;
	}
	if (pid == 0) {
		close(pipefd[0]);
		setsid();
		ret = open_for_mount(store, &so, &autosnap, &st);
		if (ret) {
			report("cannot open store", store, ret);
			status = ret;
			if (write(pipefd[1], &status, sizeof(status)) < 0)
				status = 0;
			_exit(exit_code(ret));
		}
		if (chdir("/") < 0)
			_exit(EXIT_FAILURE);
		_exit(serve(st, store, mnt, &args, pipefd[1]));
	}
	close(pipefd[1]);
	fuse_opt_free_args(&args);
	if (read(pipefd[0], &status, sizeof(status)) != sizeof(status))
		status = -EIO;
	close(pipefd[0]);
	if (status) {
		waitpid(pid, NULL, 0);
		return exit_code(status);
	}
	/* Mounted: the first stat waits until the daemon answers. */
	{
		struct stat sb;

		if (stat(mnt, &sb) < 0) {
			report("mounted, but the filesystem does not answer at",
			       mnt, -errno);
			return EXIT_FAILURE;
		}
	}
	return 0;
}

/* ---- umount ---- */

static const char umount_usage[] =
	"stashfs umount MOUNTPOINT\n"
	"  Unmount and wait until the daemon has written everything and"
	" exited.";

/* Undo the octal escapes of /proc/self/mountinfo in place. */
static void unescape(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] &&
		    s[3]) {
			*o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 +
				      (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

/* The store served at mnt, from the mount's source (fsname). */
static int store_of_mount(const char *mnt, char *store, size_t size)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char *line = NULL;
	size_t cap = 0;
	int ret = -ENOENT;

	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		char *fields[12], *save = NULL, *p = line;
		int n = 0, dash = -1;

		for (char *t; n < 12 && (t = strtok_r(p, " \n", &save));
		     p = NULL) {
			if (!strcmp(t, "-") && dash < 0)
				dash = n;
			fields[n++] = t;
		}
		if (n < 5 || dash < 0 || dash + 2 >= n)
			continue;
		unescape(fields[4]);
		if (strcmp(fields[4], mnt) ||
		    strcmp(fields[dash + 1], "fuse.stashfs"))
			continue;
		unescape(fields[dash + 2]);
		if ((size_t)snprintf(store, size, "%s", fields[dash + 2]) <
		    size)
			ret = 0;
	}
	free(line);
	fclose(f);
	return ret;
}

static int cmd_umount(int argc, char **argv)
{
	char mnt[PATH_MAX], store[PATH_MAX], lock[PATH_MAX + 8];
	int fd, status;
	pid_t pid;

	if (argc == 2 && !strcmp(argv[1], "--help")) {
		printf("usage: %s\n", umount_usage);
		return 0;
	}
	if (argc != 2)
		die_usage(umount_usage);
	if (!realpath(argv[1], mnt)) {
		/* A dead daemon leaves a mount that cannot be stat'ed. */
		if (errno != ENOTCONN) {
			report("cannot unmount", argv[1], -errno);
			return EXIT_FAILURE;
		}
		snprintf(mnt, sizeof(mnt), "%s", argv[1]);
	}
	if (store_of_mount(mnt, store, sizeof(store))) {
		fprintf(stderr, "stashfs: %s is not a stashfs mount\n", mnt);
		return EXIT_FAILURE;
	}
	pid = fork();
	if (pid == 0) {
		execlp("fusermount3", "fusermount3", "-u", "--", mnt,
		       (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0) {
		fprintf(stderr, "stashfs: cannot unmount %s\n", mnt);
		return EXIT_FAILURE;
	}
	/* The daemon holds the store lock until it has closed the store. */
	snprintf(lock, sizeof(lock), "%s/lock", store);
	fd = open(lock, O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		if (flock(fd, LOCK_EX) == 0)
			flock(fd, LOCK_UN);
		close(fd);
	}
	return 0;
}

/* ---- stats ---- */

static const char stats_usage[] =
	"stashfs stats STORE|MOUNTPOINT [--json] [--key-file F |"
	" --passphrase-file F]\n"
	"  Print what the store holds: logical and stored bytes, dedup and\n"
	"  compression ratios, chunks, packs.";

static void human(double bytes, char *out, size_t size)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	int u = 0;

	while (bytes >= 1024 && u < 4) {
		bytes /= 1024;
		u++;
	}
	snprintf(out, size, u ? "%.1f %s" : "%.0f %s", bytes, units[u]);
}

static void print_stats(const char *json)
{
	static const char *const sizes[] = {
		"logical_bytes",      "unique_bytes", "stored_bytes",
		"store_folder_bytes", "dead_bytes",   NULL
	};
	cJSON *root = cJSON_Parse(json), *item;
	char buf[64];

	if (!root) {
		fputs(json, stdout);
		return;
	}
	cJSON_ArrayForEach(item, root)
	{
		bool size = false;

		for (int i = 0; sizes[i]; i++)
			size |= !strcmp(item->string, sizes[i]);
		if (size) {
			human(item->valuedouble, buf, sizeof(buf));
			printf("%-20s %s\n", item->string, buf);
		} else if (strstr(item->string, "ratio") ||
			   strstr(item->string, "rate")) {
			printf("%-20s %.2f\n", item->string, item->valuedouble);
		} else {
			printf("%-20s %.0f\n", item->string, item->valuedouble);
		}
	}
	cJSON_Delete(root);
}

static int cmd_stats(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		SECRET_LONG_OPTIONS,
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct secret_opts so = { 0 };
	struct stash_store *st;
	char *json = NULL;
	const char *path;
	bool as_json = false;
	int c, ret;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (secret_option(c, &so))
			continue;
		switch (c) {
		case 'j':
			as_json = true;
			break;
		case 'h':
			printf("usage: %s\n", stats_usage);
			return 0;
		default:
			die_usage(stats_usage);
		}
	}
	if (optind + 1 != argc)
		die_usage(stats_usage);
	path = argv[optind];
	if (is_store_dir(path)) {
		ret = open_store_or_mount_hint(path, &so, &st,
					       "run stats on its mount point");
		if (ret == -EBUSY)
			return EXIT_BUSY;
		if (!ret) {
			ret = stash_store_stats_json(st, &json);
			stash_store_close(st);
		}
	} else {
		ssize_t n = getxattr(path, "user.stashfs.stats", NULL, 0);

		ret = n < 0 ? -errno : 0;
		if (!ret) {
			json = calloc(1, (size_t)n + 1);
			n = json ? getxattr(path, "user.stashfs.stats", json,
					    (size_t)n)
				 : -1;
			ret = n < 0 ? -errno : 0;
		}
		if (ret == -ENODATA || ret == -ENOTSUP)
			ret = -ENOENT;
	}
	if (ret) {
		free(json);
		report("cannot read stats of", path, ret);
		return exit_code(ret);
	}
	if (as_json)
		printf("%s\n", json);
	else
		print_stats(json);
	free(json);
	return 0;
}

/* ---- passwd ---- */

static const char passwd_usage[] =
	"stashfs passwd STORE [--key-file F | --passphrase-file F]"
	" [--new-passphrase-file F]\n"
	"  Set a new passphrase (switching from a key file to a passphrase\n"
	"  if need be). The old secret is asked as for mount; the new\n"
	"  passphrase comes from --new-passphrase-file, STASHFS_NEW_PASSPHRASE\n"
	"  or a prompt. Only the wrapped master key changes; no data is\n"
	"  re-encrypted.";

static int cmd_passwd(int argc, char **argv)
{
	static const struct option opts[] = {
		SECRET_LONG_OPTIONS,
		{ "new-passphrase-file", required_argument, NULL, 'N' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct secret_opts so = { 0 };
	struct stash_config cfg;
	struct stash_secret old_secret, new_secret;
	char old_buf[MAX_SECRET], new_buf[MAX_SECRET];
	const char *store, *new_file = NULL;
	size_t old_len = 0, new_len = 0;
	int c, ret;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (secret_option(c, &so))
			continue;
		switch (c) {
		case 'N':
			new_file = optarg;
			break;
		case 'h':
			printf("usage: %s\n", passwd_usage);
			return 0;
		default:
			die_usage(passwd_usage);
		}
	}
	if (optind + 1 != argc)
		die_usage(passwd_usage);
	store = argv[optind];
	ret = stash_config_load(store, &cfg);
	if (!ret)
		ret = get_secret(&cfg, &so, old_buf, sizeof(old_buf), &old_len);
	if (!ret)
		ret = get_passphrase(new_file, "STASHFS_NEW_PASSPHRASE", true,
				     new_buf, sizeof(new_buf), &new_len);
	if (!ret) {
		old_secret = (struct stash_secret){ old_buf, old_len };
		new_secret = (struct stash_secret){ new_buf, new_len };
		ret = stash_config_rewrap(&cfg, &old_secret, STASH_KDF_SCRYPT,
					  &new_secret);
	}
	if (!ret)
		ret = stash_config_save(store, &cfg);
	stash_crypto_wipe(old_buf, sizeof(old_buf));
	stash_crypto_wipe(new_buf, sizeof(new_buf));
	if (ret) {
		report("cannot change the passphrase of", store, ret);
		return exit_code(ret);
	}
	printf("Passphrase changed for %s\n", store);
	return 0;
}

/* ---- main ---- */

static const char main_usage[] =
	"stashfs COMMAND [ARGS]\n"
	"commands:\n"
	"  init STORE      create a store\n"
	"  mount STORE MNT mount a store\n"
	"  umount MNT      unmount and wait for the daemon to finish\n"
	"  stats STORE|MNT show what a store holds\n"
	"  passwd STORE    set a new passphrase\n"
	"  verify STORE    check an unmounted store and name damaged files\n"
	"  snapshot ...    create, list, delete, rename, prune snapshots\n"
	"  gc STORE|MNT    give back the space of deleted data\n"
	"  export STORE|MNT SNAP FILE   write a snapshot as a tar archive\n"
	"  import FILE STORE|MNT        restore an exported archive\n"
	"  restore STORE|MNT SNAP [PATH...] [--to DIR]\n"
	"                  copy a snapshot (or paths in it) back\n"
	"  search STORE|MNT QUERY [--json]   files that match, best first\n"
	"  reindex STORE|MNT               rebuild the search index\n"
	"Run 'stashfs COMMAND --help' for a command's options.";

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int argc, char **argv);
	} cmds[] = {
		{ "init", cmd_init },	      { "mount", cmd_mount },
		{ "umount", cmd_umount },     { "stats", cmd_stats },
		{ "passwd", cmd_passwd },     { "verify", cmd_verify },
		{ "snapshot", cmd_snapshot }, { "gc", cmd_gc },
		{ "export", cmd_export },     { "import", cmd_import },
		{ "restore", cmd_restore },   { "search", cmd_search },
		{ "reindex", cmd_reindex },
	};

	if (argc < 2)
		die_usage(main_usage);
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		printf("usage: %s\n", main_usage);
		return 0;
	}
	/* Nothing stashfs creates on disk is for anyone else. */
	umask(077);
	if (getenv("STASHFS_DEBUG"))
		stash_log_set_level(STASH_LOG_DEBUG);
	for (size_t i = 0; i < STASH_ARRAY_SIZE(cmds); i++)
		if (!strcmp(argv[1], cmds[i].name))
			return cmds[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "stashfs: unknown command '%s'\n", argv[1]);
	die_usage(main_usage);
	return EXIT_USAGE;
}
