/* sched.h — the poller's agents by id (a sorted array) and their due times (a min-heap).
 *
 * Contract: a vsched_node is embedded in the caller's per-agent struct; the vsched holds
 * pointers only and never frees a node. The node points at its id, which the caller keeps (in
 * the same struct, exactly sized) for as long as the node lives. No locking of its own: the poller guards the id map
 * with its mutex (API threads look agents up) and touches the heap from the event thread only.
 * Lookups are O(log n); schedule/cancel O(log n); nothing allocates except growing the arrays. */
#ifndef QUINCE_VERIFIER_SCHED_H
#define QUINCE_VERIFIER_SCHED_H

#include <stddef.h>
#include "store.h"

typedef struct vsched_node {
    const char *id;               /* the caller's, see above */
    size_t heap_idx;              /* SIZE_MAX: not scheduled */
    double due;                   /* monotonic seconds */
} vsched_node;

/* A heap slot holds the due time beside the node, so sifting compares within the array and
 * touches a node only to update its index (a thousand agents' nodes are a cache miss each). */
typedef struct vsched_slot {
    double due;
    vsched_node *n;
} vsched_slot;

typedef struct vsched {
    vsched_node **map;            /* sorted by id */
    size_t nmap, mapcap;
    vsched_slot *heap;
    size_t nheap, heapcap;
} vsched;

void vsched_node_init(vsched_node *n, const char *id);
void vsched_free(vsched *s);      /* the arrays; the nodes are the caller's */

vsched_node *vsched_find(const vsched *s, const char *id);
int vsched_insert(vsched *s, vsched_node *n);          /* -1: the id is there already, or out of memory */
void vsched_remove(vsched *s, const char *id);          /* from the map (the heap: vsched_cancel) */
size_t vsched_count(const vsched *s);
vsched_node *vsched_nth(const vsched *s, size_t i);     /* i < vsched_count, in id order */

int vsched_at(vsched *s, vsched_node *n, double due);   /* (re)schedule; -1 out of memory */
void vsched_cancel(vsched *s, vsched_node *n);
vsched_node *vsched_first(const vsched *s);             /* the earliest due, or NULL */

#endif
