/*
 * util.h - little-endian codecs, logging and error translation shared by
 * every store/ module.
 *
 * Deliberately small: no allocation helpers, no global state besides the
 * log level and log sink.
 */
#ifndef STASH_UTIL_H
#define STASH_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define STASH_KEY_LEN 32   /* every symmetric key, in bytes */
#define STASH_ID_LEN 32	   /* chunk id (HMAC-SHA256), in bytes */
#define STASH_NONCE_LEN 12 /* AES-GCM nonce, in bytes */
#define STASH_TAG_LEN 16   /* AES-GCM tag, in bytes */
#define STASH_NAME_MAX 255 /* longest file name, in bytes */

#define STASH_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define STASH_MIN(a, b) ((a) < (b) ? (a) : (b))
#define STASH_MAX(a, b) ((a) > (b) ? (a) : (b))

static inline void stash_le16enc(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void stash_le32enc(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void stash_le64enc(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint16_t stash_le16dec(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t stash_le32dec(const uint8_t *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static inline uint64_t stash_le64dec(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* Value of one hex digit (either case), or -1. */
static inline int stash_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

enum stash_log_level {
	STASH_LOG_ERR,
	STASH_LOG_WARN,
	STASH_LOG_INFO,
	STASH_LOG_DEBUG,
};

/*
 * One logging function for the whole program. Messages go to stderr (or to
 * the sink set by stash_log_set_sink, e.g. syslog for a daemon). Callers
 * never pass key material or file contents.
 */
void stash_log(enum stash_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void stash_log_set_level(enum stash_log_level level);
void stash_log_set_sink(void (*sink)(enum stash_log_level, const char *msg));

/* Monotonic and wall clock, in nanoseconds. */
uint64_t stash_now_ns(void);
int64_t stash_wall_ns(void);

/* Write all of buf at the file offset of fd (a pipe, say); returns 0 or a
 * negative errno (short writes and EINTR retried). */
int stash_write_all(int fd, const void *buf, size_t len);
/* Write all of buf at off; returns 0 or a negative errno (short writes
 * retried). */
int stash_pwrite_all(int fd, const void *buf, size_t len, uint64_t off);
/* Read exactly len bytes at off; -EBADMSG if the file ends first. */
int stash_pread_all(int fd, void *buf, size_t len, uint64_t off);
/* fsync the directory holding path (after creating or renaming in it). */
int stash_fsync_dir(const char *dir);

#endif
