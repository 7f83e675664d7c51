/*
 * retention.h - which snapshots a keep policy keeps, with restic's
 * semantics (`restic forget --keep-*`):
 *
 *   last N     the N newest snapshots;
 *   hourly N   for each of the N newest hours that have snapshots, the
 *              newest snapshot of that hour; likewise daily, weekly
 *              (ISO weeks), monthly and yearly, in local time.
 *
 * A snapshot is kept if any rule keeps it. A policy with no rule keeps
 * everything: pruning never empties a store by accident.
 */
#ifndef STASH_RETENTION_H
#define STASH_RETENTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct stash_retention {
	unsigned last, hourly, daily, weekly, monthly, yearly; /* 0: off */
};

bool stash_retention_any(const struct stash_retention *r);

/*
 * Set keep[i] for each of n snapshots created at created[i] (ns since
 * the epoch, any order). Ties in time are broken by index (a higher
 * index counts as newer). 0, or -ENOMEM.
 */
int stash_retention_apply(const struct stash_retention *r,
			  const int64_t *created, size_t n, bool *keep);

/*
 * Parse one "keep_RULE=N" or "keep-RULE=N" setting (RULE: last, hourly,
 * daily, weekly, monthly, yearly) into r. 1 if s was one, 0 if s is not
 * a keep setting, -EINVAL if it is one with a bad value.
 */
int stash_retention_parse(struct stash_retention *r, const char *s);

#endif
