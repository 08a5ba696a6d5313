/* Streaming-read bandwidth of the host, measured the way the CPU backend reads weights: each of
 * n threads sums its own contiguous part of a buffer larger than any cache. The bench command
 * reports generation speed as a share of this figure. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/engine.h"

#define BW_BYTES (256u << 20)
#define BW_MAX_THREADS 16

typedef struct bw_part {
    const uint64_t *p;
    size_t n;
    uint64_t sum;
} bw_part;

static void *bw_read(void *arg)
{
    bw_part *b = arg;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = 0; i + 4 <= b->n; i += 4) {
        s0 += b->p[i];
        s1 += b->p[i + 1];
        s2 += b->p[i + 2];
        s3 += b->p[i + 3];
    }
    b->sum = s0 + s1 + s2 + s3;
    return NULL;
}

double eng_host_read_gbps(int n_threads)
{
    if (n_threads < 1)
        n_threads = 1;
    if (n_threads > BW_MAX_THREADS)
        n_threads = BW_MAX_THREADS;
    uint64_t *buf = malloc(BW_BYTES);
    if (!buf)
        return 0;
    memset(buf, 1, BW_BYTES); /* fault every page in before timing */
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        bw_part parts[BW_MAX_THREADS];
        pthread_t th[BW_MAX_THREADS];
        size_t words = BW_BYTES / 8, per = words / (size_t)n_threads;
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        for (int t = 0; t < n_threads; t++) {
            parts[t] = (bw_part){ buf + per * (size_t)t, per, 0 };
            if (t && pthread_create(&th[t], NULL, bw_read, &parts[t]))
                bw_read(&parts[t]), th[t] = 0;
        }
        bw_read(&parts[0]);
        for (int t = 1; t < n_threads; t++)
            if (th[t])
                pthread_join(th[t], NULL);
        clock_gettime(CLOCK_MONOTONIC, &b);
        double s = (double)(b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) * 1e-9;
        double gbps = (double)per * 8 * n_threads / s / 1e9;
        if (gbps > best && parts[0].sum != 42) /* the sum keeps the reads from being elided */
            best = gbps;
    }
    free(buf);
    return best;
}
