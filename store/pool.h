/*
 * pool.h - a fixed pool of worker threads for CPU-bound work (hashing,
 * compression, encryption), with a bounded queue.
 *
 * submit blocks while the queue is full: that is the write path's
 * backpressure, and what bounds the memory held by queued chunks.
 * A job reports completion itself; the pool only runs it.
 */
#ifndef STASH_POOL_H
#define STASH_POOL_H

struct stash_pool;

struct stash_job {
	void (*run)(struct stash_job *job); /* called once, on a worker */
	struct stash_job *next;		    /* queue link, owned by the pool */
};

/* nthreads 0 = one per online CPU. */
int stash_pool_new(struct stash_pool **out, unsigned nthreads,
		   unsigned max_queued);
/* Runs every queued job, then stops the workers and frees. Accepts NULL. */
void stash_pool_free(struct stash_pool *pool);
void stash_pool_submit(struct stash_pool *pool, struct stash_job *job);

#endif
