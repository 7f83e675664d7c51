/*
 * cmd_verify.c - `stashfs verify`: check an unmounted store, name the
 * files (live and in snapshots) that damage touches and, with --repair,
 * repair what can be repaired and mark what cannot.
 *
 * The report goes to stdout; a progress line (--full, only when stderr is
 * a terminal) to stderr, redrawn in place and erased at the end.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli.h"
#include "verify.h"

/* Exit status of a run that repaired everything it found. */
#define EXIT_REPAIRED 5

static const char verify_usage[] =
	"stashfs verify STORE [--full] [--repair] [--key-file F |"
	" --passphrase-file F]\n"
	"  Check an unmounted store: the catalog's integrity, chunk reference\n"
	"  counts (against the files of the live tree and of every snapshot),\n"
	"  that every file's chunks cover it exactly, and that every chunk in\n"
	"  use is inside its pack file. --full also reads, decrypts and checks\n"
	"  every chunk (reads all the data; progress on stderr when it is a\n"
	"  terminal). Damaged files are named by path, snapshot copies as\n"
	"  'snapshot NAME: /path'.\n"
	"  --repair also repairs, in one catalog transaction: chunks the\n"
	"  catalog places wrongly are pointed at a good copy found through the\n"
	"  pack trailers, reference counts are set right, and files whose\n"
	"  data is lost are marked with the xattr " STASH_VERIFY_MARK_XATTR "\n"
	"  (the lost byte ranges; reads there fail with EIO, the rest reads).\n"
	"  Nothing is deleted. A marked file still counts as damaged.\n"
	"  Exit status: 0 clean, 1 damaged (found, or left after --repair),\n"
	"  2 usage, 3 wrong key or passphrase, 4 the store is mounted,\n"
	"  5 repaired (everything found was repaired).";

static void print_line(void *arg, const char *line)
{
	(void)arg;
	puts(line);
}

/* "1:02:03" or "2:03" for seconds s. */
static void clock_text(double s, char *out, size_t size)
{
	unsigned long t = s > 0 && s < 1e7 ? (unsigned long)(s + 0.5) : 0;

	if (t >= 3600)
		snprintf(out, size, "%lu:%02lu:%02lu", t / 3600, t / 60 % 60,
			 t % 60);
	else
		snprintf(out, size, "%lu:%02lu", t / 60, t % 60);
}

static void mib_text(uint64_t bytes, char *out, size_t size)
{
	double b = (double)bytes;

	if (b >= 1024.0 * 1024 * 1024)
		snprintf(out, size, "%.1f GiB", b / (1024.0 * 1024 * 1024));
	else
		snprintf(out, size, "%.1f MiB", b / (1024.0 * 1024));
}

/* One line on stderr, redrawn in place ("\r", erase to the end). */
static void show_progress(void *arg, const struct stash_verify_progress *p)
{
	char done[32], total[32], eta[32];
	double rate = p->elapsed > 0 ? (double)p->bytes_done / p->elapsed : 0;

	(void)arg;
	if (p->done) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
		return;
	}
	mib_text(p->bytes_done, done, sizeof(done));
	mib_text(p->bytes_total, total, sizeof(total));
	if (rate > 0)
		clock_text((double)(p->bytes_total - p->bytes_done) / rate, eta,
			   sizeof(eta));
	else
		snprintf(eta, sizeof(eta), "?");
	fprintf(stderr,
		"\rverify: %llu/%llu chunks, %s of %s, %.1f MiB/s, ETA %s"
		"\033[K",
		(unsigned long long)p->chunks_done,
		(unsigned long long)p->chunks_total, done, total,
		rate / (1024 * 1024), eta);
	fflush(stderr);
}

int cmd_verify(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "full", no_argument, NULL, 'f' },
		{ "repair", no_argument, NULL, 'r' },
		SECRET_LONG_OPTIONS,
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct stash_verify_opts vo = { .report = print_line };
	struct secret_opts so = { 0 };
	struct stash_verify_result res;
	struct stash_store *st;
	const char *store;
	int c, ret, err;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (secret_option(c, &so))
			continue;
		switch (c) {
		case 'f':
			vo.flags |= STASH_VERIFY_FULL;
			break;
		case 'r':
			vo.flags |= STASH_VERIFY_REPAIR;
			break;
		case 'h':
			printf("usage: %s\n", verify_usage);
			return 0;
		default:
			die_usage(verify_usage);
		}
	}
	if (optind + 1 != argc)
		die_usage(verify_usage);
	store = argv[optind];
	ret = open_store(store, &so, &st);
	if (ret == -EBUSY) {
		fprintf(stderr,
			"stashfs: %s is in use (mounted?): unmount it first"
			" (stashfs umount MOUNTPOINT), then verify\n",
			store);
		return EXIT_BUSY;
	}
	if (ret) {
		report("cannot open store", store, ret);
		return exit_code(ret);
	}
	if (isatty(STDERR_FILENO))
		vo.progress = show_progress;
	printf("verifying %s%s%s\n", store,
	       vo.flags & STASH_VERIFY_FULL ? " (full: reading every chunk)"
					    : "",
	       vo.flags & STASH_VERIFY_REPAIR ? " and repairing" : "");
	fflush(stdout);
	ret = stash_store_verify(st, &vo, &res);
	err = stash_store_close(st);
	fflush(stdout);
	if (ret) {
		report("cannot verify", store, ret);
		return EXIT_FAILURE;
	}
	if (err)
		report("verified, but could not close", store, err);
	if (err || res.problems > res.repaired)
		return EXIT_FAILURE;
	return res.problems ? EXIT_REPAIRED : 0;
}
