/*
 * util.c - logging and small I/O helpers.
 */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static enum stash_log_level log_level = STASH_LOG_INFO;
static void (*log_sink)(enum stash_log_level, const char *);

void stash_log_set_level(enum stash_log_level level)
{
	log_level = level;
}

void stash_log_set_sink(void (*sink)(enum stash_log_level, const char *))
{
	log_sink = sink;
}

void stash_log(enum stash_log_level level, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warning", "info",
					     "debug" };
	char msg[1024];
	va_list ap;
	int saved = errno;

	if (level > log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (log_sink)
		log_sink(level, msg);
	else
		fprintf(stderr, "stashfs: %s: %s\n", names[level], msg);
	errno = saved;
}

uint64_t stash_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int64_t stash_wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* write() (at is false) or pwrite() at off all of buf, retrying. */
static int write_all(int fd, const void *buf, size_t len, bool at, uint64_t off)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n =
			at ? pwrite(fd, p, len, (off_t)off) : write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

int stash_write_all(int fd, const void *buf, size_t len)
{
	return write_all(fd, buf, len, false, 0);
}

int stash_pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
	return write_all(fd, buf, len, true, off);
}

int stash_pread_all(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = pread(fd, p, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EBADMSG;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

int stash_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int ret = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		ret = -errno;
	close(fd);
	return ret;
}
