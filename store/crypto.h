/*
 * crypto.h - the cryptographic primitives stashfs uses, over OpenSSL 3.
 *
 * HKDF-SHA256 subkeys, HMAC-SHA256 chunk ids, AES-256-GCM sealing, scrypt
 * for passphrases, SHA-256 digests and key wrapping. Nothing here knows about
 * chunks, packs or pages: callers build their own associated data.
 * All functions are thread-safe. Keys are never copied into static memory.
 */
#ifndef STASH_CRYPTO_H
#define STASH_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* Length of a wrapped key: nonce + encrypted key + tag. */
#define STASH_WRAPPED_KEY_LEN (STASH_NONCE_LEN + STASH_KEY_LEN + STASH_TAG_LEN)

/* Fill buf with len bytes from the OS CSPRNG. 0 or -EIO. */
int stash_crypto_random(void *buf, size_t len);

/* Wipe secrets (OPENSSL_cleanse: not optimised away). */
void stash_crypto_wipe(void *buf, size_t len);

/*
 * HKDF-SHA256 (RFC 5869) with no salt: derive outlen bytes from the 32-byte
 * master key for the purpose named by info (a NUL-terminated label such as
 * "stashfs chunk-id v1"). 0 or -EIO.
 */
int stash_crypto_hkdf(const uint8_t ikm[STASH_KEY_LEN], const char *info,
		      uint8_t *out, size_t outlen);

/* HMAC-SHA256 of data under key: the chunk id. 0 or -EIO. */
int stash_crypto_hmac(const uint8_t key[STASH_KEY_LEN], const void *data,
		      size_t len, uint8_t out[STASH_ID_LEN]);

/* SHA-256 of data. 0 or -EIO. */
int stash_crypto_sha256(const void *data, size_t len, uint8_t out[32]);

/*
 * AES-256-GCM. seal encrypts len bytes of pt into ct (same length; ct may
 * equal pt) and writes the tag. open checks the tag and decrypts; it returns
 * -EBADMSG when the tag, the key, the nonce or the associated data do not
 * match, and then leaves pt undefined (callers must discard it).
 */
int stash_crypto_seal(const uint8_t key[STASH_KEY_LEN],
		      const uint8_t nonce[STASH_NONCE_LEN], const void *aad,
		      size_t aadlen, const void *pt, size_t len, void *ct,
		      uint8_t tag[STASH_TAG_LEN]);
int stash_crypto_open(const uint8_t key[STASH_KEY_LEN],
		      const uint8_t nonce[STASH_NONCE_LEN], const void *aad,
		      size_t aadlen, const void *ct, size_t len, void *pt,
		      const uint8_t tag[STASH_TAG_LEN]);

/*
 * scrypt (RFC 7914) of a passphrase into a 32-byte key-encryption key.
 * N must be a power of two > 1. 0, -EINVAL (bad parameters) or -ENOMEM.
 */
int stash_crypto_scrypt(const char *pass, size_t passlen, const uint8_t *salt,
			size_t saltlen, uint64_t n, uint32_t r, uint32_t p,
			uint8_t out[STASH_KEY_LEN]);

/*
 * Wrap a 32-byte key under a key-encryption key with a random nonce:
 * out = nonce || AES-256-GCM(key) || tag, with label as associated data.
 * unwrap returns -EBADMSG when kek or label is wrong or out was altered.
 */
int stash_crypto_wrap(const uint8_t kek[STASH_KEY_LEN], const char *label,
		      const uint8_t key[STASH_KEY_LEN],
		      uint8_t out[STASH_WRAPPED_KEY_LEN]);
int stash_crypto_unwrap(const uint8_t kek[STASH_KEY_LEN], const char *label,
			const uint8_t in[STASH_WRAPPED_KEY_LEN],
			uint8_t key[STASH_KEY_LEN]);

/* Lower-case hex of len bytes into out (2 * len + 1 bytes). */
void stash_hex(const uint8_t *in, size_t len, char *out);
/* Parse exactly 2 * len hex digits. 0 or -EINVAL. */
int stash_unhex(const char *in, uint8_t *out, size_t len);

#endif
