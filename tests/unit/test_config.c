/*
 * test_config.c - unit tests for STORE/stashfs.json and the keys
 * (store/config.c): defaults, save and load, unlocking with a key file or
 * a passphrase, rewrapping, and a malformed or missing file.
 *
 * Each test works in its own mkdtemp directory under /tmp, removed after.
 * Malformed files are made by editing a valid one with cJSON, so every
 * variant differs from a loadable file in exactly one way.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "codec.h"
#include "config.h"
#include "crypto.h"
#include "testutil.h"

#define SMALL_N 1024 /* scrypt cost for tests: fast, still scrypt */

struct ctx {
	char dir[64];			    /* mkdtemp directory */
	char json[128];			    /* dir/stashfs.json */
	char hexkey[2 * STASH_KEY_LEN + 1]; /* a key file, as hex */
	uint8_t rawkey[STASH_KEY_LEN];	    /* the same key, raw */
};

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));

	if (!c)
		return -1;
	snprintf(c->dir, sizeof(c->dir), "/tmp/test_config.XXXXXX");
	if (!mkdtemp(c->dir) ||
	    stash_crypto_random(c->rawkey, sizeof(c->rawkey)) < 0) {
		free(c);
		return -1;
	}
	stash_hex(c->rawkey, sizeof(c->rawkey), c->hexkey);
	snprintf(c->json, sizeof(c->json), "%s/stashfs.json", c->dir);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	test_rmtree(c->dir);
	free(c);
	return 0;
}

static struct stash_secret secret_of(const void *data, size_t len)
{
	return (struct stash_secret){ .data = data, .len = len };
}

static struct stash_secret hex_secret(const struct ctx *c)
{
	return secret_of(c->hexkey, strlen(c->hexkey));
}

static void assert_keys_equal(const struct stash_keys *a,
			      const struct stash_keys *b)
{
	assert_int_equal(a->key_id, b->key_id);
	assert_memory_equal(a->chunk_id, b->chunk_id, STASH_KEY_LEN);
	assert_memory_equal(a->chunk_data, b->chunk_data, STASH_KEY_LEN);
	assert_memory_equal(a->catalog, b->catalog, STASH_KEY_LEN);
	assert_memory_equal(a->gear, b->gear, STASH_KEY_LEN);
	assert_memory_equal(a->trailer, b->trailer, STASH_KEY_LEN);
	assert_memory_equal(a->config, b->config, STASH_KEY_LEN);
}

static void write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(stash_pwrite_all(fd, text, strlen(text), 0), 0);
	close(fd);
}

static char *read_text(const char *path)
{
	struct stat sb;
	char *buf;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &sb), 0);
	buf = malloc((size_t)sb.st_size + 1);
	assert_non_null(buf);
	assert_int_equal(stash_pread_all(fd, buf, (size_t)sb.st_size, 0), 0);
	buf[sb.st_size] = '\0';
	close(fd);
	return buf;
}

static void test_defaults(void **state)
{
	struct stash_config cfg;

	(void)state;
	memset(&cfg, 0xa5, sizeof(cfg));
	stash_config_defaults(&cfg);
	assert_int_equal(cfg.version, STASH_FORMAT_VERSION);
	assert_int_equal(cfg.chunker.min, 16 * 1024);
	assert_int_equal(cfg.chunker.avg, 64 * 1024);
	assert_int_equal(cfg.chunker.max, 256 * 1024);
	assert_int_equal(stash_chunker_params_check(&cfg.chunker), 0);
	assert_int_equal(cfg.codec, STASH_CODEC_ZSTD);
	assert_int_equal(cfg.level, STASH_CODEC_ZSTD_DEFAULT_LEVEL);
	assert_int_equal(cfg.kdf, STASH_KDF_KEYFILE);
	assert_int_equal(cfg.key_id, 1);
	assert_true(cfg.pack_size >= 1u << 20);
	/* scrypt parameters sane even though the key file is the default */
	assert_true(cfg.scrypt_n >= 2 && !(cfg.scrypt_n & (cfg.scrypt_n - 1)));
	assert_true(cfg.scrypt_r >= 1 && cfg.scrypt_p >= 1);
	/* nothing left over from before */
	assert_int_equal(cfg.store_id[0], '\0');
}

/* What stashfs init does: new master key, save; then load and unlock. */
static void test_init_round_trip(void **state)
{
	struct ctx *c = *state;
	struct stash_config cfg, back;
	struct stash_keys keys, again;
	struct stash_secret s = hex_secret(c);
	uint8_t id[STASH_STORE_ID_LEN];

	stash_config_defaults(&cfg);
	cfg.codec = STASH_CODEC_ZLIB;
	cfg.level = 9;
	cfg.chunker.min = 4096;
	cfg.chunker.avg = 16384;
	cfg.chunker.max = 65536;
	cfg.pack_size = 8u << 20;
	assert_int_equal(stash_config_new_master(&cfg, &s, &keys), 0);
	/* a store id was drawn: 32 hex digits */
	assert_int_equal(strlen(cfg.store_id), 2 * STASH_STORE_ID_LEN);
	assert_int_equal(stash_unhex(cfg.store_id, id, sizeof(id)), 0);
	assert_int_equal(stash_config_save(c->dir, &cfg), 0);
	/* no temp file left behind */
	{
		char tmp[160];

		snprintf(tmp, sizeof(tmp), "%s/.stashfs.json.tmp", c->dir);
		assert_int_equal(access(tmp, F_OK), -1);
	}

	memset(&back, 0x5a, sizeof(back));
	assert_int_equal(stash_config_load(c->dir, &back), 0);
	assert_int_equal(back.version, cfg.version);
	assert_string_equal(back.store_id, cfg.store_id);
	assert_int_equal(back.chunker.min, 4096);
	assert_int_equal(back.chunker.avg, 16384);
	assert_int_equal(back.chunker.max, 65536);
	assert_int_equal(back.codec, STASH_CODEC_ZLIB);
	assert_int_equal(back.level, 9);
	assert_int_equal(back.pack_size, 8u << 20);
	assert_int_equal(back.kdf, STASH_KDF_KEYFILE);
	assert_int_equal(back.key_id, cfg.key_id);
	assert_memory_equal(back.wrapped, cfg.wrapped, sizeof(cfg.wrapped));
	assert_memory_equal(back.mac, cfg.mac, sizeof(cfg.mac));

	/* the loaded file unlocks to the very keys init derived */
	assert_int_equal(stash_config_unlock(&back, &s, &again), 0);
	assert_keys_equal(&keys, &again);

	/* the file holds no key in the clear */
	{
		char *text = read_text(c->json);
		char hex[2 * STASH_KEY_LEN + 1];

		assert_null(strstr(text, c->hexkey));
		stash_hex(keys.catalog, STASH_KEY_LEN, hex);
		assert_null(strstr(text, hex));
		stash_hex(keys.chunk_data, STASH_KEY_LEN, hex);
		assert_null(strstr(text, hex));
		free(text);
	}

	/* a codec without a level (none) survives too */
	stash_config_defaults(&cfg);
	cfg.codec = STASH_CODEC_RAW;
	cfg.level = 0;
	assert_int_equal(stash_config_new_master(&cfg, &s, &keys), 0);
	assert_int_equal(stash_config_save(c->dir, &cfg), 0);
	assert_int_equal(stash_config_load(c->dir, &back), 0);
	assert_int_equal(back.codec, STASH_CODEC_RAW);
	stash_keys_wipe(&keys);
	stash_keys_wipe(&again);
}

static void test_store_id_kept(void **state)
{
	struct ctx *c = *state;
	struct stash_config cfg;
	struct stash_keys keys;
	struct stash_secret s = hex_secret(c);
	const char *id = "00112233445566778899aabbccddeeff";

	stash_config_defaults(&cfg);
	snprintf(cfg.store_id, sizeof(cfg.store_id), "%s", id);
	assert_int_equal(stash_config_new_master(&cfg, &s, &keys), 0);
	assert_string_equal(cfg.store_id, id);
	stash_keys_wipe(&keys);
}

static void test_keyfile_unlock(void **state)
{
	struct ctx *c = *state;
	struct stash_config cfg;
	struct stash_keys keys, got;
	struct stash_secret s = hex_secret(c), bad;
	char other[2 * STASH_KEY_LEN + 1], upper[2 * STASH_KEY_LEN + 1];
	char nl[2 * STASH_KEY_LEN + 2];
	uint8_t raw[STASH_KEY_LEN];

	stash_config_defaults(&cfg);
	assert_int_equal(stash_config_new_master(&cfg, &s, &keys), 0);

	/* the same key, hex or raw, unlocks */
	assert_int_equal(stash_config_unlock(&cfg, &s, &got), 0);
	assert_keys_equal(&keys, &got);
	bad = secret_of(c->rawkey, sizeof(c->rawkey));
	memset(&got, 0, sizeof(got));
	assert_int_equal(stash_config_unlock(&cfg, &bad, &got), 0);
	assert_keys_equal(&keys, &got);

	/* another key, hex or raw: -EACCES */
	memcpy(raw, c->rawkey, sizeof(raw));
	raw[7] ^= 0x01;
	stash_hex(raw, sizeof(raw), other);
	bad = secret_of(other, strlen(other));
	assert_int_equal(stash_config_unlock(&cfg, &bad, &got), -EACCES);
	bad = secret_of(raw, sizeof(raw));
	assert_int_equal(stash_config_unlock(&cfg, &bad, &got), -EACCES);

	/* garbage of every shape: -EACCES, never -EINVAL or a crash */
	bad = secret_of("", 0);
	assert_int_equal(stash_config_unlock(&cfg, &bad, &got), -EACCES);
	bad = secret_of("short", 5);
	assert_int_equal(stash_config_unlock(&cfg, &bad, &got), -EACCES);
	memset(upper, 'g', sizeof(upper) - 1); /* 64 chars, not hex */
	upper[sizeof(upper) - 1] = '\0';
	bad = secret_of(upper, 64);
	assert_int_equal(stash_config_unlock(&cfg, &bad, &got), -EACCES);
	/* 64 chars with a NUL inside */
	memcpy(upper, c->hexkey, sizeof(upper));
	upper[10] = '\0';
	bad = secret_of(upper, 64);
	assert_int_equal(stash_config_unlock(&cfg, &bad, &got), -EACCES);
	/* 33 raw bytes */
	memcpy(nl, c->rawkey, STASH_KEY_LEN);
	nl[STASH_KEY_LEN] = 0;
	bad = secret_of(nl, STASH_KEY_LEN + 1);
	assert_int_equal(stash_config_unlock(&cfg, &bad, &got), -EACCES);
	/* a hex key with one digit too many */
	snprintf(nl, sizeof(nl), "%s0", c->hexkey);
	bad = secret_of(nl, strlen(nl));
	assert_int_equal(stash_config_unlock(&cfg, &bad, &got), -EACCES);
	stash_keys_wipe(&keys);
	stash_keys_wipe(&got);
}

static void test_scrypt(void **state)
{
	struct ctx *c = *state;
	struct stash_config cfg, back;
	struct stash_keys keys, got;
	const char *pass = "correct horse battery staple";
	struct stash_secret s = secret_of(pass, strlen(pass)), bad;
	uint8_t zero[16] = { 0 };

	stash_config_defaults(&cfg);
	cfg.kdf = STASH_KDF_SCRYPT;
	cfg.scrypt_n = SMALL_N;
	cfg.scrypt_r = 8;
	cfg.scrypt_p = 1;
	assert_int_equal(stash_config_new_master(&cfg, &s, &keys), 0);
	assert_memory_not_equal(cfg.salt, zero, sizeof(zero));
	assert_int_equal(stash_config_unlock(&cfg, &s, &got), 0);
	assert_keys_equal(&keys, &got);

	bad = secret_of("correct horse battery stapl", 27);
	assert_int_equal(stash_config_unlock(&cfg, &bad, &got), -EACCES);
	bad = secret_of("", 0);
	assert_int_equal(stash_config_unlock(&cfg, &bad, &got), -EACCES);
	/* a passphrase is not a key file: the hex key does not unlock it */
	bad = hex_secret(c);
	assert_int_equal(stash_config_unlock(&cfg, &bad, &got), -EACCES);

	/* parameters and salt survive a save and load */
	assert_int_equal(stash_config_save(c->dir, &cfg), 0);
	assert_int_equal(stash_config_load(c->dir, &back), 0);
	assert_int_equal(back.kdf, STASH_KDF_SCRYPT);
	assert_int_equal(back.scrypt_n, SMALL_N);
	assert_int_equal(back.scrypt_r, 8);
	assert_int_equal(back.scrypt_p, 1);
	assert_memory_equal(back.salt, cfg.salt, sizeof(cfg.salt));
	memset(&got, 0, sizeof(got));
	assert_int_equal(stash_config_unlock(&back, &s, &got), 0);
	assert_keys_equal(&keys, &got);

	/* the salt matters: another salt, another KEK */
	back.salt[0] ^= 1;
	assert_int_equal(stash_config_unlock(&back, &s, &got), -EACCES);
	stash_keys_wipe(&keys);
	stash_keys_wipe(&got);
}

static void test_rewrap(void **state)
{
	struct ctx *c = *state;
	struct stash_config cfg, before, back;
	struct stash_keys keys, got;
	const char *pass = "new passphrase";
	const char *pass2 = "newer passphrase";
	struct stash_secret oldk = hex_secret(c);
	struct stash_secret news = secret_of(pass, strlen(pass));
	struct stash_secret news2 = secret_of(pass2, strlen(pass2));
	struct stash_secret wrong = secret_of("nope", 4);

	stash_config_defaults(&cfg);
	cfg.scrypt_n = SMALL_N;
	assert_int_equal(stash_config_new_master(&cfg, &oldk, &keys), 0);
	assert_int_equal(stash_config_save(c->dir, &cfg), 0);

	/* a wrong old secret changes nothing */
	before = cfg;
	assert_int_equal(
		stash_config_rewrap(&cfg, &wrong, STASH_KDF_SCRYPT, &news),
		-EACCES);
	assert_int_equal(cfg.kdf, STASH_KDF_KEYFILE);
	assert_memory_equal(cfg.wrapped, before.wrapped, sizeof(cfg.wrapped));
	assert_memory_equal(cfg.salt, before.salt, sizeof(cfg.salt));
	assert_int_equal(stash_config_unlock(&cfg, &oldk, &got), 0);

	/* key file -> passphrase */
	assert_int_equal(
		stash_config_rewrap(&cfg, &oldk, STASH_KDF_SCRYPT, &news), 0);
	assert_int_equal(cfg.kdf, STASH_KDF_SCRYPT);
	assert_memory_not_equal(cfg.wrapped, before.wrapped,
				sizeof(cfg.wrapped));
	/* only the wrapping changed */
	assert_string_equal(cfg.store_id, before.store_id);
	assert_int_equal(cfg.key_id, before.key_id);
	assert_int_equal(cfg.chunker.avg, before.chunker.avg);
	/* in memory only: the file on disk still opens with the key file */
	assert_int_equal(stash_config_load(c->dir, &back), 0);
	assert_int_equal(stash_config_unlock(&back, &oldk, &got), 0);

	assert_int_equal(stash_config_save(c->dir, &cfg), 0);
	assert_int_equal(stash_config_load(c->dir, &back), 0);
	assert_int_equal(back.kdf, STASH_KDF_SCRYPT);
	assert_int_equal(stash_config_unlock(&back, &oldk, &got), -EACCES);
	memset(&got, 0, sizeof(got));
	assert_int_equal(stash_config_unlock(&back, &news, &got), 0);
	/* the same master key: every derived key, so all data, unchanged */
	assert_keys_equal(&keys, &got);

	/* passphrase -> passphrase: fresh salt, old one stops working */
	before = back;
	assert_int_equal(
		stash_config_rewrap(&back, &news, STASH_KDF_SCRYPT, &news2), 0);
	assert_memory_not_equal(back.salt, before.salt, sizeof(back.salt));
	assert_int_equal(stash_config_unlock(&back, &news, &got), -EACCES);
	memset(&got, 0, sizeof(got));
	assert_int_equal(stash_config_unlock(&back, &news2, &got), 0);
	assert_keys_equal(&keys, &got);

	/* and back to a (new) key file */
	{
		uint8_t raw[STASH_KEY_LEN];
		struct stash_secret k2;

		assert_int_equal(stash_crypto_random(raw, sizeof(raw)), 0);
		k2 = secret_of(raw, sizeof(raw));
		assert_int_equal(stash_config_rewrap(&back, &news2,
						     STASH_KDF_KEYFILE, &k2),
				 0);
		assert_int_equal(back.kdf, STASH_KDF_KEYFILE);
		assert_int_equal(stash_config_unlock(&back, &news2, &got),
				 -EACCES);
		assert_int_equal(stash_config_unlock(&back, &oldk, &got),
				 -EACCES);
		memset(&got, 0, sizeof(got));
		assert_int_equal(stash_config_unlock(&back, &k2, &got), 0);
		assert_keys_equal(&keys, &got);
	}
	stash_keys_wipe(&keys);
	stash_keys_wipe(&got);
}

static void test_keys_distinct(void **state)
{
	struct ctx *c = *state;
	struct stash_config cfg1, cfg2;
	struct stash_keys k1, k2;
	struct stash_secret s = hex_secret(c);
	const uint8_t *all[12];
	uint8_t zero[STASH_KEY_LEN] = { 0 };

	stash_config_defaults(&cfg1);
	stash_config_defaults(&cfg2);
	assert_int_equal(stash_config_new_master(&cfg1, &s, &k1), 0);
	/* the same secret, another store: another master key */
	assert_int_equal(stash_config_new_master(&cfg2, &s, &k2), 0);
	assert_string_not_equal(cfg1.store_id, cfg2.store_id);
	assert_int_equal(k1.key_id, cfg1.key_id);
	all[0] = k1.chunk_id;
	all[1] = k1.chunk_data;
	all[2] = k1.catalog;
	all[3] = k1.gear;
	all[4] = k1.trailer;
	all[5] = k1.config;
	all[6] = k2.chunk_id;
	all[7] = k2.chunk_data;
	all[8] = k2.catalog;
	all[9] = k2.gear;
	all[10] = k2.trailer;
	all[11] = k2.config;
	for (int i = 0; i < 12; i++) {
		assert_memory_not_equal(all[i], zero, STASH_KEY_LEN);
		for (int j = i + 1; j < 12; j++)
			assert_memory_not_equal(all[i], all[j], STASH_KEY_LEN);
	}
	/* the KEK is not the master key: no derived key is the key file */
	for (int i = 0; i < 6; i++)
		assert_memory_not_equal(all[i], c->rawkey, STASH_KEY_LEN);

	stash_keys_wipe(&k1);
	assert_memory_equal(k1.catalog, zero, STASH_KEY_LEN);
	assert_memory_equal(k1.chunk_id, zero, STASH_KEY_LEN);
	assert_memory_equal(k1.trailer, zero, STASH_KEY_LEN);
	assert_memory_equal(k1.config, zero, STASH_KEY_LEN);
	stash_keys_wipe(&k2);
}

/* ---- malformed files ---- */

/* A valid file (scrypt, so the kdf object has every field) as cJSON. */
static cJSON *valid_json(struct ctx *c)
{
	struct stash_config cfg;
	struct stash_keys keys;
	struct stash_secret s = secret_of("pw", 2);
	char *text;
	cJSON *root;

	stash_config_defaults(&cfg);
	cfg.kdf = STASH_KDF_SCRYPT;
	cfg.scrypt_n = SMALL_N;
	assert_int_equal(stash_config_new_master(&cfg, &s, &keys), 0);
	stash_keys_wipe(&keys);
	assert_int_equal(stash_config_save(c->dir, &cfg), 0);
	assert_int_equal(stash_config_load(c->dir, &cfg), 0);
	text = read_text(c->json);
	root = cJSON_Parse(text);
	free(text);
	assert_non_null(root);
	return root;
}

/* Write root to the store and expect load to answer want. */
static void expect_load(struct ctx *c, cJSON *root, int want, const char *what)
{
	struct stash_config cfg;
	char *text = cJSON_PrintUnformatted(root);
	int got;

	assert_non_null(text);
	write_text(c->json, text);
	free(text);
	got = stash_config_load(c->dir, &cfg);
	if (got != want)
		print_error("variant \"%s\": load gave %d, want %d\n", what,
			    got, want);
	assert_int_equal(got, want);
}

/* The path "a" or "a.b" inside root. */
static cJSON *parent_of(cJSON *root, const char *path, const char **leaf)
{
	const char *dot = strchr(path, '.');
	char head[32];

	if (!dot) {
		*leaf = path;
		return root;
	}
	assert_true((size_t)(dot - path) < sizeof(head));
	memcpy(head, path, (size_t)(dot - path));
	head[dot - path] = '\0';
	*leaf = dot + 1;
	return cJSON_GetObjectItemCaseSensitive(root, head);
}

/* A copy of the valid file with path replaced by v (NULL: removed). */
static void variant(struct ctx *c, const char *path, cJSON *v, int want)
{
	cJSON *root = valid_json(c);
	const char *leaf;
	cJSON *obj = parent_of(root, path, &leaf);

	assert_non_null(obj);
	if (v)
		assert_true(
			cJSON_ReplaceItemInObjectCaseSensitive(obj, leaf, v));
	else
		cJSON_DeleteItemFromObjectCaseSensitive(obj, leaf);
	expect_load(c, root, want, path);
	cJSON_Delete(root);
}

/* Malformed files are logged; the log is not what is tested here. */
static void quiet(enum stash_log_level level, const char *msg)
{
	(void)level;
	(void)msg;
}

static void test_malformed(void **state)
{
	struct ctx *c = *state;
	static const char *const fields[] = {
		"format",      "version",     "store_id",    "chunker",
		"chunker.min", "chunker.avg", "chunker.max", "codec",
		"pack_size",   "key_id",      "master_key",  "kdf",
		"kdf.type",    "kdf.n",	      "kdf.r",	     "kdf.p",
		"kdf.salt",    "mac",
	};
	static const char *const texts[] = {
		"not json at all",
		"{\"format\": \"stashfs\", \"version\": 1",
		"[]",
		"null",
		"42",
		"\"stashfs\"",
		"{}",
	};
	cJSON *root;

	stash_log_set_sink(quiet);
	/* the unchanged file loads: the variants below differ only once */
	root = valid_json(c);
	expect_load(c, root, 0, "valid");
	cJSON_Delete(root);

	/* not JSON, or not an object */
	for (size_t i = 0; i < STASH_ARRAY_SIZE(texts); i++) {
		struct stash_config cfg;

		write_text(c->json, texts[i]);
		assert_int_equal(stash_config_load(c->dir, &cfg), -EINVAL);
	}
	/* an empty file */
	{
		struct stash_config cfg;
		int fd = open(c->json, O_WRONLY | O_TRUNC);

		assert_true(fd >= 0);
		close(fd);
		assert_int_equal(stash_config_load(c->dir, &cfg), -EINVAL);
	}

	/* every field missing in turn */
	for (size_t i = 0; i < STASH_ARRAY_SIZE(fields); i++)
		variant(c, fields[i], NULL, -EINVAL);

	/* wrong types */
	variant(c, "format", cJSON_CreateNumber(1), -EINVAL);
	variant(c, "format", cJSON_CreateString("borg"), -EINVAL);
	variant(c, "version", cJSON_CreateString("1"), -EINVAL);
	variant(c, "version", cJSON_CreateTrue(), -EINVAL);
	variant(c, "store_id", cJSON_CreateNumber(7), -EINVAL);
	variant(c, "chunker", cJSON_CreateNumber(65536), -EINVAL);
	variant(c, "chunker", cJSON_CreateArray(), -EINVAL);
	variant(c, "chunker.min", cJSON_CreateString("16384"), -EINVAL);
	variant(c, "chunker.avg", cJSON_CreateNull(), -EINVAL);
	variant(c, "codec", cJSON_CreateNumber(1), -EINVAL);
	variant(c, "codec", cJSON_CreateString("lzma"), -EINVAL);
	variant(c, "pack_size", cJSON_CreateString("33554432"), -EINVAL);
	variant(c, "key_id", cJSON_CreateString("1"), -EINVAL);
	variant(c, "master_key", cJSON_CreateNumber(0), -EINVAL);
	variant(c, "kdf", cJSON_CreateString("scrypt"), -EINVAL);
	variant(c, "kdf.type", cJSON_CreateNumber(1), -EINVAL);
	variant(c, "kdf.type", cJSON_CreateString("argon2"), -EINVAL);
	variant(c, "kdf.n", cJSON_CreateString("1024"), -EINVAL);
	variant(c, "kdf.salt", cJSON_CreateNumber(0), -EINVAL);

	/* out-of-range numbers */
	variant(c, "version", cJSON_CreateNumber(STASH_FORMAT_VERSION + 1),
		-EINVAL);
	variant(c, "version", cJSON_CreateNumber(0), -EINVAL);
	variant(c, "version", cJSON_CreateNumber(-1), -EINVAL);
	variant(c, "version", cJSON_CreateNumber(1.5), -EINVAL);
	variant(c, "pack_size", cJSON_CreateNumber(0), -EINVAL);
	variant(c, "pack_size", cJSON_CreateNumber(-33554432), -EINVAL);
	variant(c, "key_id", cJSON_CreateNumber(0), -EINVAL);
	variant(c, "kdf.n", cJSON_CreateNumber(1000), -EINVAL); /* not 2^k */
	variant(c, "kdf.n", cJSON_CreateNumber(0), -EINVAL);
	variant(c, "kdf.r", cJSON_CreateNumber(0), -EINVAL);
	variant(c, "kdf.p", cJSON_CreateNumber(0), -EINVAL);

	/* bad hex: wrong digits, wrong length */
	variant(c, "store_id",
		cJSON_CreateString("zz112233445566778899aabbccddeeff"),
		-EINVAL);
	variant(c, "store_id", cJSON_CreateString("0011"), -EINVAL);
	variant(c, "store_id",
		cJSON_CreateString("00112233445566778899aabbccddeeff00"),
		-EINVAL);
	variant(c, "master_key", cJSON_CreateString("abc"), -EINVAL);
	{
		char hex[2 * STASH_WRAPPED_KEY_LEN + 1];

		memset(hex, 'a', sizeof(hex) - 1);
		hex[sizeof(hex) - 1] = '\0';
		hex[17] = 'x';
		variant(c, "master_key", cJSON_CreateString(hex), -EINVAL);
		hex[17] = 'a';
		hex[sizeof(hex) - 2] = '\0'; /* one digit short */
		variant(c, "master_key", cJSON_CreateString(hex), -EINVAL);
	}
	variant(c, "mac", cJSON_CreateString("00"), -EINVAL);
	variant(c, "mac", cJSON_CreateNumber(0), -EINVAL);
	variant(c, "kdf.salt", cJSON_CreateString("00"), -EINVAL);
	variant(c, "kdf.salt",
		cJSON_CreateString("0011223344556677889900aabbccddqq"),
		-EINVAL);

	/* bad chunker parameters */
	variant(c, "chunker.min", cJSON_CreateNumber(65536), -EINVAL);
	variant(c, "chunker.min", cJSON_CreateNumber(0), -EINVAL);
	variant(c, "chunker.min", cJSON_CreateNumber(32), -EINVAL);
	variant(c, "chunker.avg", cJSON_CreateNumber(65535), -EINVAL);
	variant(c, "chunker.avg", cJSON_CreateNumber(300000), -EINVAL);
	variant(c, "chunker.max", cJSON_CreateNumber(65536), -EINVAL);
	variant(c, "chunker.max",
		cJSON_CreateNumber(2.0 * STASH_CHUNK_MAX_LIMIT), -EINVAL);
	variant(c, "chunker.max", cJSON_CreateNumber(-1), -EINVAL);

	/* a key file store needs no scrypt fields: the variant loads */
	root = valid_json(c);
	{
		cJSON *kdf = cJSON_GetObjectItemCaseSensitive(root, "kdf");

		cJSON_ReplaceItemInObjectCaseSensitive(
			kdf, "type", cJSON_CreateString("keyfile"));
		cJSON_DeleteItemFromObjectCaseSensitive(kdf, "n");
		cJSON_DeleteItemFromObjectCaseSensitive(kdf, "salt");
	}
	expect_load(c, root, 0, "keyfile without scrypt fields");
	cJSON_Delete(root);
	stash_log_set_sink(NULL);
}

/*
 * Change one field of a saved key file store in the file itself, as
 * someone without the key could; load it (it parses) and unlock.
 */
static int tampered_unlock(struct ctx *c, const char *path, cJSON *v)
{
	struct stash_config cfg;
	struct stash_keys keys;
	struct stash_secret s = hex_secret(c);
	char *text = read_text(c->json);
	cJSON *root = cJSON_Parse(text);
	const char *leaf;
	cJSON *obj;
	int ret;

	free(text);
	assert_non_null(root);
	obj = parent_of(root, path, &leaf);
	assert_non_null(obj);
	assert_true(cJSON_ReplaceItemInObjectCaseSensitive(obj, leaf, v));
	text = cJSON_Print(root);
	cJSON_Delete(root);
	assert_non_null(text);
	write_text(c->json, text);
	free(text);
	assert_int_equal(stash_config_load(c->dir, &cfg), 0);
	ret = stash_config_unlock(&cfg, &s, &keys);
	stash_keys_wipe(&keys);
	return ret;
}

/* The fields that decide how data is cut, named and sealed carry a MAC. */
static void test_mac(void **state)
{
	struct ctx *c = *state;
	struct stash_config cfg, back;
	struct stash_keys keys, got;
	struct stash_secret s = hex_secret(c);
	char *orig;

	stash_config_defaults(&cfg);
	assert_int_equal(stash_config_new_master(&cfg, &s, &keys), 0);
	assert_int_equal(stash_config_save(c->dir, &cfg), 0);
	orig = read_text(c->json);

	stash_log_set_sink(quiet);
	/* every covered field, changed to another valid value */
	assert_int_equal(
		tampered_unlock(c, "chunker.avg", cJSON_CreateNumber(32768)),
		-EBADMSG);
	write_text(c->json, orig);
	assert_int_equal(
		tampered_unlock(c, "chunker.min", cJSON_CreateNumber(8192)),
		-EBADMSG);
	write_text(c->json, orig);
	assert_int_equal(
		tampered_unlock(c, "chunker.max", cJSON_CreateNumber(1 << 20)),
		-EBADMSG);
	write_text(c->json, orig);
	assert_int_equal(
		tampered_unlock(c, "codec", cJSON_CreateString("none")),
		-EBADMSG);
	write_text(c->json, orig);
	assert_int_equal(
		tampered_unlock(c, "codec", cJSON_CreateString("zstd:19")),
		-EBADMSG);
	write_text(c->json, orig);
	assert_int_equal(
		tampered_unlock(c, "pack_size", cJSON_CreateNumber(1 << 20)),
		-EBADMSG);
	write_text(c->json, orig);
	assert_int_equal(
		tampered_unlock(
			c, "store_id",
			cJSON_CreateString("00112233445566778899aabbccddeeff")),
		-EBADMSG);
	write_text(c->json, orig);
	{
		char hex[2 * 32 + 1];

		memset(hex, '0', sizeof(hex) - 1);
		hex[sizeof(hex) - 1] = '\0';
		assert_int_equal(
			tampered_unlock(c, "mac", cJSON_CreateString(hex)),
			-EBADMSG);
	}
	/* a wrong secret is still just a wrong secret */
	write_text(c->json, orig);
	{
		struct stash_secret bad = { "nope", 4 };

		assert_int_equal(stash_config_load(c->dir, &back), 0);
		assert_int_equal(stash_config_unlock(&back, &bad, &got),
				 -EACCES);
	}
	stash_log_set_sink(NULL);

	/* the untouched file unlocks */
	write_text(c->json, orig);
	assert_int_equal(stash_config_load(c->dir, &back), 0);
	assert_int_equal(stash_config_unlock(&back, &s, &got), 0);
	assert_keys_equal(&keys, &got);

	/* a change made with the key, sealed again, is accepted */
	back.pack_size = 4u << 20;
	assert_int_equal(stash_config_seal(&back, &got), 0);
	assert_int_equal(stash_config_save(c->dir, &back), 0);
	assert_int_equal(stash_config_load(c->dir, &cfg), 0);
	assert_int_equal(cfg.pack_size, 4u << 20);
	assert_int_equal(stash_config_unlock(&cfg, &s, &got), 0);
	assert_keys_equal(&keys, &got);

	/* a rewrap keeps the MAC valid (the same master key) */
	{
		struct stash_secret pw = { "pw", 2 };

		cfg.scrypt_n = SMALL_N;
		assert_int_equal(
			stash_config_rewrap(&cfg, &s, STASH_KDF_SCRYPT, &pw),
			0);
		assert_int_equal(stash_config_save(c->dir, &cfg), 0);
		assert_int_equal(stash_config_load(c->dir, &back), 0);
		assert_int_equal(stash_config_unlock(&back, &pw, &got), 0);
		assert_keys_equal(&keys, &got);
	}
	free(orig);
	stash_keys_wipe(&keys);
	stash_keys_wipe(&got);
}

static void test_missing(void **state)
{
	struct ctx *c = *state;
	struct stash_config cfg;
	char sub[128];

	assert_int_equal(stash_config_load(c->dir, &cfg), -ENOENT);
	snprintf(sub, sizeof(sub), "%s/nowhere", c->dir);
	assert_int_equal(stash_config_load(sub, &cfg), -ENOENT);
	/* saving where there is no folder fails cleanly too */
	stash_config_defaults(&cfg);
	assert_true(stash_config_save(sub, &cfg) < 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_defaults),      T(test_init_round_trip),
		T(test_store_id_kept), T(test_keyfile_unlock),
		T(test_scrypt),	       T(test_rewrap),
		T(test_keys_distinct), T(test_malformed),
		T(test_mac),	       T(test_missing),
	};

	stash_log_set_level(STASH_LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
