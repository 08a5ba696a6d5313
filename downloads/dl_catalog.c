/* The model catalog: a JSON data file installed with the app (downloads/catalog.json). */
#include "downloads/dl_internal.h"

#include <stdlib.h>

struct dl_catalog {
    size_t n;
};

void dl_catalog_free(struct dl_catalog *cat)
{
    free(cat);
}
