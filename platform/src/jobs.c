/* Placeholder until the async backbone lands: registers nothing. */
#include "platform/jobs.h"

int bh_jobs_init(const struct bh_module *const *modules, size_t n) { return 0; }
int bh_workers_start(void) { return 0; }
void bh_workers_stop(int grace_ms) {}
int bh_jobs_cli(int argc, char **argv) { return 1; }
