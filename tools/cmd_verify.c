/*
 * cmd_verify.c - `stashfs verify`: check an unmounted store and name the
 * files that damage touches.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "verify.h"

static const char verify_usage[] =
	"stashfs verify STORE [--full] [--key-file F | --passphrase-file F]\n"
	"  Check an unmounted store: the catalog's integrity, chunk reference\n"
	"  counts, that every file's chunks cover it exactly, and that every\n"
	"  chunk in use is inside its pack file. --full also reads, decrypts\n"
	"  and checks every chunk (reads all the data). Damaged files are\n"
	"  named by path. Exit status: 0 clean, 1 damaged, 2 usage, 3 wrong\n"
	"  key or passphrase, 4 the store is mounted.";

static void print_line(void *arg, const char *line)
{
	(void)arg;
	puts(line);
}

int cmd_verify(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "full", no_argument, NULL, 'f' },
		{ "key-file", required_argument, NULL, 'k' },
		{ "passphrase-file", required_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct secret_opts so = { 0 };
	struct stash_verify_result res;
	struct stash_store *st;
	unsigned flags = 0;
	const char *store;
	int c, ret, err;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (secret_option(c, &so))
			continue;
		switch (c) {
		case 'f':
			flags |= STASH_VERIFY_FULL;
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
	printf("verifying %s%s\n", store,
	       flags & STASH_VERIFY_FULL ? " (full: reading every chunk)" : "");
	ret = stash_store_verify(st, flags, print_line, NULL, &res);
	err = stash_store_close(st);
	fflush(stdout);
	if (ret) {
		report("cannot verify", store, ret);
		return EXIT_FAILURE;
	}
	if (err)
		report("verified, but could not close", store, err);
	return res.problems || err ? EXIT_FAILURE : 0;
}
