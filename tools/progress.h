/*
 * progress.h - one updating status line on stderr (bytes, files, rate,
 * ETA) for long commands, shown only when stderr is a terminal. Redraws
 * at most five times a second; the last line is cleared when done.
 */
#ifndef STASH_TOOLS_PROGRESS_H
#define STASH_TOOLS_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

struct progress {
	bool on;	      /* stderr is a terminal */
	const char *what;     /* "export", "import", ... */
	uint64_t total_bytes; /* 0: unknown (no ETA) */
	uint64_t bytes;	      /* done so far */
	uint64_t files;	      /* done so far */
	uint64_t start_ns;    /* monotonic */
	uint64_t drawn_ns;    /* last redraw */
};

void progress_init(struct progress *p, const char *what, uint64_t total_bytes);
/* Add to the counts; redraw if it is time. */
void progress_add(struct progress *p, uint64_t bytes, uint64_t files);
/* Set the byte count (for streams that know their position). */
void progress_set(struct progress *p, uint64_t bytes);
/* Clear the line. */
void progress_done(struct progress *p);

#endif
