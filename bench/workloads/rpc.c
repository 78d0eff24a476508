/*
 * oneshot_rpc, timeout_rpc: an actor task owns a counter; a client sends Add(1) requests, each
 * carrying a fresh oneshot reply sender, through an mpsc(32) and awaits every reply before the
 * next request (timeout_rpc: inside a 1-second timeout scope, as tokio::time::timeout).
 */
#include "../bench.h"

#define RPC_N         1000000
#define TIMEOUT_RPC_N 200000
#define INBOX_CAP     32

typedef struct request {
    uint64_t add;
    sl_oneshot_tx_t *reply;
} request_t;

typedef struct rpc {
    sl_mpsc_tx_t *tx;
    sl_mpsc_rx_t *rx;
    uint64_t requests;
    int with_timeout;
} rpc_t;

static void *counter_actor(void *arg)
{
    rpc_t *c = arg;
    uint64_t counter = 0;
    request_t req;
    int r;
    while ((r = sl_mpsc_recv(c->rx, &req)) == 0) {
        counter += req.add;
        (void)sl_oneshot_send(req.reply, &counter);
    }
    if (r != SL_ECLOSED)
        bench_fail("sl_mpsc_recv", r);
    sl_mpsc_rx_drop(c->rx);
    return (void *)(uintptr_t)counter;
}

static void *client(void *arg)
{
    rpc_t *c = arg;
    uint64_t last = 0;
    for (uint64_t i = 0; i < c->requests; i++) {
        request_t req = {1, NULL};
        sl_oneshot_rx_t *reply;
        BENCH_OK(sl_oneshot_new(sizeof(uint64_t), &req.reply, &reply));
        BENCH_OK(sl_mpsc_send(c->tx, &req));
        if (c->with_timeout) {
            sl_timeout_t to;
            sl_timeout_enter(&to, sl_deadline_in(SL_SEC));
            int r = sl_oneshot_recv(reply, &last);
            int e = sl_timeout_exit(&to);
            if (e)
                bench_fail("rpc (timed out)", e);
            BENCH_OK(r);
        } else {
            BENCH_OK(sl_oneshot_recv(reply, &last));
        }
        sl_oneshot_rx_drop(reply);
    }
    sl_mpsc_tx_drop(c->tx);
    return (void *)(uintptr_t)last;
}

static uint64_t rpc_run(uint64_t requests, int with_timeout, uint64_t *ops)
{
    rpc_t c = {.requests = requests, .with_timeout = with_timeout};
    BENCH_OK(sl_mpsc_new(sizeof(request_t), INBOX_CAP, &c.tx, &c.rx));
    sl_task_t *actor, *cl;
    BENCH_OK(sl_task_spawn(counter_actor, &c, &actor));
    BENCH_OK(sl_task_spawn(client, &c, &cl));
    sl_join_t j;
    BENCH_OK(sl_task_join(cl, &j));
    uint64_t last = (uint64_t)(uintptr_t)j.value;
    BENCH_OK(sl_task_join(actor, &j));
    uint64_t counter = (uint64_t)(uintptr_t)j.value;
    if (last != counter) {
        fprintf(stderr, "sluice-bench: rpc: last reply %llu != counter %llu\n",
                (unsigned long long)last, (unsigned long long)counter);
        exit(1);
    }
    *ops = requests;
    return counter;
}

uint64_t w_oneshot_rpc_expect(void)
{
    return bench_n(RPC_N, 1);
}

uint64_t w_oneshot_rpc(uint64_t *ops)
{
    return rpc_run(w_oneshot_rpc_expect(), 0, ops);
}

uint64_t w_timeout_rpc_expect(void)
{
    return bench_n(TIMEOUT_RPC_N, 1);
}

uint64_t w_timeout_rpc(uint64_t *ops)
{
    return rpc_run(w_timeout_rpc_expect(), 1, ops);
}
