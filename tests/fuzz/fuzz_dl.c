/* libFuzzer harness for the download module's parsers (`make fuzz`): the first byte picks
 * one, the rest is its input.
 *   0: a model reference (dl_ref_parse, then dl_resolve offline against an empty store), with
 *      the shipped catalog loaded so catalog names are classified too;
 *   1: a catalog file (dl_catalog_load), every entry then resolved offline by name.
 * Nothing may touch the network: the store is empty and resolution is offline, and HF_ENDPOINT
 * points at a closed port in case a path forgot that. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "downloads/dl.h"

static dl_ctx *with_catalog;
static char store[] = "/tmp/sizeup-fuzz-store-XXXXXX";
static char cat_path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    if (!mkdtemp(store))
        abort();
    setenv("SIZEUP_MODELS", store, 1);
    setenv("HF_ENDPOINT", "http://127.0.0.1:1", 1);
    snprintf(cat_path, sizeof cat_path, "%s.catalog.json", store);
    with_catalog = dl_open();
    dl_set_catalog_path(with_catalog, "downloads/catalog.json");
    if (!with_catalog || dl_catalog_load(with_catalog) != DL_OK)
        abort(); /* run from the source tree */
    return 0;
}

static void fuzz_ref(const char *text)
{
    dl_ref r;
    if (dl_ref_parse(with_catalog, text, &r) == DL_OK)
        dl_ref_free(&r);
    dl_resolved res;
    if (dl_resolve(with_catalog, text, true, &res) == DL_OK)
        dl_resolved_free(&res);
}

static void fuzz_catalog(const uint8_t *data, size_t size)
{
    FILE *f = fopen(cat_path, "wb");
    if (!f || fwrite(data, 1, size, f) != size)
        abort();
    fclose(f);
    dl_ctx *c = dl_open();
    dl_set_catalog_path(c, cat_path);
    if (dl_catalog_load(c) == DL_OK) {
        const char *small, *large;
        dl_catalog_default_pair(c, &small, &large);
        for (size_t i = 0; i < dl_catalog_count(c); i++) {
            dl_resolved res;
            if (dl_resolve(c, dl_catalog_entry(c, i)->name, true, &res) == DL_OK)
                dl_resolved_free(&res);
        }
    }
    dl_close(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    if (data[0] & 1) {
        fuzz_catalog(data + 1, size - 1);
        return 0;
    }
    char *text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = 0;
    fuzz_ref(text);
    free(text);
    return 0;
}
