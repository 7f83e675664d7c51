/*
 * crypto.c - HKDF, HMAC, SHA-256, AES-256-GCM, scrypt, key wrapping and hex,
 * over the OpenSSL 3 EVP API.
 *
 * The algorithms are fetched from the default provider once per process
 * (pthread_once) and kept; each call builds its own short-lived context, so
 * every function is thread-safe and no key is ever held in static memory.
 * This file does not choose nonces for callers (except wrap), build
 * associated data or know any on-disk layout: that is the callers' job.
 *
 * Contents: error translation, algorithm fetch, random and wipe, hashes and
 * MACs, KDFs, AES-256-GCM, key wrapping, hex.
 */
#include "crypto.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "util.h"

/* RFC 5869: at most 255 blocks of output. */
#define HKDF_MAX_OUT ((size_t)255 * 32)
/* OpenSSL 3.0 keeps at most this many bytes of HKDF info. */
#define HKDF_MAX_INFO 1024
/*
 * Memory cap for scrypt, as OpenSSL's own default: enough for N = 2^20,
 * r = 8 (1 GiB), refused beyond so a hostile stashfs.json cannot make us
 * allocate without bound.
 */
#define SCRYPT_MAXMEM ((uint64_t)1025 * 1024 * 1024)
/* EVP_CipherUpdate takes an int length: feed it in steps of this size. */
#define GCM_STEP ((size_t)1 << 30)

/*
 * Algorithms fetched once and shared by all threads; OpenSSL allows
 * concurrent use of a fetched algorithm and of a context nobody modifies.
 * hmac_tmpl is an HMAC context with the digest already set but no key:
 * each call duplicates it, which avoids a digest fetch per chunk.
 */
static pthread_once_t algs_once = PTHREAD_ONCE_INIT;
static EVP_MD *alg_sha256;     /* SHA-256 */
static EVP_MAC *alg_hmac;      /* HMAC */
static EVP_MAC_CTX *hmac_tmpl; /* HMAC-SHA256, unkeyed; only duplicated */
static EVP_CIPHER *alg_gcm;    /* AES-256-GCM */
static EVP_KDF *alg_hkdf;      /* HKDF */
static EVP_KDF *alg_scrypt;    /* SCRYPT */
static int algs_status;	       /* 0, or why fetch_algs failed */

/*
 * The one place OpenSSL failures become errno values. Allocation failures
 * found on the thread's error queue become -ENOMEM whatever the caller
 * expected; anything else is dflt. -EIO is logged with OpenSSL's reason
 * (never with key material); -EBADMSG is the caller's to report, since it
 * knows what failed to authenticate. The queue is cleared either way so a
 * later call does not see stale errors.
 */
static int ossl_error(const char *what, int dflt)
{
	unsigned long e = ERR_peek_last_error();
	int ret = dflt;

	if (e != 0 && ((!ERR_SYSTEM_ERROR(e) &&
			ERR_GET_REASON(e) == ERR_R_MALLOC_FAILURE) ||
		       (ERR_SYSTEM_ERROR(e) && ERR_GET_REASON(e) == ENOMEM)))
		ret = -ENOMEM;
	if (ret == -EIO) {
		char buf[256];

		if (e != 0)
			ERR_error_string_n(e, buf, sizeof(buf));
		else
			snprintf(buf, sizeof(buf), "no OpenSSL error queued");
		stash_log(STASH_LOG_ERR, "crypto: %s failed: %s", what, buf);
	}
	ERR_clear_error();
	return ret;
}

/*
 * Runs once. All five algorithms come from the default provider; if any is
 * missing the installation is broken and every call fails with -EIO
 * (logged here, once, with OpenSSL's reason).
 */
static void fetch_algs(void)
{
	OSSL_PARAM params[2];

	alg_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	alg_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	alg_gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	alg_hkdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_HKDF, NULL);
	alg_scrypt = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_SCRYPT, NULL);
	if (alg_hmac != NULL)
		hmac_tmpl = EVP_MAC_CTX_new(alg_hmac);
	if (hmac_tmpl != NULL) {
		params[0] = OSSL_PARAM_construct_utf8_string(
			OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
		params[1] = OSSL_PARAM_construct_end();
		if (!EVP_MAC_CTX_set_params(hmac_tmpl, params)) {
			EVP_MAC_CTX_free(hmac_tmpl);
			hmac_tmpl = NULL;
		}
	}
	if (alg_sha256 == NULL || hmac_tmpl == NULL || alg_gcm == NULL ||
	    alg_hkdf == NULL || alg_scrypt == NULL)
		algs_status = ossl_error("fetching OpenSSL algorithms", -EIO);
}

/* 0 once the algorithms are fetched, or a negative errno. */
static int algs_ready(void)
{
	int rc = pthread_once(&algs_once, fetch_algs);

	return rc ? -rc : algs_status;
}

int stash_crypto_random(void *buf, size_t len)
{
	uint8_t *p = buf;

	/* RAND_bytes takes an int. */
	while (len > 0) {
		int n = (int)STASH_MIN(len, (size_t)INT_MAX);

		if (RAND_bytes(p, n) != 1)
			return ossl_error("RAND_bytes", -EIO);
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

void stash_crypto_wipe(void *buf, size_t len)
{
	if (buf != NULL && len > 0)
		OPENSSL_cleanse(buf, len);
}

int stash_crypto_sha256(const void *data, size_t len, uint8_t out[32])
{
	int ret;

	ret = algs_ready();
	if (ret)
		return ret;
	if (data == NULL && len > 0)
		return -EINVAL;
	if (!EVP_Digest(len ? data : "", len, out, NULL, alg_sha256, NULL))
		return ossl_error("SHA-256", -EIO);
	return 0;
}

int stash_crypto_hmac(const uint8_t key[STASH_KEY_LEN], const void *data,
		      size_t len, uint8_t out[STASH_ID_LEN])
{
	EVP_MAC_CTX *ctx;
	size_t outlen = 0;
	int ret;

	ret = algs_ready();
	if (ret)
		return ret;
	if (data == NULL && len > 0)
		return -EINVAL;
	ctx = EVP_MAC_CTX_dup(hmac_tmpl);
	if (ctx == NULL)
		return ossl_error("HMAC context", -ENOMEM);
	if (!EVP_MAC_init(ctx, key, STASH_KEY_LEN, NULL) ||
	    (len > 0 && !EVP_MAC_update(ctx, data, len)) ||
	    !EVP_MAC_final(ctx, out, &outlen, STASH_ID_LEN) ||
	    outlen != STASH_ID_LEN)
		ret = ossl_error("HMAC-SHA256", -EIO);
	/* Frees and cleanses the keyed inner and outer states. */
	EVP_MAC_CTX_free(ctx);
	return ret;
}

int stash_crypto_hkdf(const uint8_t ikm[STASH_KEY_LEN], const char *info,
		      uint8_t *out, size_t outlen)
{
	EVP_KDF_CTX *ctx;
	OSSL_PARAM params[4];
	size_t infolen;
	int ret;

	ret = algs_ready();
	if (ret)
		return ret;
	if (info == NULL || out == NULL || outlen == 0 || outlen > HKDF_MAX_OUT)
		return -EINVAL;
	infolen = strnlen(info, HKDF_MAX_INFO + 1);
	if (infolen > HKDF_MAX_INFO)
		return -EINVAL;
	ctx = EVP_KDF_CTX_new(alg_hkdf);
	if (ctx == NULL)
		return ossl_error("HKDF context", -ENOMEM);
	/* No salt: RFC 5869 then uses HashLen zero bytes. */
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
						     (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_octet_string(
		OSSL_KDF_PARAM_KEY, (void *)ikm, STASH_KEY_LEN);
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
						      (void *)info, infolen);
	params[3] = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(ctx, out, outlen, params) != 1) {
		stash_crypto_wipe(out, outlen);
		ret = ossl_error("HKDF-SHA256", -EIO);
	}
	/* Frees and cleanses the copy of ikm the context holds. */
	EVP_KDF_CTX_free(ctx);
	return ret;
}

/*
 * The same parameter checks OpenSSL's scrypt makes, done here so that bad
 * parameters are -EINVAL and too much memory is -ENOMEM, not both -EIO.
 */
static int scrypt_check(uint64_t n, uint32_t r, uint32_t p)
{
	uint64_t blen, vlen;

	if (n < 2 || (n & (n - 1)) != 0 || r == 0 || p == 0)
		return -EINVAL;
	/* RFC 7914: p * r < 2^30 and N < 2^(128 * r / 8). */
	if (p > ((1u << 30) - 1) / r)
		return -EINVAL;
	if (16 * (uint64_t)r < 64 && n >= (uint64_t)1 << (16 * r))
		return -EINVAL;
	blen = (uint64_t)p * 128 * r;
	if (blen > INT_MAX)
		return -ENOMEM;
	if (n + 2 > UINT64_MAX / 128 / r)
		return -ENOMEM;
	vlen = 128 * (uint64_t)r * (n + 2);
	if (blen > SCRYPT_MAXMEM || vlen > SCRYPT_MAXMEM - blen)
		return -ENOMEM;
	return 0;
}

int stash_crypto_scrypt(const char *pass, size_t passlen, const uint8_t *salt,
			size_t saltlen, uint64_t n, uint32_t r, uint32_t p,
			uint8_t out[STASH_KEY_LEN])
{
	EVP_KDF_CTX *ctx;
	OSSL_PARAM params[7];
	uint64_t maxmem = SCRYPT_MAXMEM;
	int ret;

	ret = algs_ready();
	if (ret)
		return ret;
	if ((pass == NULL && passlen > 0) || (salt == NULL && saltlen > 0))
		return -EINVAL;
	ret = scrypt_check(n, r, p);
	if (ret)
		return ret;
	ctx = EVP_KDF_CTX_new(alg_scrypt);
	if (ctx == NULL)
		return ossl_error("scrypt context", -ENOMEM);
	params[0] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD,
						      (void *)pass, passlen);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
						      (void *)salt, saltlen);
	params[2] = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n);
	params[3] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r);
	params[4] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p);
	params[5] = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM,
						&maxmem);
	params[6] = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(ctx, out, STASH_KEY_LEN, params) != 1) {
		stash_crypto_wipe(out, STASH_KEY_LEN);
		/* The parameters were checked: what is left is memory. */
		ret = ossl_error("scrypt", -ENOMEM);
	}
	/* Frees and cleanses the copy of the passphrase. */
	EVP_KDF_CTX_free(ctx);
	return ret;
}

/* Feed len bytes through the cipher in int-sized steps; out NULL for AAD. */
static bool gcm_update(EVP_CIPHER_CTX *ctx, uint8_t *out, const uint8_t *in,
		       size_t len)
{
	while (len > 0) {
		int n = (int)STASH_MIN(len, GCM_STEP);
		int outl = 0;

		if (!EVP_CipherUpdate(ctx, out, &outl, in, n))
			return false;
		if (out != NULL) {
			if (outl != n)
				return false;
			out += n;
		}
		in += n;
		len -= (size_t)n;
	}
	return true;
}

/*
 * One AES-256-GCM pass: enc = 1 seals (tag written), enc = 0 opens (tag
 * checked). A failed check is -EBADMSG, with out wiped so no unauthenticated
 * plaintext survives by accident.
 */
static int gcm_crypt(int enc, const uint8_t key[STASH_KEY_LEN],
		     const uint8_t nonce[STASH_NONCE_LEN], const void *aad,
		     size_t aadlen, const void *in, size_t len, void *out,
		     uint8_t tag[STASH_TAG_LEN])
{
	const char *what = enc ? "AES-256-GCM seal" : "AES-256-GCM open";
	EVP_CIPHER_CTX *ctx;
	OSSL_PARAM params[2];
	uint8_t fin[EVP_MAX_BLOCK_LENGTH];
	int outl = 0;
	int ret;

	ret = algs_ready();
	if (ret)
		return ret;
	if ((aad == NULL && aadlen > 0) ||
	    ((in == NULL || out == NULL) && len > 0))
		return -EINVAL;
	ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL)
		return ossl_error("AES-256-GCM context", -ENOMEM);
	/* The default GCM IV length is 12 bytes, STASH_NONCE_LEN. */
	if (!EVP_CipherInit_ex2(ctx, alg_gcm, key, nonce, enc, NULL))
		goto fail;
	if (!enc) {
		params[0] = OSSL_PARAM_construct_octet_string(
			OSSL_CIPHER_PARAM_AEAD_TAG, tag, STASH_TAG_LEN);
		params[1] = OSSL_PARAM_construct_end();
		if (!EVP_CIPHER_CTX_set_params(ctx, params))
			goto fail;
	}
	if (!gcm_update(ctx, NULL, aad, aadlen) ||
	    !gcm_update(ctx, out, in, len))
		goto fail;
	/* GCM is a stream mode: Final writes nothing to fin. */
	if (!EVP_CipherFinal_ex(ctx, fin, &outl) || outl != 0) {
		if (!enc) {
			stash_crypto_wipe(out, len);
			ret = ossl_error(what, -EBADMSG);
			goto out;
		}
		goto fail;
	}
	if (enc) {
		params[0] = OSSL_PARAM_construct_octet_string(
			OSSL_CIPHER_PARAM_AEAD_TAG, tag, STASH_TAG_LEN);
		params[1] = OSSL_PARAM_construct_end();
		if (!EVP_CIPHER_CTX_get_params(ctx, params))
			goto fail;
	}
	goto out;
fail:
	if (!enc)
		stash_crypto_wipe(out, len);
	ret = ossl_error(what, -EIO);
out:
	/* Frees and cleanses the key schedule. */
	EVP_CIPHER_CTX_free(ctx);
	return ret;
}

int stash_crypto_seal(const uint8_t key[STASH_KEY_LEN],
		      const uint8_t nonce[STASH_NONCE_LEN], const void *aad,
		      size_t aadlen, const void *pt, size_t len, void *ct,
		      uint8_t tag[STASH_TAG_LEN])
{
	return gcm_crypt(1, key, nonce, aad, aadlen, pt, len, ct, tag);
}

int stash_crypto_open(const uint8_t key[STASH_KEY_LEN],
		      const uint8_t nonce[STASH_NONCE_LEN], const void *aad,
		      size_t aadlen, const void *ct, size_t len, void *pt,
		      const uint8_t tag[STASH_TAG_LEN])
{
	/* gcm_crypt only reads the tag when opening. */
	return gcm_crypt(0, key, nonce, aad, aadlen, ct, len, pt,
			 (uint8_t *)tag);
}

int stash_crypto_wrap(const uint8_t kek[STASH_KEY_LEN], const char *label,
		      const uint8_t key[STASH_KEY_LEN],
		      uint8_t out[STASH_WRAPPED_KEY_LEN])
{
	int ret;

	if (label == NULL)
		return -EINVAL;
	ret = stash_crypto_random(out, STASH_NONCE_LEN);
	if (ret)
		return ret;
	return stash_crypto_seal(kek, out, label, strlen(label), key,
				 STASH_KEY_LEN, out + STASH_NONCE_LEN,
				 out + STASH_NONCE_LEN + STASH_KEY_LEN);
}

int stash_crypto_unwrap(const uint8_t kek[STASH_KEY_LEN], const char *label,
			const uint8_t in[STASH_WRAPPED_KEY_LEN],
			uint8_t key[STASH_KEY_LEN])
{
	uint8_t tmp[STASH_KEY_LEN];
	int ret;

	if (label == NULL)
		return -EINVAL;
	/* Decrypt aside so key is only written once it is authentic. */
	ret = stash_crypto_open(kek, in, label, strlen(label),
				in + STASH_NONCE_LEN, STASH_KEY_LEN, tmp,
				in + STASH_NONCE_LEN + STASH_KEY_LEN);
	if (ret == 0)
		memcpy(key, tmp, STASH_KEY_LEN);
	stash_crypto_wipe(tmp, sizeof(tmp));
	return ret;
}

void stash_hex(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0x0f];
	}
	out[2 * len] = '\0';
}

/*
 * The string must be exactly 2 * len digits: a short string stops at its
 * NUL (not a digit), and anything after the last digit is refused. On
 * failure out is wiped, since hex often carries keys.
 */
int stash_unhex(const char *in, uint8_t *out, size_t len)
{
	if (in == NULL || (out == NULL && len > 0))
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		int hi = stash_hex_digit(in[2 * i]);
		int lo = hi < 0 ? -1 : stash_hex_digit(in[2 * i + 1]);

		if (lo < 0) {
			stash_crypto_wipe(out, len);
			return -EINVAL;
		}
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	if (in[2 * len] != '\0') {
		stash_crypto_wipe(out, len);
		return -EINVAL;
	}
	return 0;
}
