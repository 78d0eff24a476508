/* sluice: tracker (being written). */
#ifndef SLUICE_TRACKER_H
#define SLUICE_TRACKER_H

#endif /* SLUICE_TRACKER_H */
