/*
 * cli.h - what the `stashfs` subcommands share: exit codes, messages, and
 * finding the secret that opens a store.
 */
#ifndef STASH_CLI_H
#define STASH_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config.h"
#include "store.h"

/* Exit codes, besides 0 (success) and 1 (failure). */
enum {
	EXIT_USAGE = 2,
	EXIT_BADKEY = 3,
	EXIT_BUSY = 4,
};

#define MAX_SECRET 4096

/* How the user names the secret of a store. */
struct secret_opts {
	const char *key_file;	     /* --key-file */
	const char *passphrase_file; /* --passphrase-file */
	bool passphrase;	     /* --passphrase (init) */
};

/* Print "usage: ..." to stderr and exit with EXIT_USAGE. */
void die_usage(const char *usage) __attribute__((noreturn));
/* The exit code for a negative errno. */
int exit_code(int err);
/* "stashfs: WHAT PATH: why" on stderr, in words a person can act on. */
void report(const char *what, const char *path, int err);

/* The default key file of a store: $STASHFS_KEY_DIR/ID.key, else
 * ~/.config/stashfs/keys/ID.key. */
int key_dir(char *out, size_t size);
int default_key_path(const char *store_id, char *out, size_t size);
int mkdir_p(const char *path, mode_t mode);
/* Read a key or passphrase file into buf (*len bytes). */
int read_secret_file(const char *path, char *buf, size_t size, size_t *len);
/* A passphrase from file, else $env_name, else a prompt on /dev/tty
 * (asked twice when confirm is set). */
int get_passphrase(const char *file, const char *env_name, bool confirm,
		   char *buf, size_t size, size_t *len);
/* The secret that unlocks the store described by cfg. */
int get_secret(const struct stash_config *cfg, const struct secret_opts *o,
	       char *buf, size_t size, size_t *len);
/* --key-file F and --passphrase-file F, as every command but init takes
 * them ('k' and 'P' in getopt tables). True if c was one of them. */
bool secret_option(int c, struct secret_opts *so);
/* Their entries in a getopt_long table (needs <getopt.h>). Not
 * formatted: clang-format would indent the second entry. */
/* clang-format off */
#define SECRET_LONG_OPTIONS \
	{ "key-file", required_argument, NULL, 'k' }, \
	{ "passphrase-file", required_argument, NULL, 'P' }
/* clang-format on */
/* Load the config, find the secret and open the store at path. */
int open_store(const char *store, const struct secret_opts *so,
	       struct stash_store **out);
/* open_store for a command that also works on a mount: if the store is
 * in use (-EBUSY), say "stashfs: STORE is mounted: BUSY_HINT" on stderr
 * first, busy_hint telling what to name instead. */
int open_store_or_mount_hint(const char *store, const struct secret_opts *so,
			     struct stash_store **out, const char *busy_hint);
/* True if path is a store folder (it holds stashfs.json), false if it is
 * anything else (a mount point, say). */
bool is_store_dir(const char *path);

/* Subcommands outside stashfs.c: argv[0] is the subcommand's name. */
int cmd_verify(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
int cmd_gc(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_search(int argc, char **argv);
int cmd_reindex(int argc, char **argv);
/* `stashfs snapshot diff STORE|MNT A B`, argv[0] = "diff"
 * (tools/cmd_restore.c); cmd_snapshot hands it over. */
int snapshot_diff_main(int argc, char **argv);

#endif
