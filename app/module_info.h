/* Facts about each module gathered at build time (cmake/gen-module-info):
 * the public symbols its sealed object exports and the tables its
 * migrations create. */
#ifndef BH_APP_MODULE_INFO_H
#define BH_APP_MODULE_INFO_H

struct bh_module_info {
    const char *name;
    const char *symbols; /* space-separated */
    const char *tables;  /* space-separated, schema-qualified */
};

extern const struct bh_module_info bh_module_info[];
extern const unsigned bh_module_info_count;

#endif
