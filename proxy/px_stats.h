/*
 * px_stats.h — counters and a latency histogram, written by one worker thread and read
 * by any (relaxed atomics: a reader sees each counter whole, not a consistent set).
 * Latency buckets are log-linear (8 per power of two, about 12% resolution) in
 * microseconds, like HdrHistogram with 3 sub-bucket bits.
 */
#ifndef PX_STATS_H
#define PX_STATS_H

#include <stdatomic.h>
#include <stdint.h>

#define PX_HIST_BUCKETS 320

typedef struct {
    _Atomic uint64_t xacts;        /* transactions finished (ReadyForQuery back to 'I') */
    _Atomic uint64_t queries;      /* request cycles (ReadyForQuery received) */
    _Atomic uint64_t bytes_in;     /* client -> server bytes */
    _Atomic uint64_t bytes_out;    /* server -> client bytes */
    _Atomic uint64_t held_us;      /* total time sessions waited in a hold, microseconds */
    _Atomic uint64_t held_max_us;  /* longest single wait in a hold, microseconds */
    _Atomic uint64_t holds;        /* messages parked by a hold */
    _Atomic uint64_t hist[PX_HIST_BUCKETS]; /* request round trip, microseconds */
    _Atomic uint64_t lat_max_us;
    /* prepared statements across swaps (px_reprepare.c) */
    _Atomic uint64_t prep_reprepared; /* statements re-prepared */
    _Atomic uint64_t prep_sessions;   /* re-prepares run (a session after a swap) */
    _Atomic uint64_t prep_left;       /* statements left to PostgreSQL (binary results, no
                                       * Describe, or the text no longer parses) */
    _Atomic uint64_t prep_untracked;  /* sessions past max_prepared_statements_bytes */
    _Atomic uint64_t prep_us;         /* time re-preparing added, microseconds */
} px_stats;

/* px_stats_record_latency — count one request round trip of us microseconds. */
void px_stats_record_latency(px_stats *s, uint64_t us);
/* px_stats_record_hold — count one parked wait of us microseconds. */
void px_stats_record_hold(px_stats *s, uint64_t us);
/* px_stats_add — add every counter of src into dst (dst is a plain reader's copy). */
void px_stats_add(px_stats *dst, const px_stats *src);
/* px_stats_percentile — latency at quantile q (0..1) in microseconds (bucket upper
 * bound), 0 when nothing was recorded. */
uint64_t px_stats_percentile(const px_stats *s, double q);
/* px_stats_bucket / px_stats_bucket_upper — the bucket of us, and the largest value a
 * bucket holds; exposed for unit tests. */
int px_stats_bucket(uint64_t us);
uint64_t px_stats_bucket_upper(int bucket);

#define PX_RELAXED memory_order_relaxed
#define px_inc(field, n) atomic_fetch_add_explicit(&(field), (n), PX_RELAXED)
#define px_get(field) atomic_load_explicit(&(field), PX_RELAXED)

#endif
