/* json_share.c — one parsed tree per distinct record text (json_share.h). */
#include "json_share.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BUCKETS 1024                 /* distinct texts are few; a fleet of distinct ones still hashes */

struct vjson_shared {
    cJSON *json;
    size_t refs;                     /* under mu */
    uint32_t hash;
    struct vjson_shared *next;       /* bucket chain */
    char text[];
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static vjson_shared *table[BUCKETS];
static size_t count;

static uint32_t fnv1a(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

vjson_shared *vjson_share_get(const char *text)
{
    if (!text)
        return NULL;
    uint32_t h = fnv1a(text);
    pthread_mutex_lock(&mu);
    for (vjson_shared *e = table[h % BUCKETS]; e; e = e->next)
        if (e->hash == h && strcmp(e->text, text) == 0) {
            e->refs++;
            pthread_mutex_unlock(&mu);
            return e;
        }
    pthread_mutex_unlock(&mu);
    /* Parsed outside the lock: another thread may add the same text meanwhile (checked below). */
    size_t len = strlen(text);
    vjson_shared *n = malloc(sizeof *n + len + 1);
    cJSON *j = n ? cJSON_Parse(text) : NULL;
    if (!j) {
        free(n);
        return NULL;
    }
    n->json = j;
    n->refs = 1;
    n->hash = h;
    memcpy(n->text, text, len + 1);
    pthread_mutex_lock(&mu);
    for (vjson_shared *e = table[h % BUCKETS]; e; e = e->next)
        if (e->hash == h && strcmp(e->text, text) == 0) {
            e->refs++;
            pthread_mutex_unlock(&mu);
            cJSON_Delete(j);
            free(n);
            return e;
        }
    n->next = table[h % BUCKETS];
    table[h % BUCKETS] = n;
    count++;
    pthread_mutex_unlock(&mu);
    return n;
}

void vjson_share_put(vjson_shared *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&mu);
    if (--s->refs > 0) {
        pthread_mutex_unlock(&mu);
        return;
    }
    vjson_shared **pp = &table[s->hash % BUCKETS];
    while (*pp != s)
        pp = &(*pp)->next;
    *pp = s->next;
    count--;
    pthread_mutex_unlock(&mu);
    cJSON_Delete(s->json);
    free(s);
}

const cJSON *vjson_share_json(const vjson_shared *s)
{
    return s ? s->json : NULL;
}

size_t vjson_share_count(void)
{
    pthread_mutex_lock(&mu);
    size_t n = count;
    pthread_mutex_unlock(&mu);
    return n;
}
