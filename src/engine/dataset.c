/* dataset.c - scanning image/mask folders and TIFF stacks, lazy pair loading,
 * mask interpretation, seeded splits and the full dataset check. */
#include "dataset.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fileutil.h"

typedef struct Entry {
    char *name;
    char *image;
    int image_page;
    char *mask;
    int mask_page;
} Entry;

struct UnetDataset {
    char *root;
    UnetDatasetOptions opt;
    Entry *items;
    int count;
};

/* ---- Options ---- */

void unet_dataset_options_default(UnetDatasetOptions *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->mask_mode = UNET_MASK_AUTO;
    opt->classes = 0;
    opt->instance_border = 1;
    unet_input_spec_default(&opt->input);
}

UnetStatus unet_dataset_options_validate(const UnetDatasetOptions *opt, UnetError *err)
{
    if (opt->mask_mode < UNET_MASK_AUTO || opt->mask_mode > UNET_MASK_INSTANCE)
        return unet_error_set(err, UNET_ERR_INVALID, "unknown mask mode %d", (int)opt->mask_mode);
    if (opt->classes != 0 && (opt->classes < 2 || opt->classes > 65536))
        return unet_error_set(err, UNET_ERR_INVALID, "class count %d is out of range (2..65536)", opt->classes);
    if (opt->mask_mode == UNET_MASK_MULTICLASS && opt->classes < 2)
        return unet_error_set(err, UNET_ERR_INVALID, "multiclass masks need the number of classes (values 0..K-1); "
                              "give the class count");
    if (opt->instance_border != 0 && opt->instance_border != 1)
        return unet_error_set(err, UNET_ERR_INVALID, "instance border %d: use 1 (cut a border) or 0", opt->instance_border);
    if (opt->input.intensity == UNET_INTENSITY_RANGE && !(opt->input.range_hi > opt->input.range_lo))
        return unet_error_set(err, UNET_ERR_INVALID, "intensity range [%g, %g] is empty; give lo < hi",
                              (double)opt->input.range_lo, (double)opt->input.range_hi);
    return UNET_OK;
}

const char *unet_mask_mode_name(UnetMaskMode m)
{
    switch (m) {
    case UNET_MASK_AUTO: return "auto";
    case UNET_MASK_BINARY: return "binary";
    case UNET_MASK_MULTICLASS: return "multiclass";
    case UNET_MASK_INSTANCE: return "instance";
    }
    return "unknown";
}

UnetStatus unet_mask_mode_parse(const char *s, UnetMaskMode *out, UnetError *err)
{
    for (int i = UNET_MASK_AUTO; i <= UNET_MASK_INSTANCE; i++)
        if (!strcasecmp(s, unet_mask_mode_name((UnetMaskMode)i))) {
            *out = (UnetMaskMode)i;
            return UNET_OK;
        }
    return unet_error_set(err, UNET_ERR_INVALID, "unknown mask mode '%s'; use auto, binary, multiclass or instance", s);
}

/* ---- Problems ---- */

/* Makes room for element `count` of a growing array, doubling its capacity
 * (first: the capacity of an empty one). false when out of memory; the
 * array is kept as it was. */
static bool room_for_one(void **items, int *cap, int count, size_t elem_size, int first)
{
    if (count < *cap)
        return true;
    int grown = *cap ? 2 * *cap : first;
    void *n = realloc(*items, elem_size * (size_t)grown);
    if (!n)
        return false;
    *items = n;
    *cap = grown;
    return true;
}

typedef struct Problems {
    UnetDatasetProblem *items;
    int count, cap;
    int nomem;
} Problems;

static void add_problem(Problems *p, const char *file, const char *fmt, ...) UNET_PRINTF(3, 4);
static void add_problem(Problems *p, const char *file, const char *fmt, ...)
{
    if (p->nomem)
        return;
    if (!room_for_one((void **)&p->items, &p->cap, p->count, sizeof *p->items, 16)) {
        p->nomem = 1;
        return;
    }
    char msg[UNET_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    UnetDatasetProblem *it = &p->items[p->count];
    it->file = strdup(file);
    it->message = strdup(msg);
    if (!it->file || !it->message) {
        free(it->file);
        free(it->message);
        p->nomem = 1;
        return;
    }
    p->count++;
}

static void problems_free(Problems *p)
{
    for (int i = 0; i < p->count; i++) {
        free(p->items[i].file);
        free(p->items[i].message);
    }
    free(p->items);
    memset(p, 0, sizeof *p);
}

/* ---- Scanning ---- */

typedef struct FileRec {
    char *stem;
    char *name;
    char *path;
} FileRec;

typedef struct FileList {
    FileRec *items;
    int count;
    FileRec *other;   /* files with extensions we do not read, for hints */
    int n_other;
} FileList;

static bool is_image_name(const char *name)
{
    return unet_path_has_extension(name, "png") || unet_path_has_extension(name, "tif") ||
           unet_path_has_extension(name, "tiff") || unet_path_has_extension(name, "npy");
}

static int compare_rec(const void *a, const void *b)
{
    const FileRec *x = a, *y = b;
    int c = strcmp(x->stem, y->stem);
    return c ? c : strcmp(x->name, y->name);
}

static void file_list_free(FileList *l)
{
    for (int i = 0; i < l->count; i++) {
        free(l->items[i].stem);
        free(l->items[i].name);
        free(l->items[i].path);
    }
    for (int i = 0; i < l->n_other; i++) {
        free(l->other[i].stem);
        free(l->other[i].name);
        free(l->other[i].path);
    }
    free(l->items);
    free(l->other);
    memset(l, 0, sizeof *l);
}

static UnetStatus list_files(const char *dir, FileList *out, UnetError *err)
{
    memset(out, 0, sizeof *out);
    char **names;
    int n;
    UnetStatus st = unet_list_dir(dir, &names, &n, err);
    if (st)
        return st;
    out->items = calloc((size_t)n + 1, sizeof(FileRec));
    out->other = calloc((size_t)n + 1, sizeof(FileRec));
    if (!out->items || !out->other)
        goto nomem;
    for (int i = 0; i < n; i++) {
        if (names[i][0] == '.')
            continue;
        char *path = unet_path_join(dir, names[i]);
        if (!path)
            goto nomem;
        if (!unet_path_is_file(path)) {
            free(path);
            continue;
        }
        bool img = is_image_name(names[i]);
        FileRec *r = img ? &out->items[out->count++] : &out->other[out->n_other++];
        r->path = path;
        r->name = strdup(names[i]);
        r->stem = unet_path_stem(names[i]);
        if (!r->name || !r->stem)
            goto nomem;
    }
    unet_string_list_free(names, n);
    qsort(out->items, (size_t)out->count, sizeof(FileRec), compare_rec);
    return UNET_OK;
nomem:
    unet_string_list_free(names, n);
    file_list_free(out);
    return unet_error_set(err, UNET_ERR_NOMEM, "out of memory listing %s", dir);
}

typedef struct EntryList {
    Entry *items;
    int count, cap;
    int nomem;
} EntryList;

static void entry_free(Entry *e)
{
    free(e->name);
    free(e->image);
    free(e->mask);
}

static void add_entry(EntryList *l, const char *name, const char *image, int ipage, const char *mask, int mpage)
{
    if (l->nomem)
        return;
    if (!room_for_one((void **)&l->items, &l->cap, l->count, sizeof *l->items, 64)) {
        l->nomem = 1;
        return;
    }
    Entry *e = &l->items[l->count];
    e->name = strdup(name);
    e->image = strdup(image);
    e->mask = strdup(mask);
    e->image_page = ipage;
    e->mask_page = mpage;
    if (!e->name || !e->image || !e->mask) {
        entry_free(e);
        l->nomem = 1;
        return;
    }
    l->count++;
}

static void entries_free(EntryList *l)
{
    for (int i = 0; i < l->count; i++)
        entry_free(&l->items[i]);
    free(l->items);
    memset(l, 0, sizeof *l);
}

/* Adds one entry per page of a matched pair, or a problem. */
static void add_pair(EntryList *el, Problems *pr, const char *stem, const char *image, const char *mask)
{
    UnetError e = { 0 };
    int pi = 0, pm = 0;
    if (unet_image_page_count(image, &pi, &e) != UNET_OK) {
        add_problem(pr, image, "%s", e.message);
        pi = -1;
    }
    if (unet_image_page_count(mask, &pm, &e) != UNET_OK) {
        add_problem(pr, mask, "%s", e.message);
        pm = -1;
    }
    if (pi < 0 || pm < 0)
        return;
    if (pi != pm) {
        add_problem(pr, mask, "mask %s has %d page%s but its image %s has %d; they must match page for page", mask,
                    pm, pm == 1 ? "" : "s", image, pi);
        return;
    }
    if (pi == 1) {
        add_entry(el, stem, image, 0, mask, 0);
        return;
    }
    for (int p = 0; p < pi; p++) {
        char name[512];
        snprintf(name, sizeof name, "%s[%d]", stem, p + 1);
        add_entry(el, name, image, p, mask, p);
    }
}

static const FileRec *find_other(const FileList *l, const char *stem)
{
    for (int i = 0; i < l->n_other; i++)
        if (!strcmp(l->other[i].stem, stem))
            return &l->other[i];
    return NULL;
}

static void report_duplicates(const FileList *l, Problems *pr)
{
    for (int i = 1; i < l->count; i++)
        if (!strcmp(l->items[i].stem, l->items[i - 1].stem))
            add_problem(pr, l->items[i].path, "%s and %s have the same name; keep one of them",
                        l->items[i - 1].path, l->items[i].path);
}

static void missing_partner(Problems *pr, const FileRec *r, const char *what, const char *partner_dir,
                            const FileList *partners)
{
    const FileRec *o = find_other(partners, r->stem);
    if (o)
        add_problem(pr, r->path, "%s has no %s: %s exists but .%s files are not read (use PNG, TIFF or .npy)",
                    r->path, what, o->path, unet_path_extension(o->name));
    else
        add_problem(pr, r->path, "%s has no %s: expected %s/%s.png (or .tif, .tiff, .npy)", r->path, what,
                    partner_dir, r->stem);
}

static bool contains_word(const char *stem, const char *const *words, size_t *at, size_t *len)
{
    size_t n = strlen(stem);
    for (size_t i = 0; i < n; i++)
        for (const char *const *w = words; *w; w++) {
            size_t k = strlen(*w);
            if (i + k <= n && !strncasecmp(stem + i, *w, k)) {
                *at = i;
                *len = k;
                return true;
            }
        }
    return false;
}

/* stem with its keyword replaced by '*': "train-labels" -> "train-*". */
static char *stem_pattern(const char *stem, size_t at, size_t len)
{
    size_t n = strlen(stem);
    char *p = malloc(n + 2);
    if (!p)
        return NULL;
    memcpy(p, stem, at);
    p[at] = '*';
    memcpy(p + at + 1, stem + at + len, n - at - len + 1);
    for (char *c = p; *c; c++)
        *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
    return p;
}

/* Looks for a TIFF image stack and its label stack in dir. */
static bool find_stacks(const char *dir, char **images, char **labels)
{
    static const char *const label_words[] = { "labels", "label", "masks", "mask", NULL };
    static const char *const image_words[] = { "volume", "images", "image", "raw", "input", NULL };
    *images = *labels = NULL;
    FileList l;
    if (list_files(dir, &l, NULL) != UNET_OK)
        return false;
    for (int i = 0; i < l.count && !*labels; i++) {
        const FileRec *lr = &l.items[i];
        size_t at, len;
        if (unet_path_has_extension(lr->name, "npy") || !contains_word(lr->stem, label_words, &at, &len))
            continue;
        char *want = stem_pattern(lr->stem, at, len);
        for (int j = 0; want && j < l.count; j++) {
            const FileRec *ir = &l.items[j];
            size_t a2, l2;
            if (j == i || unet_path_has_extension(ir->name, "npy") || !contains_word(ir->stem, image_words, &a2, &l2))
                continue;
            char *have = stem_pattern(ir->stem, a2, l2);
            if (have && !strcmp(have, want)) {
                *images = strdup(ir->path);
                *labels = strdup(lr->path);
                free(have);
                break;
            }
            free(have);
        }
        free(want);
    }
    file_list_free(&l);
    if (*images && *labels)
        return true;
    free(*images);
    free(*labels);
    *images = *labels = NULL;
    return false;
}

static void scan_stacks(const char *images, const char *labels, EntryList *el, Problems *pr, int *nimg, int *nmask)
{
    char *stem = unet_path_stem(images);
    if (!stem) {
        pr->nomem = 1;
        return;
    }
    *nimg = unet_path_is_file(images);
    *nmask = unet_path_is_file(labels);
    if (!*nimg)
        add_problem(pr, images, "image stack %s does not exist", images);
    if (!*nmask)
        add_problem(pr, labels, "label stack %s does not exist", labels);
    if (*nimg && *nmask) {
        /* Always name pages, even for a one-page stack. */
        int before = el->count;
        add_pair(el, pr, stem, images, labels);
        if (el->count == before + 1 && !el->nomem) {
            char name[512];
            snprintf(name, sizeof name, "%s[1]", stem);
            char *n = strdup(name);
            if (n) {
                free(el->items[before].name);
                el->items[before].name = n;
            }
        }
    }
    free(stem);
}

static void scan_folder(const char *path, EntryList *el, Problems *pr, int *nimg, int *nmask)
{
    *nimg = *nmask = 0;
    if (!unet_path_is_dir(path)) {
        add_problem(pr, path, unet_path_is_file(path) ? "%s is a file, not a dataset folder (give the folder that "
                    "holds images/ and masks/)" : "dataset folder %s does not exist", path);
        return;
    }
    char *images = unet_path_join(path, "images");
    char *masks = unet_path_join(path, "masks");
    char *labels = unet_path_join(path, "labels");
    if (!images || !masks || !labels) {
        pr->nomem = 1;
        goto out;
    }
    if (!unet_path_is_dir(images)) {
        char *si = NULL, *sl = NULL;
        if (find_stacks(path, &si, &sl)) {
            scan_stacks(si, sl, el, pr, nimg, nmask);
            free(si);
            free(sl);
        } else {
            add_problem(pr, path, "%s has no images/ folder: expected %s/images and %s/masks with matching file "
                        "names, or a pair of TIFF stacks such as train-volume.tif and train-labels.tif",
                        path, path, path);
        }
        goto out;
    }
    const char *mdir = unet_path_is_dir(masks) ? masks : unet_path_is_dir(labels) ? labels : NULL;
    FileList il = { 0 }, ml = { 0 };
    UnetError e = { 0 };
    if (list_files(images, &il, &e) != UNET_OK) {
        add_problem(pr, images, "%s", e.message);
        goto out;
    }
    if (mdir && list_files(mdir, &ml, &e) != UNET_OK) {
        add_problem(pr, mdir, "%s", e.message);
        file_list_free(&il);
        goto out;
    }
    *nimg = il.count;
    *nmask = ml.count;
    if (il.count == 0)
        add_problem(pr, images, "%s holds no images (PNG, TIFF or .npy files)", images);
    if (!mdir) {
        add_problem(pr, masks, "%s has no masks/ (or labels/) folder next to images/", path);
    } else {
        if (ml.count == 0)
            add_problem(pr, mdir, "%s holds no masks (PNG, TIFF or .npy files)", mdir);
        report_duplicates(&il, pr);
        report_duplicates(&ml, pr);
        int i = 0, j = 0;
        while (i < il.count || j < ml.count) {
            int c = i >= il.count ? 1 : j >= ml.count ? -1 : strcmp(il.items[i].stem, ml.items[j].stem);
            if (c < 0) {
                if (!(i > 0 && !strcmp(il.items[i].stem, il.items[i - 1].stem)))
                    missing_partner(pr, &il.items[i], "mask", mdir, &ml);
                i++;
            } else if (c > 0) {
                if (!(j > 0 && !strcmp(ml.items[j].stem, ml.items[j - 1].stem)))
                    missing_partner(pr, &ml.items[j], "image", images, &il);
                j++;
            } else {
                add_pair(el, pr, il.items[i].stem, il.items[i].path, ml.items[j].path);
                const char *stem = il.items[i].stem;
                while (i < il.count && !strcmp(il.items[i].stem, stem))
                    i++;
                while (j < ml.count && !strcmp(ml.items[j].stem, stem))
                    j++;
            }
        }
    }
    file_list_free(&il);
    file_list_free(&ml);
out:
    free(images);
    free(masks);
    free(labels);
}

static UnetStatus make_dataset(const char *root, const UnetDatasetOptions *opt, EntryList *el, Problems *pr,
                               UnetDataset **out, UnetError *err)
{
    if (pr->nomem || el->nomem)
        return unet_error_set(err, UNET_ERR_NOMEM, "out of memory scanning %s", root);
    if (pr->count) {
        UnetStatus st = unet_error_set(err, UNET_ERR_FORMAT, "dataset %s has %d problem%s; the first: %s%s", root,
                                       pr->count, pr->count == 1 ? "" : "s", pr->items[0].message,
                                       pr->count > 1 ? " (run 'unet dataset check' for the full list)" : "");
        return st;
    }
    if (el->count == 0)
        return unet_error_set(err, UNET_ERR_FORMAT, "dataset %s has no image/mask pairs", root);
    UnetDataset *ds = calloc(1, sizeof *ds);
    if (!ds || !(ds->root = strdup(root))) {
        free(ds);
        return unet_error_set(err, UNET_ERR_NOMEM, "out of memory opening %s", root);
    }
    ds->opt = *opt;
    ds->items = el->items;
    ds->count = el->count;
    el->items = NULL;
    el->count = el->cap = 0;
    *out = ds;
    return UNET_OK;
}

/* Where a dataset comes from: a folder, or a pair of multi-page TIFF stacks. */
typedef struct DatasetSource {
    const char *folder;                   /* NULL for stacks */
    const char *images_tif, *labels_tif;
} DatasetSource;

static const char *source_name(const DatasetSource *src)
{
    return src->folder ? src->folder : src->images_tif;
}

static void scan_source(const DatasetSource *src, EntryList *el, Problems *pr, int *nimg, int *nmask)
{
    if (src->folder)
        scan_folder(src->folder, el, pr, nimg, nmask);
    else
        scan_stacks(src->images_tif, src->labels_tif, el, pr, nimg, nmask);
}

/* opt, or the defaults in *def when opt is NULL; validated. */
static UnetStatus options_or_default(const UnetDatasetOptions **opt, UnetDatasetOptions *def, UnetError *err)
{
    if (!*opt) {
        unet_dataset_options_default(def);
        *opt = def;
    }
    return unet_dataset_options_validate(*opt, err);
}

static UnetStatus open_source(const DatasetSource *src, const UnetDatasetOptions *opt, UnetDataset **out,
                              UnetError *err)
{
    *out = NULL;
    UnetDatasetOptions def;
    UnetStatus st = options_or_default(&opt, &def, err);
    if (st)
        return st;
    EntryList el = { 0 };
    Problems pr = { 0 };
    int ni, nm;
    scan_source(src, &el, &pr, &ni, &nm);
    st = make_dataset(source_name(src), opt, &el, &pr, out, err);
    entries_free(&el);
    problems_free(&pr);
    return st;
}

UnetStatus unet_dataset_open(const char *path, const UnetDatasetOptions *opt, UnetDataset **out, UnetError *err)
{
    const DatasetSource src = { .folder = path };
    return open_source(&src, opt, out, err);
}

UnetStatus unet_dataset_open_stacks(const char *images_tif, const char *labels_tif, const UnetDatasetOptions *opt,
                                    UnetDataset **out, UnetError *err)
{
    const DatasetSource src = { .images_tif = images_tif, .labels_tif = labels_tif };
    return open_source(&src, opt, out, err);
}

void unet_dataset_free(UnetDataset *ds)
{
    if (!ds)
        return;
    for (int i = 0; i < ds->count; i++)
        entry_free(&ds->items[i]);
    free(ds->items);
    free(ds->root);
    free(ds);
}

int unet_dataset_count(const UnetDataset *ds)
{
    return ds ? ds->count : 0;
}

const char *unet_dataset_name(const UnetDataset *ds, int i)
{
    return (ds && i >= 0 && i < ds->count) ? ds->items[i].name : NULL;
}

const char *unet_dataset_image_path(const UnetDataset *ds, int i, int *page)
{
    if (!ds || i < 0 || i >= ds->count)
        return NULL;
    if (page)
        *page = ds->items[i].image_page;
    return ds->items[i].image;
}

const char *unet_dataset_mask_path(const UnetDataset *ds, int i, int *page)
{
    if (!ds || i < 0 || i >= ds->count)
        return NULL;
    if (page)
        *page = ds->items[i].mask_page;
    return ds->items[i].mask;
}

const UnetDatasetOptions *unet_dataset_options(const UnetDataset *ds)
{
    return &ds->opt;
}

/* ---- Masks ---- */

typedef struct MaskStats {
    int32_t min, max;
    int distinct;     /* 1, 2, or 3 meaning "more than two" */
    int32_t first, second;
} MaskStats;

static void mask_stats(const UnetLabels *m, MaskStats *s)
{
    size_t n = (size_t)m->width * m->height;
    s->min = s->max = s->first = m->data[0];
    s->second = m->data[0];
    s->distinct = 1;
    for (size_t i = 1; i < n; i++) {
        int32_t v = m->data[i];
        s->min = v < s->min ? v : s->min;
        s->max = v > s->max ? v : s->max;
        if (s->distinct < 3 && v != s->first) {
            if (s->distinct == 1) {
                s->second = v;
                s->distinct = 2;
            } else if (v != s->second) {
                s->distinct = 3;
            }
        }
    }
}

static UnetMaskMode resolve_auto(const MaskStats *s, int classes)
{
    if (classes >= 3 && s->min >= 0 && s->max < classes)
        return UNET_MASK_MULTICLASS;
    if (s->distinct <= 2)
        return UNET_MASK_BINARY;
    return UNET_MASK_INSTANCE;
}

UnetStatus unet_instances_to_binary(const UnetLabels *ids, int border, UnetLabels *binary, UnetLabels *separated,
                                    UnetError *err)
{
    int w = ids->width, h = ids->height;
    UnetStatus st = unet_labels_alloc(binary, w, h, err);
    if (st)
        return st;
    if (separated && (st = unet_labels_alloc(separated, w, h, err))) {
        unet_labels_free(binary);
        return st;
    }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            size_t i = (size_t)y * w + x;
            int32_t a = ids->data[i];
            int keep = a > 0;
            if (keep && border) {
                /* The lower id yields: one background pixel between touching objects. */
                for (int dy = -1; dy <= 1 && keep; dy++)
                    for (int dx = -1; dx <= 1; dx++) {
                        int yy = y + dy, xx = x + dx;
                        if (yy < 0 || xx < 0 || yy >= h || xx >= w)
                            continue;
                        if (ids->data[(size_t)yy * w + xx] > a) {
                            keep = 0;
                            break;
                        }
                    }
            }
            binary->data[i] = keep;
            if (separated)
                separated->data[i] = keep ? a : 0;
        }
    return UNET_OK;
}

UnetStatus unet_mask_interpret(const UnetLabels *raw, UnetMaskMode mode, int classes, int instance_border,
                               const char *name, UnetLabels *labels, UnetLabels *instances, UnetMaskMode *applied,
                               UnetError *err)
{
    memset(labels, 0, sizeof *labels);
    if (instances)
        memset(instances, 0, sizeof *instances);
    MaskStats s;
    mask_stats(raw, &s);
    if (s.min < 0)
        return unet_error_set(err, UNET_ERR_FORMAT, "mask %s has negative values (down to %d); labels must be 0 or "
                              "more", name, (int)s.min);
    UnetMaskMode m = mode == UNET_MASK_AUTO ? resolve_auto(&s, classes) : mode;
    if (applied)
        *applied = m;
    size_t n = (size_t)raw->width * raw->height;
    UnetStatus st;
    switch (m) {
    case UNET_MASK_BINARY:
        if ((st = unet_labels_alloc(labels, raw->width, raw->height, err)))
            return st;
        for (size_t i = 0; i < n; i++)
            labels->data[i] = s.distinct == 1 ? (raw->data[i] != 0)
                                              : (2 * (int64_t)raw->data[i] > (int64_t)s.min + s.max);
        return UNET_OK;
    case UNET_MASK_MULTICLASS:
        if (classes < 2)
            return unet_error_set(err, UNET_ERR_INVALID, "multiclass mask %s: the number of classes is not given", name);
        if (s.max >= classes)
            return unet_error_set(err, UNET_ERR_FORMAT, "mask %s has value %d, but with %d classes the values must "
                                  "be 0..%d", name, (int)s.max, classes, classes - 1);
        if ((st = unet_labels_alloc(labels, raw->width, raw->height, err)))
            return st;
        memcpy(labels->data, raw->data, n * sizeof(int32_t));
        return UNET_OK;
    case UNET_MASK_INSTANCE:
        return unet_instances_to_binary(raw, instance_border, labels, instances, err);
    case UNET_MASK_AUTO:
        break;
    }
    return unet_error_set(err, UNET_ERR_INVALID, "mask %s: unknown mask mode", name);
}

/* ---- Loading ---- */

UnetStatus unet_dataset_load_raw(const UnetDataset *ds, int i, UnetImage *image, UnetLabels *mask, UnetError *err)
{
    memset(image, 0, sizeof *image);
    memset(mask, 0, sizeof *mask);
    if (!ds || i < 0 || i >= ds->count)
        return unet_error_set(err, UNET_ERR_INVALID, "pair %d does not exist (the dataset has %d)", i,
                              unet_dataset_count(ds));
    const Entry *e = &ds->items[i];
    UnetStatus st = unet_image_load_page(e->image, e->image_page, image, err);
    if (st)
        return st;
    if ((st = unet_labels_load(e->mask, e->mask_page, mask, err))) {
        unet_image_free(image);
        return st;
    }
    if (mask->width != image->width || mask->height != image->height) {
        st = unet_error_set(err, UNET_ERR_FORMAT, "mask %s is %d x %d but its image %s is %d x %d; they must have "
                            "the same size", e->mask, mask->width, mask->height, e->image, image->width,
                            image->height);
        unet_image_free(image);
        unet_labels_free(mask);
    }
    return st;
}

UnetStatus unet_dataset_load(const UnetDataset *ds, int i, UnetPair *pair, UnetError *err)
{
    memset(pair, 0, sizeof *pair);
    UnetImage raw;
    UnetLabels mask;
    UnetStatus st = unet_dataset_load_raw(ds, i, &raw, &mask, err);
    if (st)
        return st;
    const Entry *e = &ds->items[i];
    st = unet_image_to_input(&raw, &ds->opt.input, &pair->image, err);
    if (st)
        unet_error_prefix(err, "%s: ", e->image);
    else
        st = unet_mask_interpret(&mask, ds->opt.mask_mode, ds->opt.classes, ds->opt.instance_border, e->mask,
                                 &pair->labels, &pair->instances, &pair->mode, err);
    unet_image_free(&raw);
    unet_labels_free(&mask);
    if (st)
        unet_pair_free(pair);
    return st;
}

void unet_pair_free(UnetPair *pair)
{
    if (!pair)
        return;
    unet_image_free(&pair->image);
    unet_labels_free(&pair->labels);
    unet_labels_free(&pair->instances);
    memset(pair, 0, sizeof *pair);
}

/* ---- Split ---- */

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int compare_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

UnetStatus unet_dataset_split(const UnetDataset *ds, double val_fraction, uint64_t seed, UnetSplit *split,
                              UnetError *err)
{
    memset(split, 0, sizeof *split);
    if (!(val_fraction >= 0.0 && val_fraction < 1.0))
        return unet_error_set(err, UNET_ERR_INVALID, "validation fraction %g is out of range; use 0 <= f < 1",
                              val_fraction);
    int n = unet_dataset_count(ds);
    int nv = (int)(val_fraction * n + 0.5);
    if (val_fraction > 0.0 && n >= 2) {
        nv = nv < 1 ? 1 : nv;
        nv = nv > n - 1 ? n - 1 : nv;
    } else if (n < 2) {
        nv = 0;
    }
    int *order = malloc(sizeof(int) * (size_t)(n ? n : 1));
    split->train = malloc(sizeof(int) * (size_t)(n - nv ? n - nv : 1));
    split->val = malloc(sizeof(int) * (size_t)(nv ? nv : 1));
    if (!order || !split->train || !split->val) {
        free(order);
        unet_split_free(split);
        return unet_error_set(err, UNET_ERR_NOMEM, "out of memory splitting the dataset");
    }
    for (int i = 0; i < n; i++)
        order[i] = i;
    uint64_t s = seed;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(splitmix64(&s) % (uint64_t)(i + 1));
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    memcpy(split->val, order, sizeof(int) * (size_t)nv);
    memcpy(split->train, order + nv, sizeof(int) * (size_t)(n - nv));
    split->n_val = nv;
    split->n_train = n - nv;
    qsort(split->val, (size_t)nv, sizeof(int), compare_int);
    qsort(split->train, (size_t)(n - nv), sizeof(int), compare_int);
    free(order);
    return UNET_OK;
}

void unet_split_free(UnetSplit *split)
{
    if (!split)
        return;
    free(split->train);
    free(split->val);
    memset(split, 0, sizeof *split);
}

/* ---- Check ---- */

static void check_pair(const Entry *e, const UnetDatasetOptions *opt, Problems *pr, UnetDatasetReport *r)
{
    UnetError err = { 0 };
    UnetImage img;
    UnetLabels mask;
    bool have_img = unet_image_load_page(e->image, e->image_page, &img, &err) == UNET_OK;
    if (!have_img)
        add_problem(pr, e->image, "%s", err.message);
    bool have_mask = unet_labels_load(e->mask, e->mask_page, &mask, &err) == UNET_OK;
    if (!have_mask)
        add_problem(pr, e->mask, "%s", err.message);
    char where[64] = "";
    if (e->image_page || e->mask_page || strchr(e->name, '['))
        snprintf(where, sizeof where, " (page %d)", e->mask_page + 1);
    if (have_img && have_mask && (img.width != mask.width || img.height != mask.height)) {
        add_problem(pr, e->mask, "mask %s%s is %d x %d but its image %s is %d x %d; they must have the same size",
                    e->mask, where, mask.width, mask.height, e->image, img.width, img.height);
    } else if (have_img && have_mask) {
        r->pairs++;
        MaskStats s;
        mask_stats(&mask, &s);
        UnetMaskMode m = opt->mask_mode == UNET_MASK_AUTO ? resolve_auto(&s, opt->classes) : opt->mask_mode;
        if (m == UNET_MASK_BINARY && s.distinct > 2)
            add_problem(pr, e->mask, "mask %s%s has more than two values (%d..%d) but masks are read as binary; "
                        "instance ids need the instance mode, class ids the multiclass mode", e->mask, where,
                        (int)s.min, (int)s.max);
        else if (m == UNET_MASK_MULTICLASS && s.max >= opt->classes)
            add_problem(pr, e->mask, "mask %s%s has value %d, but with %d classes the values must be 0..%d",
                        e->mask, where, (int)s.max, opt->classes, opt->classes - 1);
        r->binary += m == UNET_MASK_BINARY;
        r->multiclass += m == UNET_MASK_MULTICLASS;
        r->instance += m == UNET_MASK_INSTANCE;
    }
    if (have_img)
        unet_image_free(&img);
    if (have_mask)
        unet_labels_free(&mask);
}

typedef struct Tagged {
    UnetDatasetProblem p;
    int order;
} Tagged;

static int compare_tagged(const void *a, const void *b)
{
    const Tagged *x = a, *y = b;
    int c = strcmp(x->p.file, y->p.file);
    return c ? c : (x->order > y->order) - (x->order < y->order);
}

static UnetStatus finish_check(const UnetDatasetOptions *opt, EntryList *el, Problems *pr, UnetDatasetReport *r,
                               UnetError *err)
{
    for (int i = 0; i < el->count; i++)
        check_pair(&el->items[i], opt, pr, r);
    int nomem = pr->nomem || el->nomem;
    entries_free(el);
    if (nomem) {
        problems_free(pr);
        return unet_error_set(err, UNET_ERR_NOMEM, "out of memory checking the dataset");
    }
    /* Group the problems by file, keeping their order within a file. */
    if (pr->count > 1) {
        int n = pr->count;
        Tagged *t = malloc(sizeof *t * (size_t)n);
        if (t) {
            for (int i = 0; i < n; i++)
                t[i] = (Tagged){ pr->items[i], i };
            qsort(t, (size_t)n, sizeof *t, compare_tagged);
            for (int i = 0; i < n; i++)
                pr->items[i] = t[i].p;
            free(t);
        }
    }
    r->problems = pr->items;
    r->count = pr->count;
    memset(pr, 0, sizeof *pr);
    return UNET_OK;
}

static UnetStatus check_source(const DatasetSource *src, const UnetDatasetOptions *opt,
                               UnetDatasetReport *report, UnetError *err)
{
    memset(report, 0, sizeof *report);
    UnetDatasetOptions def;
    UnetStatus st = options_or_default(&opt, &def, err);
    if (st)
        return st;
    EntryList el = { 0 };
    Problems pr = { 0 };
    scan_source(src, &el, &pr, &report->images, &report->masks);
    /* An empty folder is a problem of its own; scan_stacks reports empty stacks itself. */
    if (src->folder && el.count == 0 && pr.count == 0 && !pr.nomem && !el.nomem)
        add_problem(&pr, src->folder, "dataset %s has no image/mask pairs", src->folder);
    return finish_check(opt, &el, &pr, report, err);
}

UnetStatus unet_dataset_check(const char *path, const UnetDatasetOptions *opt, UnetDatasetReport *report,
                              UnetError *err)
{
    const DatasetSource src = { .folder = path };
    return check_source(&src, opt, report, err);
}

UnetStatus unet_dataset_check_stacks(const char *images_tif, const char *labels_tif, const UnetDatasetOptions *opt,
                                     UnetDatasetReport *report, UnetError *err)
{
    const DatasetSource src = { .images_tif = images_tif, .labels_tif = labels_tif };
    return check_source(&src, opt, report, err);
}

void unet_dataset_report_free(UnetDatasetReport *report)
{
    if (!report)
        return;
    Problems p = { report->problems, report->count, report->count, 0 };
    problems_free(&p);
    memset(report, 0, sizeof *report);
}
