/*
 * sluice-gateway: the simulated sensor behind each device (see source.h).
 */
#include "source.h"

#include <math.h>
#include <stdlib.h>

typedef struct sim {
    gw_source_t base;
    double period_ns;
    int64_t start; /* sl_now() of the first arm(); 0 before */
    int64_t born;  /* for uptime */
    uint64_t seq;  /* readings produced */
    uint64_t rng;
    double temperature, humidity, battery;
} sim_t;

static int64_t due(const sim_t *s)
{
    return s->start + (int64_t)((double)s->seq * s->period_ns);
}

static void sim_arm(gw_source_t *src, sl_clause_t *c)
{
    sim_t *s = (sim_t *)src;
    if (s->start == 0)
        s->start = sl_now();
    sl_clause_sleep_until(c, due(s));
}

static double clamp(double v, double lo, double hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

static int sim_next(gw_source_t *src, gw_reading_t *out)
{
    sim_t *s = (sim_t *)src;
    if (s->start == 0 || sl_now() < due(s))
        return SL_EAGAIN;
    s->seq++;
    s->temperature = clamp(s->temperature + (gw_rand01(&s->rng) - 0.5) * 0.4, -20.0, 60.0);
    s->humidity = clamp(s->humidity + (gw_rand01(&s->rng) - 0.5) * 1.0, 0.0, 100.0);
    s->battery = clamp(s->battery - 0.01 * gw_rand01(&s->rng), 0.0, 100.0);
    out->device_id = src->device_id;
    out->pad_ = 0;
    out->seq = s->seq;
    out->timestamp = gw_wall_ms();
    out->temperature = s->temperature;
    out->humidity = s->humidity;
    out->battery = s->battery;
    return 0;
}

static int sim_status(gw_source_t *src, gw_device_status_t *out)
{
    sim_t *s = (sim_t *)src;
    out->device_id = src->device_id;
    out->battery_level = (uint32_t)lround(s->battery);
    out->uptime_seconds = (uint64_t)((sl_now() - s->born) / SL_SEC);
    return 0;
}

static void sim_close(gw_source_t *src)
{
    free(src);
}

static const gw_source_ops_t sim_ops = {sim_arm, sim_next, sim_status, sim_close};

gw_source_t *gw_sim_source_new(uint32_t device_id, double rate_hz, uint64_t seed)
{
    sim_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->base.ops = &sim_ops;
    s->base.device_id = device_id;
    s->period_ns = 1e9 / rate_hz;
    s->born = sl_now();
    s->rng = seed * 0x9E3779B97F4A7C15ULL + device_id * 0xBF58476D1CE4E5B9ULL + 1;
    s->temperature = 18.0 + 8.0 * gw_rand01(&s->rng);
    s->humidity = 35.0 + 30.0 * gw_rand01(&s->rng);
    s->battery = 70.0 + 30.0 * gw_rand01(&s->rng);
    return &s->base;
}
