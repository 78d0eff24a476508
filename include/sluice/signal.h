/* sluice: signal (being written). */
#ifndef SLUICE_SIGNAL_H
#define SLUICE_SIGNAL_H

#endif /* SLUICE_SIGNAL_H */
