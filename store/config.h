/*
 * config.h - STORE/stashfs.json: the store's format version, chunker
 * parameters, codec, key-derivation parameters and the wrapped master key;
 * and the keys derived from that master key.
 *
 * The file holds no secret in the clear: the master key is wrapped
 * (AES-256-GCM) by a key-encryption key that comes either from a key file
 * kept outside the store or from a passphrase through scrypt. Changing the
 * passphrase rewraps the master key and re-encrypts nothing else.
 */
#ifndef STASH_CONFIG_H
#define STASH_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "chunker.h"
#include "crypto.h"

#define STASH_FORMAT_VERSION 1
#define STASH_STORE_ID_LEN 16 /* random bytes naming the store */

enum stash_kdf {
	STASH_KDF_KEYFILE = 0, /* KEK = HKDF(key file bytes) */
	STASH_KDF_SCRYPT = 1,  /* KEK = scrypt(passphrase, salt) */
};

struct stash_config {
	int version;				   /* store format version */
	char store_id[2 * STASH_STORE_ID_LEN + 1]; /* hex, names the key file */
	struct stash_chunker_params chunker;	   /* fixed at init */
	int codec;		     /* enum stash_codec for new chunks */
	int level;		     /* codec level, 0 = default */
	uint64_t pack_size;	     /* target pack file size, bytes */
	enum stash_kdf kdf;	     /* where the KEK comes from */
	uint64_t scrypt_n;	     /* scrypt cost (power of two) */
	uint32_t scrypt_r, scrypt_p; /* scrypt block size, parallelism */
	uint8_t salt[16];	     /* scrypt salt */
	uint32_t key_id;	     /* id of the master key in use */
	uint8_t wrapped[STASH_WRAPPED_KEY_LEN]; /* master key under the KEK */
	uint8_t mac[32]; /* HMAC of the fields above the KDF's, see config.c */
};

/* A key file's content or a passphrase: what unlocks a store. */
struct stash_secret {
	const void *data; /* key file bytes or passphrase */
	size_t len;
};

/* Keys derived from the master key with HKDF, one per purpose. */
struct stash_keys {
	uint32_t key_id;		   /* which master key */
	uint8_t chunk_id[STASH_KEY_LEN];   /* HMAC key for chunk ids */
	uint8_t chunk_data[STASH_KEY_LEN]; /* AES key for chunk data */
	uint8_t catalog[STASH_KEY_LEN];	   /* AES key for catalog pages */
	uint8_t gear[STASH_KEY_LEN];	   /* chunker gear table seed */
	uint8_t trailer[STASH_KEY_LEN];	   /* AES key for pack trailers */
	uint8_t config[STASH_KEY_LEN];	   /* HMAC key for stashfs.json */
};

/* Defaults for a new store (key file KDF, zstd, 16/64/256 KiB chunks). */
void stash_config_defaults(struct stash_config *cfg);

/*
 * Read and check STORE/stashfs.json. -ENOENT when there is no store at
 * path, -EINVAL (with a logged reason) when the file is malformed or of an
 * unknown version.
 */
int stash_config_load(const char *store, struct stash_config *cfg);

/* Write STORE/stashfs.json atomically (temp file, fsync, rename). */
int stash_config_save(const char *store, const struct stash_config *cfg);

/*
 * Create a new master key (and a store id, unless cfg has one), wrap it under
 * the KEK from secret (kdf and scrypt parameters as set in cfg; a fresh salt is
 * drawn) into cfg, and derive keys. 0 or a negative errno.
 */
int stash_config_new_master(struct stash_config *cfg,
			    const struct stash_secret *secret,
			    struct stash_keys *keys);

/*
 * Unwrap the master key with secret and derive keys. -EACCES if the secret
 * is wrong; -EBADMSG if stashfs.json was changed by someone without the
 * key (its MAC does not match).
 */
int stash_config_unlock(const struct stash_config *cfg,
			const struct stash_secret *secret,
			struct stash_keys *keys);

/*
 * Rewrap the master key: unlock with old, wrap under new with kdf (fresh
 * salt). Updates cfg in memory only; the caller saves it. -EACCES if old
 * is wrong.
 */
int stash_config_rewrap(struct stash_config *cfg,
			const struct stash_secret *old_secret,
			enum stash_kdf kdf,
			const struct stash_secret *new_secret);

/* Recompute cfg->mac after changing a field it covers. */
int stash_config_seal(struct stash_config *cfg, const struct stash_keys *keys);

/* Wipe every key. */
void stash_keys_wipe(struct stash_keys *keys);

#endif
