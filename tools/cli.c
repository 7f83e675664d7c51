/*
 * cli.c - what the `stashfs` subcommands share (see cli.h).
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "crypto.h"

void die_usage(const char *usage)
{
	fprintf(stderr, "usage: %s\n", usage);
	exit(EXIT_USAGE);
}

int exit_code(int err)
{
	switch (err) {
	case -EACCES:
	case -ENOKEY:
		return EXIT_BADKEY;
	case -EBUSY:
		return EXIT_BUSY;
	default:
		return EXIT_FAILURE;
	}
}

void report(const char *what, const char *path, int err)
{
	const char *why;

	if (err == -ENOKEY)
		return; /* get_secret said which key file it could not read */
	switch (err) {
	case -EACCES:
		why = "wrong key or passphrase";
		break;
	case -EBUSY:
		why = "the store is in use (already mounted?)";
		break;
	case -ENOENT:
		why = "no stashfs store there";
		break;
	case -EEXIST:
		why = "a store already exists there";
		break;
	case -ENOTEMPTY:
		why = "the folder is not empty";
		break;
	case -EBADMSG:
		why = "the store is damaged (see the message above)";
		break;
	case -EINVAL:
		why = "invalid store configuration (see the message above)";
		break;
	default:
		why = strerror(-err);
	}
	fprintf(stderr, "stashfs: %s %s: %s\n", what, path, why);
}

/* ~/.config/stashfs/keys (or $STASHFS_KEY_DIR): key files live outside
 * every store, so the store folder alone never opens. */
int key_dir(char *out, size_t size)
{
	const char *dir = getenv("STASHFS_KEY_DIR");
	const char *xdg = getenv("XDG_CONFIG_HOME");
	const char *home = getenv("HOME");
	int n;

	if (dir && *dir)
		n = snprintf(out, size, "%s", dir);
	else if (xdg && *xdg)
		n = snprintf(out, size, "%s/stashfs/keys", xdg);
	else if (home && *home)
		n = snprintf(out, size, "%s/.config/stashfs/keys", home);
	else
		return -ENOENT;
	return n > 0 && (size_t)n < size ? 0 : -ENAMETOOLONG;
}

int default_key_path(const char *store_id, char *out, size_t size)
{
	char dir[PATH_MAX];
	int ret = key_dir(dir, sizeof(dir));

	if (ret)
		return ret;
	if ((size_t)snprintf(out, size, "%s/%s.key", dir, store_id) >= size)
		return -ENAMETOOLONG;
	return 0;
}

int mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Read a small secret file whole (a passphrase file: one trailing newline
 * is dropped; key files are taken as written, see get_secret). */
int read_secret_file(const char *path, char *buf, size_t size, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, size);
	close(fd);
	if (n < 0)
		return -errno;
	if ((size_t)n == size)
		return -EFBIG;
	if (n > 0 && buf[n - 1] == '\n')
		n--;
	*len = (size_t)n;
	return 0;
}

/* Prompt on the terminal with echo off. */
static int prompt_passphrase(const char *prompt, char *buf, size_t size,
			     size_t *len)
{
	struct termios old, quiet;
	FILE *tty = fopen("/dev/tty", "r+");
	bool restore = false;
	int ret = 0;

	if (!tty) {
		fprintf(stderr, "stashfs: no terminal to ask for the"
				" passphrase; set STASHFS_PASSPHRASE or use"
				" --passphrase-file\n");
		return -ENOTTY;
	}
	/* Echo off before the prompt shows: a reply typed the moment it
	 * appears must not be echoed. */
	if (tcgetattr(fileno(tty), &old) == 0) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
		quiet.c_lflag |= ICANON;
		/* TCSADRAIN, not FLUSH: keep what was typed ahead. */
		restore = tcsetattr(fileno(tty), TCSADRAIN, &quiet) == 0;
	}
	fputs(prompt, tty);
	fflush(tty);
	if (!fgets(buf, (int)size, tty))
		ret = -EIO;
	if (restore)
		tcsetattr(fileno(tty), TCSAFLUSH, &old);
	fputc('\n', tty);
	fclose(tty);
	if (ret)
		return ret;
	*len = strcspn(buf, "\n");
	return 0;
}

/*
 * Get a passphrase: from a file, STASHFS_PASSPHRASE (env_name), or a
 * prompt (asked twice when confirm).
 */
int get_passphrase(const char *file, const char *env_name, bool confirm,
		   char *buf, size_t size, size_t *len)
{
	const char *env = getenv(env_name);
	char again[MAX_SECRET];
	size_t again_len;
	int ret;

	if (file)
		ret = read_secret_file(file, buf, size, len);
	else if (env) {
		*len = strlen(env);
		if (*len >= size)
			return -EFBIG;
		memcpy(buf, env, *len);
		ret = 0;
	} else {
		ret = prompt_passphrase("Passphrase: ", buf, size, len);
		if (!ret && confirm) {
			ret = prompt_passphrase("Passphrase again: ", again,
						sizeof(again), &again_len);
			if (!ret &&
			    (again_len != *len || memcmp(again, buf, *len))) {
				fprintf(stderr, "stashfs: the passphrases do"
						" not match\n");
				ret = -EINVAL;
			}
			stash_crypto_wipe(again, sizeof(again));
		}
	}
	if (!ret && *len == 0) {
		fprintf(stderr, "stashfs: empty passphrase\n");
		ret = -EINVAL;
	}
	return ret;
}

/* The secret that unlocks the store described by cfg. */
int get_secret(const struct stash_config *cfg, const struct secret_opts *o,
	       char *buf, size_t size, size_t *len)
{
	char path[PATH_MAX];
	const char *key = o->key_file;
	int ret;

	if (cfg->kdf == STASH_KDF_SCRYPT)
		return get_passphrase(o->passphrase_file, "STASHFS_PASSPHRASE",
				      false, buf, size, len);
	if (!key) {
		ret = default_key_path(cfg->store_id, path, sizeof(path));
		if (ret)
			return ret;
		key = path;
	}
	ret = read_secret_file(key, buf, size, len);
	if (ret) {
		/* The one line the user sees; report() adds nothing. */
		fprintf(stderr, "stashfs: cannot read key file %s: %s%s\n", key,
			strerror(-ret),
			o->key_file ? "" : " (name one with --key-file)");
		return -ENOKEY;
	}
	/* A raw 32-byte key may end in a newline byte: keep it. */
	if (*len == STASH_KEY_LEN - 1 && buf[*len] == '\n')
		(*len)++;
	return 0;
}

/* --key-file F and --passphrase-file F, as every command but init takes
 * them ('k' and 'P' in the option tables). True if c was one of them. */
bool secret_option(int c, struct secret_opts *so)
{
	if (c == 'k')
		so->key_file = optarg;
	else if (c == 'P')
		so->passphrase_file = optarg;
	else
		return false;
	return true;
}

/* ---- opening a store ---- */

int open_store(const char *store, const struct secret_opts *so,
	       struct stash_store **out)
{
	struct stash_config cfg;
	struct stash_secret secret;
	char buf[MAX_SECRET];
	size_t len = 0;
	int ret = stash_config_load(store, &cfg);

	if (ret)
		return ret;
	ret = get_secret(&cfg, so, buf, sizeof(buf), &len);
	if (ret)
		return ret;
	secret = (struct stash_secret){ buf, len };
	ret = stash_store_open(out, store, &secret);
	stash_crypto_wipe(buf, sizeof(buf));
	return ret;
}

int open_store_or_mount_hint(const char *store, const struct secret_opts *so,
			     struct stash_store **out, const char *busy_hint)
{
	int ret = open_store(store, so, out);

	if (ret == -EBUSY)
		fprintf(stderr, "stashfs: %s is mounted: %s\n", store,
			busy_hint);
	return ret;
}

bool is_store_dir(const char *path)
{
	char config[PATH_MAX];

	if ((size_t)snprintf(config, sizeof(config), "%s/stashfs.json", path) >=
	    sizeof(config))
		return false;
	return access(config, F_OK) == 0;
}
