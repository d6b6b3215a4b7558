/* config_keys.h — the sections and keys quince.conf may hold, for the strict check
 * (config_check.h). One table per section in config_keys.c: a program that reads a new key adds
 * one line there (and documents the key in docs/configuration.md); a key missing from the table
 * is refused as a typo by all three programs. */
#ifndef QUINCE_CONFIG_KEYS_H
#define QUINCE_CONFIG_KEYS_H

#include <stddef.h>

#define QCK_SECRET 0x1u   /* value masked by --check-config (passwords, tokens) */

typedef struct qconfig_key {
    const char *name;
    unsigned flags;
} qconfig_key;

typedef struct qconfig_section_def {
    const char *name;
    const qconfig_key *keys;   /* ends with {NULL, 0} */
} qconfig_section_def;

/* All known sections, ending with {NULL, NULL}. */
extern const qconfig_section_def qconfig_known[];

/* The section's table (case-insensitive), or NULL. */
const qconfig_section_def *qconfig_known_section(const char *name);
/* The key's entry in the section (case-insensitive), or NULL. */
const qconfig_key *qconfig_known_key(const qconfig_section_def *s, const char *key);

#endif
