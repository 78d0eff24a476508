/*
 * A TCP echo server: one task per connection, until SIGINT or SIGTERM.
 *
 *     echo-server [port]        (default 7007; then e.g. `nc 127.0.0.1 7007`)
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include <sluice.h>

static void *serve(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[4096];
    for (;;) {
        ssize_t n = sl_read(fd, buf, sizeof buf);
        if (n <= 0 || sl_write_all(fd, buf, (size_t)n, NULL) < 0)
            break; /* end of file, an error, or the runtime is shutting down */
    }
    sl_close(fd);
    return NULL;
}

static void *main_task(void *arg)
{
    int port = (int)(intptr_t)arg;
    sl_signal_listen(SIGINT);
    sl_signal_listen(SIGTERM);
    int l = sl_tcp_listen("127.0.0.1", port, 0);
    if (l < 0) {
        fprintf(stderr, "listen: %s\n", sl_strerror(l));
        return NULL;
    }
    printf("echo server on 127.0.0.1:%d\n", sl_sock_port(l));
    fflush(stdout);
    for (;;) {
        /* Accept, or stop on a signal: whichever comes first. */
        sl_clause_t c[3];
        sl_clause_readable(&c[0], l);
        sl_clause_signal(&c[1], SIGINT);
        sl_clause_signal(&c[2], SIGTERM);
        int i = sl_select(c, 3, SL_SELECT_BIASED, SL_FOREVER);
        if (i != 0)
            break;
        int fd = sl_tcp_try_accept(l, SL_TCP_NODELAY, NULL);
        if (fd >= 0 && sl_task_spawn(serve, (void *)(intptr_t)fd, NULL) != 0)
            sl_close(fd);
    }
    printf("shutting down\n");
    sl_close(l);
    return NULL; /* the runtime cancels the connections still open */
}

int main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 7007;
    int r = sl_run(NULL, main_task, (void *)(intptr_t)port, NULL);
    if (r) {
        fprintf(stderr, "sl_run: %s\n", sl_strerror(r));
        return 1;
    }
    return 0;
}
