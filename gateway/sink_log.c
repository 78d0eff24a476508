/*
 * sluice-gateway: the logging snapshot sink (see sink.h).
 */
#include "sink.h"

#include <stdlib.h>

#include "log.h"

typedef struct log_sink {
    gw_sink_t base;
    int64_t delay_ns;
    sl_cancel_t *shutdown;
} log_sink_t;

static double avg_temperature(const gw_snapshot_t *s)
{
    double sum = 0;
    int n = 0;
    for (uint32_t i = 0; i < s->ndevices; i++) {
        if (s->devices[i].count > 0) {
            sum += s->devices[i].avg_temperature;
            n++;
        }
    }
    return n ? sum / n : 0.0;
}

static int ls_deliver(gw_sink_t *sink, const gw_snapshot_t *snap)
{
    log_sink_t *ls = (log_sink_t *)sink;
    GW_LOG(GW_INFO, "client.snapshot",
           "👤 Client {client} got snapshot #{snapshot}: {active} active devices, {total} "
           "messages, avg {avg_temp}°C",
           GW_I("client", sink->client_id), GW_U("snapshot", snap->seq),
           GW_U("active", snap->active_devices), GW_U("total", snap->total_messages),
           GW_D("avg_temp", avg_temperature(snap)));
    if (ls->delay_ns > 0 && !sl_cancel_is_triggered(ls->shutdown)) {
        /* A slow subscriber: stop being slow once shutdown begins, so the drain is quick. */
        sl_clause_t c[2];
        sl_clause_sleep_until(&c[0], sl_deadline_in(ls->delay_ns));
        sl_clause_cancelled(&c[1], ls->shutdown);
        int r = sl_select(c, 2, SL_SELECT_BIASED, SL_FOREVER);
        if (r < 0)
            return r;
    }
    return 0;
}

static int ls_resync(gw_sink_t *sink, const gw_snapshot_t *snap, uint64_t missed)
{
    (void)missed;
    GW_LOG(GW_INFO, "client.resync",
           "🔄 Client {client} resynced from watch: snapshot #{snapshot}, {active} active "
           "devices, {total} messages",
           GW_I("client", sink->client_id), GW_U("snapshot", snap->seq),
           GW_U("active", snap->active_devices), GW_U("total", snap->total_messages));
    return 0;
}

static void ls_close(gw_sink_t *sink)
{
    free(sink);
}

static const gw_sink_ops_t log_sink_ops = {ls_deliver, ls_resync, ls_close};

gw_sink_t *gw_log_sink_new(int client_id, int64_t delay_ns, sl_cancel_t *shutdown)
{
    log_sink_t *ls = calloc(1, sizeof *ls);
    if (!ls)
        return NULL;
    ls->base.ops = &log_sink_ops;
    ls->base.client_id = client_id;
    ls->delay_ns = delay_ns;
    ls->shutdown = shutdown;
    return &ls->base;
}
