/*
 * archive_crypt.c - sealed archive streams (see archive_crypt.h and
 * docs/FORMAT.md, "Sealed archives").
 *
 * The key is derived per archive from a random 32-byte salt, so record
 * nonces can be a counter: no two archives share a key. A record of full
 * size is never the last one; the writer ends every stream with a shorter
 * (possibly empty) final record, which is how the reader knows where the
 * stream ends without trusting a length field.
 */
#include "archive_crypt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "crypto.h"
#include "util.h"

#define ARC_VERSION 1
#define KDF_SCRYPT 1
#define KDF_KEYFILE 2
#define RECORD_LOG2 20 /* 1 MiB records */
#define RECORD_LOG2_MIN 12
#define RECORD_LOG2_MAX 24
#define SCRYPT_LOG2N 15 /* as a store's passphrase: 32 MiB, ~0.1 s */
#define SCRYPT_R 8
#define SCRYPT_P 1
#define SALT_LEN 32
#define AAD_LEN (ARC_HEADER_LEN + 9)
/* The key check uses the one counter no record can have. */
#define CHECK_COUNTER UINT64_MAX

static const char keyfile_label[] = "stashfs archive key-file v1";

struct arc_crypt {
	int fd;
	uint8_t header[ARC_HEADER_LEN]; /* as written or read */
	uint8_t key[STASH_KEY_LEN];	/* this archive's AES key */
	size_t record;			/* plaintext bytes per record */
	uint8_t *buf;			/* record + tag */
	size_t fill;			/* writer: plaintext bytes in buf */
	uint64_t counter;		/* next record's index */
	bool done;			/* the final record was seen */
	uint64_t consumed;		/* reader: file bytes read */
};

bool arc_is_sealed(const void *buf, size_t len)
{
	return len >= ARC_MAGIC_LEN && !memcmp(buf, ARC_MAGIC, ARC_MAGIC_LEN);
}

static void nonce_of(const struct arc_crypt *c, uint64_t counter,
		     uint8_t nonce[STASH_NONCE_LEN])
{
	memcpy(nonce, c->header + 56, 4);
	stash_le64enc(nonce + 4, counter);
}

static void aad_of(const struct arc_crypt *c, uint64_t counter, bool final,
		   uint8_t aad[AAD_LEN])
{
	memcpy(aad, c->header, ARC_HEADER_LEN);
	stash_le64enc(aad + ARC_HEADER_LEN, counter);
	aad[ARC_HEADER_LEN + 8] = final;
}

/* The archive key from the secret and the header's KDF fields. */
static int derive_key(struct arc_crypt *c, const struct arc_secret *s)
{
	const uint8_t *h = c->header;
	uint8_t ikm[32], msg[sizeof(keyfile_label) - 1 + SALT_LEN];
	int ret;

	if (h[9] == KDF_SCRYPT)
		return stash_crypto_scrypt(
			s->data, s->len, h + 24, SALT_LEN, UINT64_C(1) << h[11],
			stash_le32dec(h + 12), stash_le32dec(h + 16), c->key);
	/* A key file of any form: its digest, then one key per salt. */
	ret = stash_crypto_sha256(s->data, s->len, ikm);
	memcpy(msg, keyfile_label, sizeof(keyfile_label) - 1);
	memcpy(msg + sizeof(keyfile_label) - 1, h + 24, SALT_LEN);
	if (!ret)
		ret = stash_crypto_hmac(ikm, msg, sizeof(msg), c->key);
	stash_crypto_wipe(ikm, sizeof(ikm));
	return ret;
}

/* The tag over nothing that proves the key before any record is read. */
static int key_check(const struct arc_crypt *c, uint8_t tag[STASH_TAG_LEN])
{
	uint8_t nonce[STASH_NONCE_LEN];

	nonce_of(c, CHECK_COUNTER, nonce);
	return stash_crypto_seal(c->key, nonce, c->header, 64, NULL, 0, NULL,
				 tag);
}

static struct arc_crypt *arc_alloc(int fd, size_t record)
{
	struct arc_crypt *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->fd = fd;
	c->record = record;
	c->buf = malloc(record + STASH_TAG_LEN);
	if (!c->buf) {
		free(c);
		return NULL;
	}
	return c;
}

int arc_writer_new(struct arc_crypt **out, int fd, const struct arc_secret *s)
{
	struct arc_crypt *c = arc_alloc(fd, (size_t)1 << RECORD_LOG2);
	uint8_t *h;
	int ret;

	if (!c)
		return -ENOMEM;
	h = c->header;
	memcpy(h, ARC_MAGIC, ARC_MAGIC_LEN);
	h[8] = ARC_VERSION;
	h[9] = s->key_file ? KDF_KEYFILE : KDF_SCRYPT;
	h[10] = RECORD_LOG2;
	if (!s->key_file) {
		h[11] = SCRYPT_LOG2N;
		stash_le32enc(h + 12, SCRYPT_R);
		stash_le32enc(h + 16, SCRYPT_P);
	}
	ret = stash_crypto_random(h + 24, SALT_LEN + 4);
	if (!ret)
		ret = derive_key(c, s);
	if (!ret)
		ret = key_check(c, h + 64);
	if (!ret)
		ret = stash_write_all(fd, h, ARC_HEADER_LEN);
	if (ret) {
		arc_free(c);
		return ret;
	}
	*out = c;
	return 0;
}

static int seal_record(struct arc_crypt *c, bool final)
{
	uint8_t nonce[STASH_NONCE_LEN], aad[AAD_LEN];
	int ret;

	nonce_of(c, c->counter, nonce);
	aad_of(c, c->counter, final, aad);
	ret = stash_crypto_seal(c->key, nonce, aad, sizeof(aad), c->buf,
				c->fill, c->buf, c->buf + c->fill);
	if (!ret)
		ret = stash_write_all(c->fd, c->buf, c->fill + STASH_TAG_LEN);
	c->counter++;
	c->fill = 0;
	return ret;
}

int arc_write(struct arc_crypt *c, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	int ret = 0;

	while (!ret && len) {
		size_t n = STASH_MIN(len, c->record - c->fill);

		memcpy(c->buf + c->fill, p, n);
		c->fill += n;
		p += n;
		len -= n;
		/* A full record is sealed only once more data follows: the
		 * final record must be shorter than a full one. */
		if (c->fill == c->record && len)
			ret = seal_record(c, false);
	}
	return ret;
}

int arc_writer_finish(struct arc_crypt *c)
{
	int ret = 0;

	if (c->fill == c->record)
		ret = seal_record(c, false);
	return ret ? ret : seal_record(c, true);
}

/* Read up to len bytes; fewer only at the end of the file. */
static ssize_t read_full(struct arc_crypt *c, void *buf, size_t len)
{
	uint8_t *p = buf;
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(c->fd, p + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	c->consumed += got;
	return (ssize_t)got;
}

int arc_reader_new(struct arc_crypt **out, int fd, const uint8_t *head,
		   const struct arc_secret *s)
{
	uint8_t h[ARC_HEADER_LEN], tag[STASH_TAG_LEN];
	struct arc_crypt probe = { .fd = fd };
	struct arc_crypt *c;
	ssize_t n;
	int ret;

	memcpy(h, head, ARC_MAGIC_LEN);
	n = read_full(&probe, h + ARC_MAGIC_LEN, sizeof(h) - ARC_MAGIC_LEN);
	if (n < 0)
		return (int)n;
	if ((size_t)n != sizeof(h) - ARC_MAGIC_LEN)
		return -EBADMSG;
	if (h[8] != ARC_VERSION)
		return h[8] > ARC_VERSION ? -EPROTO : -EBADMSG;
	if ((h[9] != KDF_SCRYPT && h[9] != KDF_KEYFILE) ||
	    h[10] < RECORD_LOG2_MIN || h[10] > RECORD_LOG2_MAX)
		return -EBADMSG;
	/* scrypt's cost is the reader's memory: bound it (1 GiB). */
	if (h[9] == KDF_SCRYPT &&
	    (h[11] < 10 || h[11] > 24 || stash_le32dec(h + 12) == 0 ||
	     stash_le32dec(h + 12) > 32 || stash_le32dec(h + 16) == 0 ||
	     stash_le32dec(h + 16) > 16 ||
	     (UINT64_C(128) << h[11]) * stash_le32dec(h + 12) > (1u << 30)))
		return -EBADMSG;
	if (h[9] == KDF_SCRYPT ? s->key_file : !s->key_file)
		return -EACCES;
	c = arc_alloc(fd, (size_t)1 << h[10]);
	if (!c)
		return -ENOMEM;
	memcpy(c->header, h, sizeof(h));
	c->consumed = ARC_HEADER_LEN;
	ret = derive_key(c, s);
	if (!ret)
		ret = key_check(c, tag);
	if (!ret && CRYPTO_memcmp(tag, h + 64, STASH_TAG_LEN))
		ret = -EACCES;
	if (ret) {
		arc_free(c);
		return ret;
	}
	*out = c;
	return 0;
}

ssize_t arc_read(struct arc_crypt *c, const void **buf)
{
	uint8_t nonce[STASH_NONCE_LEN], aad[AAD_LEN];
	size_t full = c->record + STASH_TAG_LEN, len;
	ssize_t n;
	bool final;
	int ret;

	if (c->done) {
		/* Nothing may follow the final record. */
		n = read_full(c, c->buf, 1);
		return n == 0 ? 0 : n < 0 ? n : -EBADMSG;
	}
	n = read_full(c, c->buf, full);
	if (n < 0)
		return n;
	if ((size_t)n < STASH_TAG_LEN)
		return -EBADMSG; /* cut short */
	final = (size_t)n < full;
	len = (size_t)n - STASH_TAG_LEN;
	nonce_of(c, c->counter, nonce);
	aad_of(c, c->counter, final, aad);
	ret = stash_crypto_open(c->key, nonce, aad, sizeof(aad), c->buf, len,
				c->buf, c->buf + len);
	if (ret)
		return ret == -EBADMSG ? -EBADMSG : ret;
	c->counter++;
	c->done = final;
	*buf = c->buf;
	if (final && len == 0)
		return arc_read(c, buf);
	return (ssize_t)len;
}

uint64_t arc_record(const struct arc_crypt *c)
{
	return c->counter;
}

uint64_t arc_consumed(const struct arc_crypt *c)
{
	return c->consumed;
}

void arc_free(struct arc_crypt *c)
{
	if (!c)
		return;
	stash_crypto_wipe(c->key, sizeof(c->key));
	if (c->buf) {
		stash_crypto_wipe(c->buf, c->record + STASH_TAG_LEN);
		free(c->buf);
	}
	free(c);
}
