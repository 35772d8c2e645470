/* Pieces of the composition root shared between its files. */
#ifndef BH_APP_APP_H
#define BH_APP_APP_H

#include <stdbool.h>
#include <stddef.h>

#include "manifest.h"
#include "module_info.h"
#include "platform/module.h"

/* GET /openapi.json */
extern const struct bh_route bh_app_routes[];
extern const size_t bh_app_routes_count;
/* GET /_modules (dev mode only) */
extern const struct bh_route bh_app_dev_routes[];
extern const size_t bh_app_dev_routes_count;

/* `bulkhead routes`: prints every mounted route; returns an exit status. */
int bh_app_print_routes(void);
/* `bulkhead modules`: the graph as text and Mermaid; returns an exit status. */
int bh_app_print_modules(const struct bh_module *const *modules, size_t n, bool mermaid_only);
/* Sets the module list /_modules describes. */
void bh_app_set_modules(const struct bh_module *const *modules, size_t n);

#endif
