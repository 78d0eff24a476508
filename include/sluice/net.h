/* sluice: net (being written). */
#ifndef SLUICE_NET_H
#define SLUICE_NET_H

#endif /* SLUICE_NET_H */
