/* Fair and concurrent scheduling of jobs (see app/sched.h). Threads are owned here, in app/, as
 * docs/DESIGN.md section 1 asks; the engine only promises that one session is used by one
 * thread at a time. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app/app.h"
#include "app/sched.h"

const char *app_sched_mode_name(app_sched_mode m)
{
    return m == APP_SCHED_CONCURRENT ? "concurrent" : "fair";
}

bool app_sched_mode_parse(const char *s, app_sched_mode *out)
{
    if (!strcmp(s, "fair"))
        *out = APP_SCHED_FAIR;
    else if (!strcmp(s, "concurrent"))
        *out = APP_SCHED_CONCURRENT;
    else
        return false;
    return true;
}

/* splitmix64: small, seedable, the same sequence everywhere. */
static uint64_t next_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void app_sched_shuffle(int *order, int n, uint64_t *rng)
{
    for (int j = n - 1; j > 0; j--) { /* Fisher-Yates */
        int k = (int)(next_rand(rng) % (uint64_t)(j + 1)), t = order[j];
        order[j] = order[k];
        order[k] = t;
    }
}

static int run_fair(int n_jobs, int rep, uint64_t *rng, app_sched_fn fn, void *user,
                    app_sched_span *out)
{
    int order[n_jobs];
    for (int j = 0; j < n_jobs; j++)
        order[j] = j;
    app_sched_shuffle(order, n_jobs, rng);
    for (int i = 0; i < n_jobs; i++) {
        app_sched_span sp = { order[i], rep, app_now_s(), 0 };
        int rc = fn(user, order[i], rep);
        sp.end = app_now_s();
        if (out)
            out[i] = sp;
        if (rc)
            return rc;
    }
    return 0;
}

/* The starting gun: workers wait on it so that all jobs of a round start together (the
 * contention is then real), or learn that the round was called off. */
typedef struct gun {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int state;               /* 0 wait, 1 go, -1 called off */
} gun;

typedef struct worker {
    pthread_t th;
    gun *g;
    app_sched_fn fn;
    void *user;
    app_sched_span span;
    int rc;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    pthread_mutex_lock(&w->g->mu);
    while (!w->g->state)
        pthread_cond_wait(&w->g->cv, &w->g->mu);
    int state = w->g->state;
    pthread_mutex_unlock(&w->g->mu);
    if (state < 0)
        return NULL;
    w->span.start = app_now_s();
    w->rc = w->fn(w->user, w->span.job, w->span.rep);
    w->span.end = app_now_s();
    return NULL;
}

static int run_concurrent(int n_jobs, int rep, app_sched_fn fn, void *user, app_sched_span *out)
{
    worker *w = calloc((size_t)n_jobs, sizeof *w);
    gun g = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };
    if (!w)
        return -1;
    int started = 0, rc = 0;
    for (; started < n_jobs; started++) {
        w[started] = (worker){ .g = &g, .fn = fn, .user = user, .span = { started, rep, 0, 0 } };
        if (pthread_create(&w[started].th, NULL, work, &w[started]))
            break;
    }
    pthread_mutex_lock(&g.mu);
    g.state = started == n_jobs ? 1 : -1;
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);
    if (started < n_jobs)
        rc = -1;
    for (int j = 0; j < started; j++) {
        pthread_join(w[j].th, NULL);
        if (!rc)
            rc = w[j].rc;
        if (out)
            out[j] = w[j].span;
    }
    free(w);
    return rc;
}

int app_sched_run(app_sched_mode mode, int n_jobs, int reps, bool warmup, uint64_t *rng,
                  app_sched_fn fn, void *user, app_sched_span *spans)
{
    if (n_jobs <= 0)
        return 0;
    for (int rep = warmup ? -1 : 0; rep < reps; rep++) {
        app_sched_span *out = rep < 0 ? NULL : spans + (size_t)rep * (size_t)n_jobs;
        int rc = mode == APP_SCHED_CONCURRENT ? run_concurrent(n_jobs, rep, fn, user, out)
                                              : run_fair(n_jobs, rep, rng, fn, user, out);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- the gate: tickets served in order; a done flag per ticket in flight (a ring, since at
 * most a few dozen are ever outstanding: panes x queued jobs) ---- */

#define GATE_RING 1024

struct app_sched_gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long next, serving;
    unsigned char done[GATE_RING];
};

app_sched_gate *app_sched_gate_new(void)
{
    app_sched_gate *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    return g;
}

void app_sched_gate_free(app_sched_gate *g)
{
    if (!g)
        return;
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
    free(g);
}

long app_sched_gate_ticket(app_sched_gate *g)
{
    pthread_mutex_lock(&g->mu);
    long t = g->next++;
    pthread_mutex_unlock(&g->mu);
    return t;
}

bool app_sched_gate_wait(app_sched_gate *g, long ticket, const atomic_int *cancel)
{
    pthread_mutex_lock(&g->mu);
    while (g->serving != ticket && !(cancel && *cancel)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&g->cv, &g->mu, &ts);
    }
    bool turn = g->serving == ticket;
    pthread_mutex_unlock(&g->mu);
    return turn;
}

void app_sched_gate_done(app_sched_gate *g, long ticket)
{
    if (!g || ticket < 0)
        return;
    pthread_mutex_lock(&g->mu);
    g->done[ticket % GATE_RING] = 1;
    while (g->serving < g->next && g->done[g->serving % GATE_RING]) {
        g->done[g->serving % GATE_RING] = 0;
        g->serving++;
    }
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

int app_sched_gate_pending(app_sched_gate *g)
{
    pthread_mutex_lock(&g->mu);
    int n = (int)(g->next - g->serving);
    pthread_mutex_unlock(&g->mu);
    return n;
}
