/*
 * sluice-gateway: command line.
 */
#ifndef GATEWAY_CLI_H
#define GATEWAY_CLI_H

#include "gateway.h"

/* Fills *cfg with the defaults of the seed document (7 devices, 4 clients, 1 Hz, ...). */
void gw_config_defaults(gw_config_t *cfg);

/*
 * Parses argv into *cfg (defaults first). Returns 0 to run, 1 when --help was printed (exit 0),
 * or 2 after printing a one-line error naming the flag to stderr (exit 2).
 */
int gw_cli_parse(int argc, char **argv, gw_config_t *cfg);

#endif /* GATEWAY_CLI_H */
