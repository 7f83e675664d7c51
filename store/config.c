/*
 * config.c - read, check and write STORE/stashfs.json; wrap, unwrap and
 * derive keys.
 *
 * Every field read from the file is checked before use: a store with a
 * malformed or newer-format stashfs.json is refused, never half-opened.
 */
#include "config.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "codec.h"

#define CONFIG_NAME "stashfs.json"
#define CONFIG_MAX_BYTES (64 * 1024)
#define WRAP_LABEL "stashfs master key v1"

void stash_config_defaults(struct stash_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->version = STASH_FORMAT_VERSION;
	cfg->chunker.min = STASH_CHUNK_MIN_DEFAULT;
	cfg->chunker.avg = STASH_CHUNK_AVG_DEFAULT;
	cfg->chunker.max = STASH_CHUNK_MAX_DEFAULT;
	cfg->codec = STASH_CODEC_ZSTD;
	cfg->level = STASH_CODEC_ZSTD_DEFAULT_LEVEL;
	cfg->pack_size = 32u * 1024 * 1024;
	cfg->kdf = STASH_KDF_KEYFILE;
	cfg->scrypt_n = 1u << 15;
	cfg->scrypt_r = 8;
	cfg->scrypt_p = 1;
	cfg->key_id = 1;
}

static int read_small_file(const char *path, char **out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf;
	int ret;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		goto out;
	}
	if (st.st_size <= 0 || st.st_size > CONFIG_MAX_BYTES) {
		ret = -EINVAL;
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		ret = -ENOMEM;
		goto out;
	}
	ret = stash_pread_all(fd, buf, (size_t)st.st_size, 0);
	if (ret < 0) {
		free(buf);
		goto out;
	}
	buf[st.st_size] = '\0';
	*out = buf;
out:
	close(fd);
	return ret;
}

/* A non-negative integer field within [lo, hi]. */
static int get_uint(const cJSON *obj, const char *name, uint64_t lo,
		    uint64_t hi, uint64_t *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);

	if (!cJSON_IsNumber(v) || v->valuedouble < (double)lo ||
	    v->valuedouble > (double)hi ||
	    v->valuedouble != (double)(uint64_t)v->valuedouble) {
		stash_log(STASH_LOG_ERR, "%s: field \"%s\" missing or invalid",
			  CONFIG_NAME, name);
		return -EINVAL;
	}
	*out = (uint64_t)v->valuedouble;
	return 0;
}

static int get_hex(const cJSON *obj, const char *name, uint8_t *out, size_t len)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);

	if (!cJSON_IsString(v) || strlen(v->valuestring) != 2 * len ||
	    stash_unhex(v->valuestring, out, len) < 0) {
		stash_log(STASH_LOG_ERR, "%s: field \"%s\" missing or invalid",
			  CONFIG_NAME, name);
		return -EINVAL;
	}
	return 0;
}

static int parse_config(const cJSON *root, struct stash_config *cfg)
{
	const cJSON *chunker, *kdf, *codec, *format;
	uint64_t v, min, avg, max;
	uint8_t id[STASH_STORE_ID_LEN];
	int ret;

	stash_config_defaults(cfg);
	format = cJSON_GetObjectItemCaseSensitive(root, "format");
	if (!cJSON_IsString(format) || strcmp(format->valuestring, "stashfs")) {
		stash_log(STASH_LOG_ERR, "%s: not a stashfs store",
			  CONFIG_NAME);
		return -EINVAL;
	}
	if ((ret = get_uint(root, "version", 1, 1000, &v)) < 0)
		return ret;
	if (v > STASH_FORMAT_VERSION) {
		stash_log(STASH_LOG_ERR,
			  "store format %llu is newer than this stashfs (%d)",
			  (unsigned long long)v, STASH_FORMAT_VERSION);
		return -EINVAL;
	}
	cfg->version = (int)v;
	if ((ret = get_hex(root, "store_id", id, sizeof(id))) < 0)
		return ret;
	stash_hex(id, sizeof(id), cfg->store_id);

	chunker = cJSON_GetObjectItemCaseSensitive(root, "chunker");
	if (!cJSON_IsObject(chunker) ||
	    get_uint(chunker, "min", 1, UINT32_MAX, &min) < 0 ||
	    get_uint(chunker, "avg", 1, UINT32_MAX, &avg) < 0 ||
	    get_uint(chunker, "max", 1, UINT32_MAX, &max) < 0)
		return -EINVAL;
	cfg->chunker.min = (uint32_t)min;
	cfg->chunker.avg = (uint32_t)avg;
	cfg->chunker.max = (uint32_t)max;
	if (stash_chunker_params_check(&cfg->chunker) < 0) {
		stash_log(STASH_LOG_ERR, "%s: invalid chunker parameters",
			  CONFIG_NAME);
		return -EINVAL;
	}

	codec = cJSON_GetObjectItemCaseSensitive(root, "codec");
	if (!cJSON_IsString(codec) ||
	    stash_codec_parse(codec->valuestring, &cfg->codec, &cfg->level) <
		    0) {
		stash_log(STASH_LOG_ERR, "%s: invalid codec", CONFIG_NAME);
		return -EINVAL;
	}
	if ((ret = get_uint(root, "pack_size", 1u << 20, 1ull << 32, &v)) < 0)
		return ret;
	cfg->pack_size = v;
	if ((ret = get_uint(root, "key_id", 1, UINT32_MAX, &v)) < 0)
		return ret;
	cfg->key_id = (uint32_t)v;
	if ((ret = get_hex(root, "master_key", cfg->wrapped,
			   sizeof(cfg->wrapped))) < 0)
		return ret;
	if ((ret = get_hex(root, "mac", cfg->mac, sizeof(cfg->mac))) < 0)
		return ret;

	kdf = cJSON_GetObjectItemCaseSensitive(root, "kdf");
	if (!cJSON_IsObject(kdf))
		return -EINVAL;
	codec = cJSON_GetObjectItemCaseSensitive(kdf, "type");
	if (cJSON_IsString(codec) && !strcmp(codec->valuestring, "keyfile")) {
		cfg->kdf = STASH_KDF_KEYFILE;
	} else if (cJSON_IsString(codec) &&
		   !strcmp(codec->valuestring, "scrypt")) {
		cfg->kdf = STASH_KDF_SCRYPT;
		if ((ret = get_uint(kdf, "n", 2, 1ull << 30, &v)) < 0)
			return ret;
		if (v & (v - 1))
			return -EINVAL;
		cfg->scrypt_n = v;
		if ((ret = get_uint(kdf, "r", 1, 64, &v)) < 0)
			return ret;
		cfg->scrypt_r = (uint32_t)v;
		if ((ret = get_uint(kdf, "p", 1, 64, &v)) < 0)
			return ret;
		cfg->scrypt_p = (uint32_t)v;
		if ((ret = get_hex(kdf, "salt", cfg->salt, sizeof(cfg->salt))) <
		    0)
			return ret;
	} else {
		stash_log(STASH_LOG_ERR, "%s: unknown kdf", CONFIG_NAME);
		return -EINVAL;
	}
	return 0;
}

int stash_config_load(const char *store, struct stash_config *cfg)
{
	char path[4096];
	char *text = NULL;
	cJSON *root;
	int ret;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", store, CONFIG_NAME) >=
	    sizeof(path))
		return -ENAMETOOLONG;
	ret = read_small_file(path, &text);
	if (ret < 0)
		return ret == -EINVAL ? -EINVAL : ret;
	root = cJSON_Parse(text);
	free(text);
	if (!root) {
		stash_log(STASH_LOG_ERR, "%s: not valid JSON", path);
		return -EINVAL;
	}
	ret = parse_config(root, cfg);
	cJSON_Delete(root);
	return ret;
}

static char *config_to_json(const struct stash_config *cfg)
{
	char hex[2 * STASH_WRAPPED_KEY_LEN + 1];
	char codec[32];
	cJSON *root = cJSON_CreateObject(), *chunker, *kdf;
	char *text = NULL;

	if (!root)
		return NULL;
	cJSON_AddStringToObject(root, "format", "stashfs");
	cJSON_AddNumberToObject(root, "version", cfg->version);
	cJSON_AddStringToObject(root, "store_id", cfg->store_id);
	chunker = cJSON_AddObjectToObject(root, "chunker");
	if (!chunker)
		goto out;
	cJSON_AddNumberToObject(chunker, "min", cfg->chunker.min);
	cJSON_AddNumberToObject(chunker, "avg", cfg->chunker.avg);
	cJSON_AddNumberToObject(chunker, "max", cfg->chunker.max);
	/* Level 0 means the codec's default: write the bare name. */
	if (cfg->level)
		snprintf(codec, sizeof(codec), "%s:%d",
			 stash_codec_name(cfg->codec), cfg->level);
	else
		snprintf(codec, sizeof(codec), "%s",
			 stash_codec_name(cfg->codec));
	cJSON_AddStringToObject(root, "codec",
				cfg->codec == STASH_CODEC_RAW ? "none" : codec);
	cJSON_AddNumberToObject(root, "pack_size", (double)cfg->pack_size);
	kdf = cJSON_AddObjectToObject(root, "kdf");
	if (!kdf)
		goto out;
	if (cfg->kdf == STASH_KDF_SCRYPT) {
		cJSON_AddStringToObject(kdf, "type", "scrypt");
		cJSON_AddNumberToObject(kdf, "n", (double)cfg->scrypt_n);
		cJSON_AddNumberToObject(kdf, "r", cfg->scrypt_r);
		cJSON_AddNumberToObject(kdf, "p", cfg->scrypt_p);
		stash_hex(cfg->salt, sizeof(cfg->salt), hex);
		cJSON_AddStringToObject(kdf, "salt", hex);
	} else {
		cJSON_AddStringToObject(kdf, "type", "keyfile");
	}
	cJSON_AddNumberToObject(root, "key_id", cfg->key_id);
	stash_hex(cfg->wrapped, sizeof(cfg->wrapped), hex);
	cJSON_AddStringToObject(root, "master_key", hex);
	stash_hex(cfg->mac, sizeof(cfg->mac), hex);
	cJSON_AddStringToObject(root, "mac", hex);
	text = cJSON_Print(root);
out:
	cJSON_Delete(root);
	return text;
}

int stash_config_save(const char *store, const struct stash_config *cfg)
{
	char path[4096], tmp[4096];
	char *text = config_to_json(cfg);
	size_t len;
	int fd, ret;

	if (!text)
		return -ENOMEM;
	len = strlen(text);
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", store, CONFIG_NAME) >=
		    sizeof(path) ||
	    (size_t)snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", store,
			     CONFIG_NAME) >= sizeof(tmp)) {
		free(text);
		return -ENAMETOOLONG;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		goto out;
	}
	ret = stash_pwrite_all(fd, text, len, 0);
	if (!ret && fsync(fd) < 0)
		ret = -errno;
	close(fd);
	if (!ret && rename(tmp, path) < 0)
		ret = -errno;
	if (!ret)
		ret = stash_fsync_dir(store);
	if (ret < 0)
		unlink(tmp);
out:
	free(text);
	return ret;
}

static int derive_kek(const struct stash_config *cfg, enum stash_kdf kdf,
		      const struct stash_secret *s, uint8_t kek[STASH_KEY_LEN])
{
	if (kdf == STASH_KDF_SCRYPT)
		return stash_crypto_scrypt(s->data, s->len, cfg->salt,
					   sizeof(cfg->salt), cfg->scrypt_n,
					   cfg->scrypt_r, cfg->scrypt_p, kek);
	/* A key file holds 32 random bytes, as 64 hex digits or raw. */
	{
		char hex[2 * STASH_KEY_LEN + 1];
		uint8_t ikm[STASH_KEY_LEN];
		int ret = -EINVAL;

		if (s->len == 2 * STASH_KEY_LEN) {
			memcpy(hex, s->data, sizeof(hex) - 1);
			hex[sizeof(hex) - 1] = '\0';
			if (stash_unhex(hex, ikm, sizeof(ikm)) == 0)
				ret = 0;
		} else if (s->len == STASH_KEY_LEN) {
			memcpy(ikm, s->data, sizeof(ikm));
			ret = 0;
		}
		if (!ret)
			ret = stash_crypto_hkdf(ikm, "stashfs key file v1", kek,
						STASH_KEY_LEN);
		stash_crypto_wipe(hex, sizeof(hex));
		stash_crypto_wipe(ikm, sizeof(ikm));
		return ret;
	}
}

static int derive_keys(const uint8_t master[STASH_KEY_LEN], uint32_t key_id,
		       struct stash_keys *keys)
{
	int ret;

	keys->key_id = key_id;
	ret = stash_crypto_hkdf(master, "stashfs chunk-id v1", keys->chunk_id,
				STASH_KEY_LEN);
	if (!ret)
		ret = stash_crypto_hkdf(master, "stashfs chunk-data v1",
					keys->chunk_data, STASH_KEY_LEN);
	if (!ret)
		ret = stash_crypto_hkdf(master, "stashfs catalog v1",
					keys->catalog, STASH_KEY_LEN);
	if (!ret)
		ret = stash_crypto_hkdf(master, "stashfs chunker-gear v1",
					keys->gear, STASH_KEY_LEN);
	if (!ret)
		ret = stash_crypto_hkdf(master, "stashfs pack-trailer v1",
					keys->trailer, STASH_KEY_LEN);
	if (!ret)
		ret = stash_crypto_hkdf(master, "stashfs config-mac v1",
					keys->config, STASH_KEY_LEN);
	if (ret)
		stash_keys_wipe(keys);
	return ret;
}

/*
 * The MAC covers what decides how data is cut, named and sealed, so that
 * nobody without the key can change it (a codec of "none" would expose
 * exact chunk sizes, say). The KDF fields and the wrapped key need no MAC:
 * AES-GCM authenticates the wrapped key, and wrong KDF fields only fail.
 */
static int config_mac(const struct stash_config *cfg,
		      const struct stash_keys *keys, uint8_t out[32])
{
	char text[256];
	int n = snprintf(text, sizeof(text),
			 "stashfs config v1|%d|%s|%u|%u|%u|%d|%d|%llu|%u",
			 cfg->version, cfg->store_id, cfg->chunker.min,
			 cfg->chunker.avg, cfg->chunker.max, cfg->codec,
			 cfg->level, (unsigned long long)cfg->pack_size,
			 cfg->key_id);

	if (n < 0 || (size_t)n >= sizeof(text))
		return -EINVAL;
	return stash_crypto_hmac(keys->config, text, (size_t)n, out);
}

int stash_config_seal(struct stash_config *cfg, const struct stash_keys *keys)
{
	return config_mac(cfg, keys, cfg->mac);
}

int stash_config_new_master(struct stash_config *cfg,
			    const struct stash_secret *secret,
			    struct stash_keys *keys)
{
	uint8_t master[STASH_KEY_LEN], kek[STASH_KEY_LEN];
	uint8_t id[STASH_STORE_ID_LEN];
	int ret;

	ret = stash_crypto_random(id, sizeof(id));
	if (!ret)
		ret = stash_crypto_random(master, sizeof(master));
	if (!ret && !cfg->store_id[0])
		stash_hex(id, sizeof(id), cfg->store_id);
	if (!ret)
		ret = stash_crypto_random(cfg->salt, sizeof(cfg->salt));
	if (ret)
		goto out;
	ret = derive_kek(cfg, cfg->kdf, secret, kek);
	if (!ret)
		ret = stash_crypto_wrap(kek, WRAP_LABEL, master, cfg->wrapped);
	if (!ret)
		ret = derive_keys(master, cfg->key_id, keys);
	if (!ret)
		ret = stash_config_seal(cfg, keys);
out:
	stash_crypto_wipe(master, sizeof(master));
	stash_crypto_wipe(kek, sizeof(kek));
	return ret;
}

static int unwrap_master(const struct stash_config *cfg,
			 const struct stash_secret *secret,
			 uint8_t master[STASH_KEY_LEN])
{
	uint8_t kek[STASH_KEY_LEN];
	int ret = derive_kek(cfg, cfg->kdf, secret, kek);

	if (!ret)
		ret = stash_crypto_unwrap(kek, WRAP_LABEL, cfg->wrapped,
					  master);
	stash_crypto_wipe(kek, sizeof(kek));
	/* A malformed key file is as wrong as a wrong one. */
	if (ret == -EBADMSG || ret == -EINVAL)
		ret = -EACCES;
	return ret;
}

int stash_config_unlock(const struct stash_config *cfg,
			const struct stash_secret *secret,
			struct stash_keys *keys)
{
	uint8_t master[STASH_KEY_LEN], mac[32];
	int ret = unwrap_master(cfg, secret, master);

	if (!ret)
		ret = derive_keys(master, cfg->key_id, keys);
	stash_crypto_wipe(master, sizeof(master));
	if (!ret)
		ret = config_mac(cfg, keys, mac);
	if (!ret && CRYPTO_memcmp(mac, cfg->mac, sizeof(mac)) != 0) {
		stash_log(STASH_LOG_ERR, "stashfs.json was changed by someone"
					 " without the key: refusing it");
		ret = -EBADMSG;
	}
	if (ret)
		stash_keys_wipe(keys);
	return ret;
}

int stash_config_rewrap(struct stash_config *cfg,
			const struct stash_secret *old_secret,
			enum stash_kdf kdf,
			const struct stash_secret *new_secret)
{
	struct stash_config next = *cfg;
	uint8_t master[STASH_KEY_LEN], kek[STASH_KEY_LEN];
	int ret = unwrap_master(cfg, old_secret, master);

	if (ret)
		return ret;
	next.kdf = kdf;
	ret = stash_crypto_random(next.salt, sizeof(next.salt));
	if (!ret)
		ret = derive_kek(&next, kdf, new_secret, kek);
	if (!ret)
		ret = stash_crypto_wrap(kek, WRAP_LABEL, master, next.wrapped);
	if (!ret)
		*cfg = next;
	stash_crypto_wipe(master, sizeof(master));
	stash_crypto_wipe(kek, sizeof(kek));
	return ret;
}

void stash_keys_wipe(struct stash_keys *keys)
{
	stash_crypto_wipe(keys, sizeof(*keys));
}
