/*
 * cmd_gc.c - `stashfs gc STORE|MNT`: collect garbage in a store, mounted
 * or not, and say what it gave back.
 *
 * On a store folder it opens the store and runs gc itself. On a mount
 * point it asks the daemon: setxattr user.stashfs.gc (the options as
 * JSON) on the mount's root runs gc inside that request, and getxattr of
 * the same name reads the progress while it runs and the report after.
 * Progress goes to stderr, only when stderr is a terminal.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "gc.h"

#define GC_XATTR "user.stashfs.gc"
#define STATS_XATTR "user.stashfs.stats"

static const char gc_usage[] =
	"stashfs gc STORE|MNT [--threshold T] [--max-waste W] [--json]\n"
	"          [--key-file F | --passphrase-file F]\n"
	"  Collect garbage: delete the chunks no file or snapshot uses any\n"
	"  more, delete the packs nothing uses, rewrite the packs whose live\n"
	"  share is below T (default 0.5), then the emptiest others while\n"
	"  more than W (default 0.05) of the pack bytes would stay dead; the\n"
	"  space goes back to the disk. On a mounted store give the mount\n"
	"  point: files stay readable and writable meanwhile. Safe to\n"
	"  interrupt at any point. --json prints the report as JSON.";

static void human(double v, char *buf, size_t size)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	size_t u = 0;

	while (v >= 1024 && u + 1 < STASH_ARRAY_SIZE(units)) {
		v /= 1024;
		u++;
	}
	snprintf(buf, size, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

/* One line on stderr, rewritten in place. */
static void show_progress(void *arg, const struct stash_gc_report *r)
{
	char moved[32], total[32], rate[32], eta[32] = "";
	double bps = r->seconds > 0 ? (double)r->bytes_moved / r->seconds : 0;

	(void)arg;
	if (!r->running) {
		fputs("\r\033[K", stderr);
		return;
	}
	human((double)r->bytes_moved, moved, sizeof(moved));
	human((double)r->bytes_to_move, total, sizeof(total));
	human(bps, rate, sizeof(rate));
	if (bps > 0 && r->bytes_to_move > r->bytes_moved)
		snprintf(eta, sizeof(eta), ", ETA %.0f s",
			 (double)(r->bytes_to_move - r->bytes_moved) / bps);
	fprintf(stderr, "\r\033[Kgc: packs %llu/%llu, moved %s of %s, %s/s%s",
		(unsigned long long)r->packs_done,
		(unsigned long long)r->packs_planned, moved, total, rate, eta);
	fflush(stderr);
}

/* getxattr name of path into a malloc'd string. One call with room to
 * spare: the progress grows between a size query and a read. */
static int get_text(const char *path, const char *name, char **out)
{
	for (size_t size = 4096; size <= 65536; size *= 4) {
		char *buf = calloc(1, size + 1);
		ssize_t n;

		if (!buf)
			return -ENOMEM;
		n = getxattr(path, name, buf, size);
		if (n >= 0) {
			*out = buf;
			return 0;
		}
		free(buf);
		if (errno != ERANGE)
			return -errno;
	}
	return -ERANGE;
}

struct poller {
	const char *mnt;
	pthread_mutex_t lock; /* guards stop */
	pthread_cond_t cond;
	bool stop;
};

/* While the daemon runs gc (setxattr blocks), show its progress. */
static void *poll_progress(void *arg)
{
	struct poller *p = arg;
	struct timespec ts;

	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		struct stash_gc_report r;
		char *json = NULL;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 300 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&p->cond, &p->lock, &ts);
		if (p->stop)
			break;
		pthread_mutex_unlock(&p->lock);
		if (get_text(p->mnt, GC_XATTR, &json) == 0 &&
		    stash_gc_report_from_json(json, &r) == 0 && r.running)
			show_progress(NULL, &r);
		free(json);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

static int gc_mounted(const char *mnt, const char *opts, bool tty,
		      char **report)
{
	struct poller p = { .mnt = mnt };
	pthread_t thread;
	bool polling = false;
	char *stats = NULL;
	int ret;

	/* Only a stashfs root answers this: setxattr would otherwise just
	 * store an attribute on some other filesystem. */
	ret = get_text(mnt, STATS_XATTR, &stats);
	free(stats);
	if (ret)
		return ret == -ENODATA || ret == -ENOTSUP ? -ENOENT : ret;
	pthread_mutex_init(&p.lock, NULL);
	pthread_cond_init(&p.cond, NULL);
	if (tty)
		polling = pthread_create(&thread, NULL, poll_progress, &p) == 0;
	ret = setxattr(mnt, GC_XATTR, opts, strlen(opts), 0) < 0 ? -errno : 0;
	if (polling) {
		pthread_mutex_lock(&p.lock);
		p.stop = true;
		pthread_cond_signal(&p.cond);
		pthread_mutex_unlock(&p.lock);
		pthread_join(thread, NULL);
		fputs("\r\033[K", stderr);
	}
	pthread_cond_destroy(&p.cond);
	pthread_mutex_destroy(&p.lock);
	if (ret == -EALREADY)
		return ret;
	/* The report says how far a failed run got. */
	if (get_text(mnt, GC_XATTR, report) < 0)
		*report = NULL;
	return ret;
}

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static bool stop_asked(void *arg)
{
	(void)arg;
	return interrupted != 0;
}

static int gc_offline(const char *store, const struct secret_opts *so,
		      struct stash_gc_opts *o, bool tty, char **report)
{
	struct sigaction sa = { .sa_handler = on_signal };
	struct stash_gc_report r;
	struct stash_store *st;
	int ret, err;

	/* The summary says what the library's info lines would. */
	if (!getenv("STASHFS_DEBUG"))
		stash_log_set_level(STASH_LOG_WARN);
	ret = open_store(store, so, &st);
	if (ret)
		return ret;
	if (tty)
		o->progress = show_progress;
	/* Ctrl-C stops at the next step, with a report (kill -9 is safe
	 * too, but says nothing). */
	o->cancelled = stop_asked;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	ret = stash_store_gc(st, o, NULL);
	/* A run that started reports how far it got, even if it failed. */
	if (stash_store_gc_status(st, &r) < 0 ||
	    stash_gc_report_json(&r, report) < 0)
		*report = NULL;
	err = stash_store_close(st);
	return ret ? ret : err;
}

static void print_report(const char *json)
{
	struct stash_gc_report r;
	char dead[32], moved[32], before[32], after[32];

	if (stash_gc_report_from_json(json, &r) < 0)
		return;
	human((double)r.dead_bytes, dead, sizeof(dead));
	human((double)r.bytes_moved, moved, sizeof(moved));
	human((double)r.store_bytes_before, before, sizeof(before));
	human((double)r.store_bytes_after, after, sizeof(after));
	printf("dropped %llu dead chunks (%s)\n",
	       (unsigned long long)r.chunks_dropped, dead);
	printf("packs: %llu deleted, %llu rewritten (%llu chunks, %s moved)"
	       "%s\n",
	       (unsigned long long)r.packs_deleted,
	       (unsigned long long)r.packs_rewritten,
	       (unsigned long long)r.chunks_moved, moved,
	       r.packs_skipped ? ", some unreadable: run stashfs verify" : "");
	printf("store: %s -> %s in %.1f s\n", before, after, r.seconds);
}

static double parse_share(const char *arg)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(arg, &end);
	if (errno || end == arg || *end || !(v >= 0.0 && v <= 1.0))
		die_usage(gc_usage);
	return v;
}

int cmd_gc(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "threshold", required_argument, NULL, 't' },
		{ "max-waste", required_argument, NULL, 'w' },
		{ "json", no_argument, NULL, 'j' },
		SECRET_LONG_OPTIONS,
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct secret_opts so = { 0 };
	struct stash_gc_opts o;
	char json_opts[128] = "", *json = NULL;
	bool as_json = false, tty = isatty(STDERR_FILENO);
	const char *path;
	size_t len = 0;
	int c, ret;

	stash_gc_opts_init(&o);
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (secret_option(c, &so))
			continue;
		switch (c) {
		case 't':
			o.threshold = parse_share(optarg);
			break;
		case 'w':
			o.max_waste = parse_share(optarg);
			break;
		case 'j':
			as_json = true;
			break;
		case 'h':
			printf("usage: %s\n", gc_usage);
			return 0;
		default:
			die_usage(gc_usage);
		}
	}
	if (optind + 1 != argc)
		die_usage(gc_usage);
	path = argv[optind];

	if (is_store_dir(path)) {
		ret = gc_offline(path, &so, &o, tty, &json);
		if (ret == -EBUSY) {
			fprintf(stderr,
				"stashfs: %s is mounted: run gc on its mount"
				" point (stashfs gc MOUNTPOINT)\n",
				path);
			free(json);
			return EXIT_BUSY;
		}
	} else {
		len = (size_t)snprintf(json_opts, sizeof(json_opts),
				       "{\"threshold\":%.17g,"
				       "\"max_waste\":%.17g}",
				       o.threshold, o.max_waste);
		if (len >= sizeof(json_opts))
			die_usage(gc_usage);
		ret = gc_mounted(path, json_opts, tty, &json);
		if (ret == -ENOENT) {
			fprintf(stderr,
				"stashfs: %s is neither a store nor the mount"
				" point of one\n",
				path);
			return EXIT_FAILURE;
		}
	}
	if (ret == -EALREADY) {
		fprintf(stderr, "stashfs: a gc is already running on %s\n",
			path);
		free(json);
		return EXIT_BUSY;
	}
	if (json) {
		if (as_json)
			printf("%s\n", json);
		else
			print_report(json);
		fflush(stdout);
	}
	free(json);
	if (ret == -EINTR) {
		fprintf(stderr,
			"stashfs: gc of %s stopped: run it again to"
			" finish\n",
			path);
		return EXIT_FAILURE;
	}
	if (ret) {
		report("cannot collect garbage in", path, ret);
		return exit_code(ret);
	}
	return 0;
}
