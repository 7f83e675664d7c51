/*
 * retention.c - keep policies for snapshots (see retention.h).
 */
#include "retention.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

enum rule { R_LAST, R_HOURLY, R_DAILY, R_WEEKLY, R_MONTHLY, R_YEARLY, R_N };

static const char *const rule_names[R_N] = {
	"last", "hourly", "daily", "weekly", "monthly", "yearly",
};

static unsigned *rule_count(struct stash_retention *r, enum rule k)
{
	unsigned *counts[R_N] = { &r->last,   &r->hourly,  &r->daily,
				  &r->weekly, &r->monthly, &r->yearly };

	return counts[k];
}

bool stash_retention_any(const struct stash_retention *r)
{
	return r->last || r->hourly || r->daily || r->weekly || r->monthly ||
	       r->yearly;
}

/* The bucket a time falls in under rule k: equal keys, same bucket. */
static int64_t bucket(enum rule k, int64_t ns, size_t index)
{
	time_t t = (time_t)(ns / 1000000000);
	struct tm tm;
	char week[16];

	if (k == R_LAST)
		return (int64_t)index; /* every snapshot its own bucket */
	localtime_r(&t, &tm);
	switch (k) {
	case R_HOURLY:
		return ((int64_t)(tm.tm_year * 400 + tm.tm_yday) * 24) +
		       tm.tm_hour;
	case R_DAILY:
		return (int64_t)tm.tm_year * 400 + tm.tm_yday;
	case R_WEEKLY:
		/* ISO 8601 week-based year and week number. */
		strftime(week, sizeof(week), "%G%V", &tm);
		return strtoll(week, NULL, 10);
	case R_MONTHLY:
		return (int64_t)tm.tm_year * 12 + tm.tm_mon;
	default:
		return tm.tm_year;
	}
}

struct snap_ref {
	int64_t created;
	size_t index;
};

/* Newest first. */
static int newest_first(const void *a, const void *b)
{
	const struct snap_ref *x = a, *y = b;

	if (x->created != y->created)
		return x->created < y->created ? 1 : -1;
	return x->index < y->index ? 1 : (x->index > y->index ? -1 : 0);
}

int stash_retention_apply(const struct stash_retention *r,
			  const int64_t *created, size_t n, bool *keep)
{
	struct stash_retention left = *r;
	struct snap_ref *order;

	if (!stash_retention_any(r)) {
		for (size_t i = 0; i < n; i++)
			keep[i] = true;
		return 0;
	}
	order = calloc(n ? n : 1, sizeof(*order));
	if (!order)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		order[i] = (struct snap_ref){ created[i], i };
		keep[i] = false;
	}
	qsort(order, n, sizeof(*order), newest_first);
	for (enum rule k = R_LAST; k < R_N; k++) {
		unsigned *count = rule_count(&left, k);
		int64_t prev = 0;

		for (size_t i = 0; i<n && * count> 0; i++) {
			int64_t b = bucket(k, order[i].created, i);

			if (i > 0 && b == prev)
				continue; /* an older one in the same bucket */
			keep[order[i].index] = true;
			(*count)--;
			prev = b;
		}
	}
	free(order);
	return 0;
}

int stash_retention_parse(struct stash_retention *r, const char *s)
{
	const char *eq = strchr(s, '=');
	char *end;
	unsigned long v;

	if (strncmp(s, "keep_", 5) && strncmp(s, "keep-", 5))
		return 0;
	if (!eq)
		return -EINVAL;
	for (enum rule k = R_LAST; k < R_N; k++) {
		size_t len = strlen(rule_names[k]);

		if ((size_t)(eq - (s + 5)) != len ||
		    strncmp(s + 5, rule_names[k], len))
			continue;
		errno = 0;
		v = strtoul(eq + 1, &end, 10);
		if (errno || end == eq + 1 || *end || v > 1000000 ||
		    eq[1] == '-')
			return -EINVAL;
		*rule_count(r, k) = (unsigned)v;
		return 1;
	}
	return -EINVAL;
}
