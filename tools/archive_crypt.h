/*
 * archive_crypt.h - the sealed archive stream of `stashfs export
 * --encrypt`: an 80-byte header (magic, version, KDF parameters, salt,
 * nonce prefix, key check), then the archive in fixed-size records, each
 * sealed with AES-256-GCM under a key derived for this archive alone.
 * docs/FORMAT.md, "Sealed archives", has it byte by byte.
 *
 * Each record's associated data binds the header, the record's index and
 * whether it is the last, so records cannot be altered, reordered, moved
 * from another archive, dropped from the end or appended to. It knows
 * nothing of tar or of stores.
 */
#ifndef STASH_TOOLS_ARCHIVE_CRYPT_H
#define STASH_TOOLS_ARCHIVE_CRYPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ARC_MAGIC "STASHARC"
#define ARC_MAGIC_LEN 8
#define ARC_HEADER_LEN 80

/* What seals an archive: a passphrase (scrypt) or a key file's bytes. */
struct arc_secret {
	const void *data;
	size_t len;
	bool key_file;
};

struct arc_crypt;

/* True if buf (len bytes, the start of a file) is a sealed archive. */
bool arc_is_sealed(const void *buf, size_t len);

/* Start a sealed stream on fd: derive a fresh key, write the header. */
int arc_writer_new(struct arc_crypt **out, int fd, const struct arc_secret *s);
int arc_write(struct arc_crypt *c, const void *buf, size_t len);
/* Seal the last record (possibly empty). Needed for a valid stream. */
int arc_writer_finish(struct arc_crypt *c);

/*
 * Read the header from fd (whose first ARC_MAGIC_LEN bytes, already read,
 * are in head) and check the key: -EACCES for a wrong passphrase or key
 * file (or a header altered), -EBADMSG for a malformed header, -EPROTO
 * for a newer version.
 */
int arc_reader_new(struct arc_crypt **out, int fd, const uint8_t *head,
		   const struct arc_secret *s);
/* The next record's plaintext in *buf (valid until the next call); its
 * length, 0 after the last record, -EBADMSG when a record fails to
 * authenticate or the stream is cut short or runs on. */
ssize_t arc_read(struct arc_crypt *c, const void **buf);
/* Index of the record arc_read last looked at. */
uint64_t arc_record(const struct arc_crypt *c);
/* Bytes of the file consumed so far (header included). */
uint64_t arc_consumed(const struct arc_crypt *c);

/* Wipe the key and free. */
void arc_free(struct arc_crypt *c);

#endif
