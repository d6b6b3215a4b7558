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

static int grow(vsched_node ***arr, size_t *cap)
{
    size_t ncap = *cap ? 2 * *cap : 64;
    vsched_node **m = realloc(*arr, ncap * sizeof *m);
    if (!m)
        return -1;
    *arr = m;
    *cap = ncap;
    return 0;
}

int vsched_insert(vsched *s, vsched_node *n)
{
    int found;
    size_t i = map_pos(s, n->id, &found);
    if (found || (s->nmap == s->mapcap && grow(&s->map, &s->mapcap) < 0))
        return -1;
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

static void swap(vsched *s, size_t i, size_t j)
{
    vsched_node *t = s->heap[i];
    s->heap[i] = s->heap[j];
    s->heap[j] = t;
    s->heap[i]->heap_idx = i;
    s->heap[j]->heap_idx = j;
}

static void up(vsched *s, size_t i)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (s->heap[parent]->due <= s->heap[i]->due)
            break;
        swap(s, i, parent);
        i = parent;
    }
}

static void down(vsched *s, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < s->nheap && s->heap[l]->due < s->heap[m]->due)
            m = l;
        if (r < s->nheap && s->heap[r]->due < s->heap[m]->due)
            m = r;
        if (m == i)
            return;
        swap(s, i, m);
        i = m;
    }
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
    s->heap[i] = s->heap[s->nheap];
    s->heap[i]->heap_idx = i;
    down(s, i);
    up(s, i);
}

int vsched_at(vsched *s, vsched_node *n, double due)
{
    vsched_cancel(s, n);
    if (s->nheap == s->heapcap && grow(&s->heap, &s->heapcap) < 0)
        return -1;
    n->due = due;
    n->heap_idx = s->nheap;
    s->heap[s->nheap++] = n;
    up(s, n->heap_idx);
    return 0;
}

vsched_node *vsched_first(const vsched *s)
{
    return s->nheap ? s->heap[0] : NULL;
}
