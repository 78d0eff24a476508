/* sluice: notify (being written). */
#ifndef SLUICE_NOTIFY_H
#define SLUICE_NOTIFY_H

#endif /* SLUICE_NOTIFY_H */
