/* sluice: broadcast (being written). */
#ifndef SLUICE_BROADCAST_H
#define SLUICE_BROADCAST_H

#endif /* SLUICE_BROADCAST_H */
