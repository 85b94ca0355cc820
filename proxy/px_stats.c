/* px_stats.c — see px_stats.h. */
#include "px_stats.h"

#include <assert.h>

int px_stats_bucket(uint64_t us)
{
    if (us < 16)
        return (int)us;
    int e = 63 - __builtin_clzll(us); /* us in [2^e, 2^(e+1)), e >= 4 */
    int sub = (int)((us >> (e - 3)) & 7);
    int b = 16 + (e - 4) * 8 + sub;
    return b < PX_HIST_BUCKETS ? b : PX_HIST_BUCKETS - 1;
}

uint64_t px_stats_bucket_upper(int b)
{
    assert(b >= 0 && b < PX_HIST_BUCKETS);
    if (b < 16)
        return (uint64_t)b;
    int e = (b - 16) / 8 + 4, sub = (b - 16) % 8;
    return ((uint64_t)(8 + sub + 1) << (e - 3)) - 1;
}

static void atomic_max(_Atomic uint64_t *m, uint64_t v)
{
    uint64_t cur = atomic_load_explicit(m, PX_RELAXED);
    while (v > cur && !atomic_compare_exchange_weak_explicit(m, &cur, v, PX_RELAXED, PX_RELAXED))
        ;
}

void px_stats_record_latency(px_stats *s, uint64_t us)
{
    px_inc(s->hist[px_stats_bucket(us)], 1);
    atomic_max(&s->lat_max_us, us);
}

void px_stats_record_hold(px_stats *s, uint64_t us)
{
    px_inc(s->holds, 1);
    px_inc(s->held_us, us);
    atomic_max(&s->held_max_us, us);
}

void px_stats_add(px_stats *d, const px_stats *s)
{
    px_inc(d->xacts, px_get(s->xacts));
    px_inc(d->queries, px_get(s->queries));
    px_inc(d->bytes_in, px_get(s->bytes_in));
    px_inc(d->bytes_out, px_get(s->bytes_out));
    px_inc(d->held_us, px_get(s->held_us));
    px_inc(d->holds, px_get(s->holds));
    px_inc(d->prep_reprepared, px_get(s->prep_reprepared));
    px_inc(d->prep_sessions, px_get(s->prep_sessions));
    px_inc(d->prep_left, px_get(s->prep_left));
    px_inc(d->prep_untracked, px_get(s->prep_untracked));
    px_inc(d->prep_us, px_get(s->prep_us));
    atomic_max(&d->held_max_us, px_get(s->held_max_us));
    atomic_max(&d->lat_max_us, px_get(s->lat_max_us));
    for (int i = 0; i < PX_HIST_BUCKETS; i++)
        px_inc(d->hist[i], px_get(s->hist[i]));
}

uint64_t px_stats_percentile(const px_stats *s, double q)
{
    uint64_t total = 0;
    for (int i = 0; i < PX_HIST_BUCKETS; i++)
        total += px_get(s->hist[i]);
    if (total == 0)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)total);
    if (rank >= total)
        rank = total - 1;
    uint64_t seen = 0;
    for (int i = 0; i < PX_HIST_BUCKETS; i++) {
        seen += px_get(s->hist[i]);
        if (seen > rank) {
            uint64_t up = px_stats_bucket_upper(i), mx = px_get(s->lat_max_us);
            return up < mx ? up : mx;
        }
    }
    return px_get(s->lat_max_us);
}
