/*
 * progress.c - the status line of long commands (see progress.h).
 */
#include "progress.h"

#include <stdio.h>
#include <unistd.h>

#include "util.h"

#define REDRAW_NS 200000000ull

static void human(double v, char *out, size_t size)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(out, size, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

void progress_init(struct progress *p, const char *what, uint64_t total_bytes)
{
	*p = (struct progress){
		.on = isatty(STDERR_FILENO),
		.what = what,
		.total_bytes = total_bytes,
		.start_ns = stash_now_ns(),
	};
}

static void draw(struct progress *p, uint64_t now)
{
	double secs = (double)(now - p->start_ns) / 1e9;
	double rate = secs > 0 ? (double)p->bytes / secs : 0;
	char done[32], total[32], speed[32], eta[32] = "";

	human((double)p->bytes, done, sizeof(done));
	human(rate, speed, sizeof(speed));
	if (p->total_bytes) {
		human((double)p->total_bytes, total, sizeof(total));
		if (rate > 0 && p->bytes < p->total_bytes) {
			unsigned s =
				(unsigned)((double)(p->total_bytes - p->bytes) /
					   rate);

			snprintf(eta, sizeof(eta), ", ETA %u:%02u:%02u",
				 s / 3600, s / 60 % 60, s % 60);
		}
		fprintf(stderr, "\r\033[K%s: %s of %s, %llu files, %s/s%s",
			p->what, done, total, (unsigned long long)p->files,
			speed, eta);
	} else {
		fprintf(stderr, "\r\033[K%s: %s, %llu files, %s/s", p->what,
			done, (unsigned long long)p->files, speed);
	}
	fflush(stderr);
	p->drawn_ns = now;
}

static void maybe_draw(struct progress *p)
{
	uint64_t now;

	if (!p->on)
		return;
	now = stash_now_ns();
	if (now - p->drawn_ns >= REDRAW_NS)
		draw(p, now);
}

void progress_add(struct progress *p, uint64_t bytes, uint64_t files)
{
	p->bytes += bytes;
	p->files += files;
	maybe_draw(p);
}

void progress_set(struct progress *p, uint64_t bytes)
{
	p->bytes = bytes;
	maybe_draw(p);
}

void progress_done(struct progress *p)
{
	if (p->on && p->drawn_ns) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
	}
}
