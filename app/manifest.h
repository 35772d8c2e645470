/* The module manifest, generated from modules/<name>/module.cmake at configure
 * time (cmake/BulkheadModules.cmake): names in dependency order, and what
 * each declared it depends on. */
#ifndef BH_APP_MANIFEST_H
#define BH_APP_MANIFEST_H

struct bh_manifest_entry {
    const char *name;
    const char *depends; /* space-separated module names */
};

extern const struct bh_manifest_entry bh_manifest[];
extern const unsigned bh_manifest_count;

#endif
