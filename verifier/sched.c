/* sched.c — id map and due-time heap (sched.h). */
#include "sched.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void vsched_node_init(vsched_node *n, const char *id)
{
    n->id = id;
    n->heap_idx = SIZE_MAX;
    n->due = 0;
}

void vsched_free(vsched *s)
{
    free(s->map);
    free(s->heap);
    memset(s, 0, sizeof *s);
}

static size_t map_pos(const vsched *s, const char *id, int *found)
{
    size_t lo = 0, hi = s->nmap;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(s->map[mid]->id, id);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

vsched_node *vsched_find(const vsched *s, const char *id)
{
    int found;
    size_t i = map_pos(s, id, &found);
    return found ? s->map[i] : NULL;
}

/* arr with room for twice its capacity (*cap updated), or NULL (arr untouched). */
static void *grow(void *arr, size_t *cap, size_t elem)
{
    size_t ncap = *cap ? 2 * *cap : 64;
    void *m = realloc(arr, ncap * elem);
    if (m)
        *cap = ncap;
    return m;
}

int vsched_insert(vsched *s, vsched_node *n)
{
    int found;
    size_t i = map_pos(s, n->id, &found);
    if (found)
        return -1;
    if (s->nmap == s->mapcap) {
        vsched_node **m = grow(s->map, &s->mapcap, sizeof *m);
        if (!m)
            return -1;
        s->map = m;
    }
    memmove(&s->map[i + 1], &s->map[i], (s->nmap - i) * sizeof *s->map);
    s->map[i] = n;
    s->nmap++;
    return 0;
}

void vsched_remove(vsched *s, const char *id)
{
    int found;
    size_t i = map_pos(s, id, &found);
    if (!found)
        return;
    memmove(&s->map[i], &s->map[i + 1], (s->nmap - i - 1) * sizeof *s->map);
    s->nmap--;
}

size_t vsched_count(const vsched *s)
{
    return s->nmap;
}

vsched_node *vsched_nth(const vsched *s, size_t i)
{
    return i < s->nmap ? s->map[i] : NULL;
}

/* Sift the hole at i up, then down, until slot x fits; x goes there. */
static void place(vsched *s, size_t i, vsched_slot x)
{
    vsched_slot *h = s->heap;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (h[parent].due <= x.due)
            break;
        h[i] = h[parent];
        h[i].n->heap_idx = i;
        i = parent;
    }
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = l;
        if (l >= s->nheap)
            break;
        if (r < s->nheap && h[r].due < h[l].due)
            m = r;
        if (!(h[m].due < x.due))
            break;
        h[i] = h[m];
        h[i].n->heap_idx = i;
        i = m;
    }
    h[i] = x;
    x.n->heap_idx = i;
}

void vsched_cancel(vsched *s, vsched_node *n)
{
    size_t i = n->heap_idx;
    if (i == SIZE_MAX)
        return;
    n->heap_idx = SIZE_MAX;
    s->nheap--;
    if (i == s->nheap)
        return;
    place(s, i, s->heap[s->nheap]);
}

int vsched_at(vsched *s, vsched_node *n, double due)
{
    vsched_cancel(s, n);
    if (s->nheap == s->heapcap) {
        vsched_slot *h = grow(s->heap, &s->heapcap, sizeof *h);
        if (!h)
            return -1;
        s->heap = h;
    }
    n->due = due;
    s->nheap++;
    place(s, s->nheap - 1, (vsched_slot){ .due = due, .n = n });
    return 0;
}

vsched_node *vsched_first(const vsched *s)
{
    return s->nheap ? s->heap[0].n : NULL;
}
