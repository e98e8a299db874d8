/* test-dataset.c - dataset scanning (mixed extensions, pages, stacks), lazy
 * loading, mask modes, instance borders, seeded splits, and the full check
 * with every kind of problem. */
#include <stdlib.h>
#include <string.h>
#include <tiffio.h>

#include "dataset.h"
#include "fileutil.h"
#include "test-common.h"

static char *root;

static char *path_of(const char *dir, const char *rel)
{
    return unet_path_join(dir, rel);
}

static void png8(const char *dir, const char *rel, int w, int h, int ch, const uint8_t *px)
{
    UnetError err = { 0 };
    char *p = path_of(dir, rel);
    CHECK_MSG(unet_png_save(p, px, w, h, ch, 8, &err) == UNET_OK, "%s", err.message);
    free(p);
}

static void png16(const char *dir, const char *rel, int w, int h, const uint16_t *px)
{
    UnetError err = { 0 };
    char *p = path_of(dir, rel);
    CHECK(unet_png_save(p, px, w, h, 1, 16, &err) == UNET_OK);
    free(p);
}

/* Multi-page 8-bit grey TIFF; page p holds base[p] + pixel index. */
static void tiff_pages(const char *dir, const char *rel, int w, int h, int pages, const int *base, int bits)
{
    char *p = path_of(dir, rel);
    TIFF *t = TIFFOpen(p, "w");
    for (int k = 0; k < pages; k++) {
        TIFFSetField(t, TIFFTAG_IMAGEWIDTH, (uint32_t)w);
        TIFFSetField(t, TIFFTAG_IMAGELENGTH, (uint32_t)h);
        TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, bits);
        TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 1);
        TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
        TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, (uint32_t)h);
        for (int y = 0; y < h; y++) {
            uint16_t row16[256];
            uint8_t row8[256];
            for (int x = 0; x < w; x++) {
                int v = base[k] >= 0 ? base[k] + (y * w + x) % 50 : ((x + y) % 2) * 255;
                row16[x] = (uint16_t)v;
                row8[x] = (uint8_t)v;
            }
            TIFFWriteScanline(t, bits == 16 ? (void *)row16 : (void *)row8, (uint32_t)y, 0);
        }
        TIFFWriteDirectory(t);
    }
    TIFFClose(t);
    free(p);
}

static void mkdirs(const char *dir, const char *rel)
{
    UnetError err = { 0 };
    char *p = path_of(dir, rel);
    CHECK(unet_mkdir_p(p, &err) == UNET_OK);
    free(p);
}

static void write_garbage(const char *dir, const char *rel)
{
    char *p = path_of(dir, rel);
    CHECK(unet_write_buffer_atomic(p, "\x89PNG\r\n\x1a\n this is not really a png", 32, NULL) == UNET_OK);
    free(p);
}

/* 8-connected components of the pixels != 0. */
static int components(const int32_t *m, int w, int h)
{
    int *seen = calloc((size_t)w * h, sizeof(int)), *stack = malloc(sizeof(int) * (size_t)w * h);
    int n = 0;
    for (int s = 0; s < w * h; s++) {
        if (!m[s] || seen[s])
            continue;
        n++;
        int top = 0;
        stack[top++] = s;
        seen[s] = 1;
        while (top) {
            int i = stack[--top], x = i % w, y = i / w;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    int xx = x + dx, yy = y + dy;
                    if (xx < 0 || yy < 0 || xx >= w || yy >= h)
                        continue;
                    int j = yy * w + xx;
                    if (m[j] && !seen[j]) {
                        seen[j] = 1;
                        stack[top++] = j;
                    }
                }
        }
    }
    free(seen);
    free(stack);
    return n;
}

static char *make_good(void)
{
    char *dir = path_of(root, "good");
    mkdirs(dir, "images");
    mkdirs(dir, "masks");
    mkdirs(dir, "labels"); /* ignored: masks/ wins */
    uint8_t img[20 * 10], bin[20 * 10], rgb[8 * 8 * 3], c01[8 * 8];
    uint16_t ids[15 * 12], g16[15 * 12];
    for (int i = 0; i < 200; i++) {
        img[i] = (uint8_t)(50 + i % 100);
        bin[i] = (i % 20) < 10 ? 0 : 255;
    }
    png8(dir, "images/a.png", 20, 10, 1, img);
    png8(dir, "masks/a.png", 20, 10, 1, bin);
    png8(dir, "labels/zzz.png", 20, 10, 1, bin);
    for (int i = 0; i < 180; i++) {
        g16[i] = (uint16_t)(4400 + 300 * i);
        ids[i] = (uint16_t)((i % 15) / 5 + 1 + ((i / 15) >= 6 ? 3 : 0)); /* six touching blocks, ids 1..6 */
    }
    char *p = path_of(dir, "images/b.TIF");
    TIFF *t = TIFFOpen(p, "w");
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, 15u);
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, 12u);
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 16);
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
    for (uint32_t y = 0; y < 12; y++)
        TIFFWriteScanline(t, g16 + y * 15, y, 0);
    TIFFClose(t);
    free(p);
    png16(dir, "masks/b.png", 15, 12, ids);
    for (int i = 0; i < 64 * 3; i++)
        rgb[i] = (uint8_t)(i * 3);
    for (int i = 0; i < 64; i++)
        c01[i] = (uint8_t)(i % 8 < 3);
    png8(dir, "images/c.png", 8, 8, 3, rgb);
    char *cm = path_of(dir, "masks/c.Tif");
    t = TIFFOpen(cm, "w");
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, 8u);
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, 8u);
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 8);
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
    for (uint32_t y = 0; y < 8; y++)
        TIFFWriteScanline(t, c01 + y * 8, y, 0);
    TIFFClose(t);
    free(cm);
    int bases[3] = { 10, 100, 200 }, mbases[3] = { -1, -1, -1 };
    tiff_pages(dir, "images/d.tiff", 6, 5, 3, bases, 8);
    tiff_pages(dir, "masks/d.tif", 6, 5, 3, mbases, 8);
    float e[7 * 7];
    for (int i = 0; i < 49; i++)
        e[i] = (float)i * 0.25f - 2.0f;
    int shape[2] = { 7, 7 };
    char *ep = path_of(dir, "images/e.npy");
    CHECK(unet_npy_save(ep, e, 2, shape, NULL) == UNET_OK);
    free(ep);
    uint8_t em[49];
    for (int i = 0; i < 49; i++)
        em[i] = i < 20 ? 0 : 255;
    png8(dir, "masks/e.png", 7, 7, 1, em);
    png8(dir, "images/.hidden.png", 7, 7, 1, em); /* ignored */
    return dir;
}

static void test_scan_and_load(const char *dir)
{
    UnetError err = { 0 };
    UnetDataset *ds;
    CHECK_MSG(unet_dataset_open(dir, NULL, &ds, &err) == UNET_OK, "%s", err.message);
    if (!ds)
        return;
    const char *want[] = { "a", "b", "c", "d[1]", "d[2]", "d[3]", "e" };
    CHECK(unet_dataset_count(ds) == 7);
    for (int i = 0; i < 7 && i < unet_dataset_count(ds); i++)
        CHECK_MSG(!strcmp(unet_dataset_name(ds, i), want[i]), "pair %d is %s", i, unet_dataset_name(ds, i));
    int page = -1;
    CHECK(strstr(unet_dataset_image_path(ds, 4, &page), "images/d.tiff") && page == 1);
    CHECK(strstr(unet_dataset_mask_path(ds, 2, &page), "masks/c.Tif") && page == 0);
    CHECK(unet_dataset_name(ds, 7) == NULL);

    UnetPair p;
    CHECK(unet_dataset_load(ds, 0, &p, &err) == UNET_OK);
    CHECK(p.image.channels == 1 && p.image.width == 20 && p.mode == UNET_MASK_BINARY && p.instances.data == NULL);
    CHECK(p.image.data[0] == 0.0f && p.image.data[99] == 1.0f); /* 50..149 -> 0..1 */
    CHECK(p.labels.data[0] == 0 && p.labels.data[15] == 1);
    unet_pair_free(&p);

    CHECK(unet_dataset_load(ds, 1, &p, &err) == UNET_OK);
    CHECK(p.mode == UNET_MASK_INSTANCE && p.instances.data != NULL);
    CHECK(components(p.labels.data, 15, 12) == 6); /* touching blocks stay apart */
    CHECK(p.labels.data[4] == 0 && p.labels.data[5] == 1 && p.instances.data[5] == 2);
    float lo = 1, hi = 0;
    for (int i = 0; i < 180; i++) {
        lo = p.image.data[i] < lo ? p.image.data[i] : lo;
        hi = p.image.data[i] > hi ? p.image.data[i] : hi;
    }
    CHECK(lo == 0.0f && hi == 1.0f);
    unet_pair_free(&p);

    CHECK(unet_dataset_load(ds, 2, &p, &err) == UNET_OK);
    CHECK(p.image.channels == 3 && p.labels.data[0] == 1 && p.labels.data[3] == 0 && p.mode == UNET_MASK_BINARY);
    unet_pair_free(&p);

    UnetImage raw;
    UnetLabels mask;
    CHECK(unet_dataset_load_raw(ds, 4, &raw, &mask, &err) == UNET_OK);
    CHECK(raw.data[0] == 100.0f && raw.page == 1 && mask.data[1] == 255);
    unet_image_free(&raw);
    unet_labels_free(&mask);

    CHECK(unet_dataset_load(ds, 6, &p, &err) == UNET_OK);
    CHECK(p.image.width == 7 && p.image.data[48] == 1.0f && p.labels.data[19] == 0 && p.labels.data[20] == 1);
    unet_pair_free(&p);
    CHECK(unet_dataset_load(ds, 99, &p, &err) == UNET_ERR_INVALID);

    /* Scanning is deterministic; splits are seeded. */
    UnetDataset *again;
    CHECK(unet_dataset_open(dir, NULL, &again, &err) == UNET_OK);
    for (int i = 0; i < 7; i++)
        CHECK(!strcmp(unet_dataset_name(ds, i), unet_dataset_name(again, i)));
    UnetSplit s1, s2;
    CHECK(unet_dataset_split(ds, 0.3, 5, &s1, &err) == UNET_OK);
    CHECK(unet_dataset_split(again, 0.3, 5, &s2, &err) == UNET_OK);
    CHECK(s1.n_val == 2 && s1.n_train == 5);
    CHECK(s1.n_val == s2.n_val && !memcmp(s1.val, s2.val, sizeof(int) * 2) && !memcmp(s1.train, s2.train, sizeof(int) * 5));
    int seen[7] = { 0 };
    for (int i = 0; i < s1.n_train; i++)
        seen[s1.train[i]]++;
    for (int i = 0; i < s1.n_val; i++)
        seen[s1.val[i]]++;
    for (int i = 0; i < 7; i++)
        CHECK(seen[i] == 1);
    CHECK(s1.val[0] < s1.val[1]);
    int differ = 0;
    for (uint64_t seed = 6; seed < 30; seed++) {
        UnetSplit s3;
        CHECK(unet_dataset_split(ds, 0.3, seed, &s3, &err) == UNET_OK);
        differ += memcmp(s3.val, s1.val, sizeof(int) * 2) != 0;
        unet_split_free(&s3);
    }
    CHECK(differ > 10);
    unet_split_free(&s1);
    unet_split_free(&s2);
    CHECK(unet_dataset_split(ds, 0.0, 1, &s1, &err) == UNET_OK && s1.n_val == 0 && s1.n_train == 7);
    unet_split_free(&s1);
    CHECK(unet_dataset_split(ds, 0.01, 1, &s1, &err) == UNET_OK && s1.n_val == 1);
    unet_split_free(&s1);
    CHECK(unet_dataset_split(ds, 0.99, 1, &s1, &err) == UNET_OK && s1.n_val == 6 && s1.n_train == 1);
    unet_split_free(&s1);
    CHECK(unet_dataset_split(ds, 1.0, 1, &s1, &err) == UNET_ERR_INVALID);
    unet_dataset_free(again);
    unet_dataset_free(ds);

    /* The full check of a good folder finds nothing. */
    UnetDatasetReport r;
    CHECK(unet_dataset_check(dir, NULL, &r, &err) == UNET_OK);
    CHECK_MSG(r.count == 0, "%d problems, first: %s", r.count, r.count ? r.problems[0].message : "");
    CHECK(r.pairs == 7 && r.images == 5 && r.masks == 5 && r.binary == 6 && r.instance == 1);
    unet_dataset_report_free(&r);

    /* Multiclass with 2 classes on the same folder: b's ids exceed it. */
    UnetDatasetOptions opt;
    unet_dataset_options_default(&opt);
    opt.mask_mode = UNET_MASK_MULTICLASS;
    CHECK(unet_dataset_open(dir, &opt, &ds, &err) == UNET_ERR_INVALID && strstr(err.message, "class"));
    opt.classes = 2;
    CHECK(unet_dataset_check(dir, &opt, &r, &err) == UNET_OK);
    CHECK_MSG(r.count == 6, "%d problems", r.count); /* a, b, d[1..3] and e hold values >= 2; c is 0/1 */
    unet_dataset_report_free(&r);
}

static void test_instances(void)
{
    UnetError err = { 0 };
    int w = 12, h = 8;
    UnetLabels ids, bin, sep;
    CHECK(unet_labels_alloc(&ids, w, h, &err) == UNET_OK);
    for (int y = 0; y < 6; y++)
        for (int x = 0; x < 12; x++)
            ids.data[y * w + x] = x < 6 ? 1 : 2; /* two touching objects */
    ids.data[7 * w + 10] = 3;                     /* a lone pixel object, not touching */
    CHECK(unet_instances_to_binary(&ids, 1, &bin, &sep, &err) == UNET_OK);
    int cut = 0;
    for (int y = 0; y < 6; y++) {
        CHECK(bin.data[y * w + 5] == 0 && bin.data[y * w + 4] == 1 && bin.data[y * w + 6] == 1);
        cut += bin.data[y * w + 5] == 0;
    }
    CHECK(cut == 6 && bin.data[7 * w + 10] == 1 && sep.data[7 * w + 10] == 3 && sep.data[5] == 0 && sep.data[6] == 2);
    CHECK(components(bin.data, w, h) == 3);
    unet_labels_free(&bin);
    unet_labels_free(&sep);
    CHECK(unet_instances_to_binary(&ids, 0, &bin, NULL, &err) == UNET_OK);
    CHECK(components(bin.data, w, h) == 2); /* without the border the two objects merge */
    unet_labels_free(&bin);
    /* Touching only at a corner still gets cut. */
    memset(ids.data, 0, sizeof(int32_t) * (size_t)w * h);
    for (int y = 0; y < 3; y++)
        for (int x = 0; x < 3; x++) {
            ids.data[y * w + x] = 7;
            ids.data[(y + 3) * w + x + 3] = 4;
        }
    CHECK(unet_instances_to_binary(&ids, 1, &bin, NULL, &err) == UNET_OK);
    CHECK(components(bin.data, w, h) == 2 && bin.data[3 * w + 3] == 0 && bin.data[2 * w + 2] == 1);
    unet_labels_free(&bin);

    /* Auto mode decisions. */
    UnetMaskMode m;
    UnetLabels lab;
    int32_t *d = ids.data;
    size_t n = (size_t)w * h;
    for (size_t i = 0; i < n; i++)
        d[i] = i % 3 ? 3 : 7;
    CHECK(unet_mask_interpret(&ids, UNET_MASK_AUTO, 0, 1, "m", &lab, NULL, &m, &err) == UNET_OK);
    CHECK(m == UNET_MASK_BINARY && lab.data[0] == 1 && lab.data[1] == 0);
    unet_labels_free(&lab);
    for (size_t i = 0; i < n; i++)
        d[i] = 0;
    CHECK(unet_mask_interpret(&ids, UNET_MASK_AUTO, 0, 1, "m", &lab, NULL, &m, &err) == UNET_OK);
    CHECK(m == UNET_MASK_BINARY && lab.data[0] == 0);
    unet_labels_free(&lab);
    for (size_t i = 0; i < n; i++)
        d[i] = 255;
    CHECK(unet_mask_interpret(&ids, UNET_MASK_AUTO, 0, 1, "m", &lab, NULL, &m, &err) == UNET_OK && lab.data[0] == 1);
    unet_labels_free(&lab);
    for (size_t i = 0; i < n; i++)
        d[i] = (int32_t)(i % 3);
    CHECK(unet_mask_interpret(&ids, UNET_MASK_AUTO, 3, 1, "m", &lab, NULL, &m, &err) == UNET_OK);
    CHECK(m == UNET_MASK_MULTICLASS && lab.data[2] == 2);
    unet_labels_free(&lab);
    CHECK(unet_mask_interpret(&ids, UNET_MASK_AUTO, 0, 1, "m", &lab, NULL, &m, &err) == UNET_OK);
    CHECK(m == UNET_MASK_INSTANCE);
    unet_labels_free(&lab);
    CHECK(unet_mask_interpret(&ids, UNET_MASK_MULTICLASS, 2, 1, "masks/x.png", &lab, NULL, &m, &err) == UNET_ERR_FORMAT);
    CHECK(strstr(err.message, "masks/x.png") && strstr(err.message, "0..1"));
    /* Binary with many values thresholds at the midpoint of the range. */
    for (size_t i = 0; i < n; i++)
        d[i] = (int32_t)i; /* 0..95: threshold 47.5 */
    CHECK(unet_mask_interpret(&ids, UNET_MASK_BINARY, 0, 1, "m", &lab, NULL, &m, &err) == UNET_OK);
    CHECK(lab.data[47] == 0 && lab.data[48] == 1);
    unet_labels_free(&lab);
    d[3] = -4;
    CHECK(unet_mask_interpret(&ids, UNET_MASK_AUTO, 0, 1, "neg.tif", &lab, NULL, &m, &err) == UNET_ERR_FORMAT);
    unet_labels_free(&ids);

    UnetMaskMode parsed;
    CHECK(unet_mask_mode_parse("Instance", &parsed, &err) == UNET_OK && parsed == UNET_MASK_INSTANCE);
    CHECK(unet_mask_mode_parse("semantic", &parsed, &err) == UNET_ERR_INVALID);
}

static int find_problem(const UnetDatasetReport *r, const char *file_end, const char *fragment)
{
    for (int i = 0; i < r->count; i++) {
        const char *f = r->problems[i].file;
        size_t lf = strlen(f), le = strlen(file_end);
        if (lf >= le && !strcmp(f + lf - le, file_end) && strstr(r->problems[i].message, fragment))
            return 1;
    }
    return 0;
}

static void test_problems(void)
{
    UnetError err = { 0 };
    char *dir = path_of(root, "bad");
    mkdirs(dir, "images");
    mkdirs(dir, "masks");
    uint8_t a[16 * 16], m[16 * 16], ids[16 * 16];
    for (int i = 0; i < 256; i++) {
        a[i] = (uint8_t)i;
        m[i] = i < 128 ? 0 : 255;
        ids[i] = (uint8_t)(i / 32);
    }
    png8(dir, "images/p.png", 16, 16, 1, a);
    png8(dir, "masks/p.png", 16, 16, 1, m);
    png8(dir, "images/q.png", 16, 16, 1, a); /* no mask */
    png8(dir, "images/r.png", 16, 16, 1, a);
    png8(dir, "masks/r.png", 16, 12, 1, m); /* other size */
    write_garbage(dir, "images/s.png");     /* damaged image */
    png8(dir, "masks/s.png", 16, 16, 1, m);
    png8(dir, "images/t.png", 16, 16, 1, a);
    png8(dir, "masks/t.png", 16, 16, 1, ids); /* instance ids in binary mode */
    png8(dir, "images/u.png", 16, 16, 1, a);
    char *jpg = path_of(dir, "masks/u.jpg");
    CHECK(unet_write_buffer_atomic(jpg, "\xff\xd8\xff", 3, NULL) == UNET_OK);
    free(jpg);
    png8(dir, "images/v.png", 16, 16, 1, a);
    png8(dir, "images/v.tif", 16, 16, 1, a); /* same stem (a PNG named .tif reads fine) */
    png8(dir, "masks/v.png", 16, 16, 1, m);
    png8(dir, "masks/w.png", 16, 16, 1, m); /* no image */
    char *empty = path_of(dir, "masks/x.png");
    CHECK(unet_write_buffer_atomic(empty, "", 0, NULL) == UNET_OK);
    free(empty);
    png8(dir, "images/x.png", 16, 16, 1, a);

    UnetDatasetOptions opt;
    unet_dataset_options_default(&opt);
    opt.mask_mode = UNET_MASK_BINARY;
    UnetDatasetReport r;
    CHECK(unet_dataset_check(dir, &opt, &r, &err) == UNET_OK);
    for (int i = 0; i < r.count; i++)
        printf("  problem: [%s] %s\n", r.problems[i].file, r.problems[i].message);
    CHECK(find_problem(&r, "images/q.png", "has no mask"));
    CHECK(find_problem(&r, "masks/r.png", "16 x 12"));
    CHECK(find_problem(&r, "images/s.png", "cannot read PNG"));
    CHECK(find_problem(&r, "masks/t.png", "more than two values"));
    CHECK(find_problem(&r, "images/u.png", "masks/u.jpg exists"));
    CHECK(find_problem(&r, "images/v.tif", "same name"));
    CHECK(find_problem(&r, "masks/w.png", "has no image"));
    CHECK(find_problem(&r, "masks/x.png", "empty"));
    CHECK_MSG(r.count == 8, "%d problems", r.count);
    CHECK(r.pairs == 3); /* p, t, v */
    for (int i = 0; i < r.count; i++) {
        CHECK(strstr(r.problems[i].message, r.problems[i].file) != NULL); /* each names its file */
        if (i)
            CHECK(strcmp(r.problems[i - 1].file, r.problems[i].file) <= 0);
    }
    unet_dataset_report_free(&r);

    UnetDataset *ds;
    CHECK(unet_dataset_open(dir, &opt, &ds, &err) == UNET_ERR_FORMAT);
    CHECK(strstr(err.message, "problems") && strstr(err.message, "dataset check") && ds == NULL);

    /* Loading a damaged pair lazily names the file too. */
    char *dir2 = path_of(root, "lazy");
    mkdirs(dir2, "images");
    mkdirs(dir2, "labels");
    png8(dir2, "images/k.png", 16, 16, 1, a);
    png8(dir2, "labels/k.png", 16, 12, 1, m);
    CHECK(unet_dataset_open(dir2, NULL, &ds, &err) == UNET_OK);
    UnetPair p;
    CHECK(unet_dataset_load(ds, 0, &p, &err) == UNET_ERR_FORMAT && strstr(err.message, "labels/k.png"));
    unet_dataset_free(ds);
    free(dir2);

    /* Empty, missing and half-made folders. */
    char *e1 = path_of(root, "empty");
    mkdirs(e1, ".");
    CHECK(unet_dataset_check(e1, NULL, &r, &err) == UNET_OK);
    CHECK(r.count == 1 && strstr(r.problems[0].message, "no images/ folder"));
    unet_dataset_report_free(&r);
    CHECK(unet_dataset_open(e1, NULL, &ds, &err) == UNET_ERR_FORMAT && strstr(err.message, e1));
    mkdirs(e1, "images");
    mkdirs(e1, "masks");
    CHECK(unet_dataset_check(e1, NULL, &r, &err) == UNET_OK);
    CHECK(r.count == 2 && find_problem(&r, "images", "holds no images") && find_problem(&r, "masks", "holds no masks"));
    unet_dataset_report_free(&r);
    char *e2 = path_of(root, "half");
    mkdirs(e2, "images");
    png8(e2, "images/o.png", 16, 16, 1, a);
    CHECK(unet_dataset_check(e2, NULL, &r, &err) == UNET_OK);
    CHECK(r.count == 1 && strstr(r.problems[0].message, "no masks/"));
    unet_dataset_report_free(&r);
    char *e3 = path_of(root, "nowhere");
    CHECK(unet_dataset_check(e3, NULL, &r, &err) == UNET_OK);
    CHECK(r.count == 1 && strstr(r.problems[0].message, "does not exist") && strstr(r.problems[0].message, e3));
    unet_dataset_report_free(&r);
    opt.classes = 1;
    CHECK(unet_dataset_check(e3, &opt, &r, &err) == UNET_ERR_INVALID);
    free(e1);
    free(e2);
    free(e3);
    free(dir);
}

static void test_stacks(void)
{
    UnetError err = { 0 };
    char *dir = path_of(root, "isbi");
    mkdirs(dir, ".");
    int bases[3] = { 0, 50, 100 }, labels[3] = { -1, -1, -1 };
    tiff_pages(dir, "train-volume.tif", 16, 16, 3, bases, 8);
    tiff_pages(dir, "train-labels.tif", 16, 16, 3, labels, 8);
    tiff_pages(dir, "test-volume.tif", 16, 16, 2, bases, 8);
    UnetDataset *ds;
    CHECK_MSG(unet_dataset_open(dir, NULL, &ds, &err) == UNET_OK, "%s", err.message);
    if (ds) {
        CHECK(unet_dataset_count(ds) == 3 && !strcmp(unet_dataset_name(ds, 2), "train-volume[3]"));
        UnetPair p;
        CHECK(unet_dataset_load(ds, 1, &p, &err) == UNET_OK);
        CHECK(p.labels.data[0] == 0 && p.labels.data[1] == 1 && p.image.data[0] == 0.0f);
        unet_pair_free(&p);
        unet_dataset_free(ds);
    }
    char *vol = path_of(dir, "train-volume.tif"), *lab = path_of(dir, "train-labels.tif");
    char *test = path_of(dir, "test-volume.tif");
    CHECK(unet_dataset_open_stacks(vol, lab, NULL, &ds, &err) == UNET_OK && unet_dataset_count(ds) == 3);
    unet_dataset_free(ds);
    UnetDatasetReport r;
    CHECK(unet_dataset_check_stacks(vol, lab, NULL, &r, &err) == UNET_OK && r.count == 0 && r.pairs == 3);
    unet_dataset_report_free(&r);
    CHECK(unet_dataset_check_stacks(test, lab, NULL, &r, &err) == UNET_OK);
    CHECK(r.count == 1 && strstr(r.problems[0].message, "3 pages") && strstr(r.problems[0].message, test));
    unet_dataset_report_free(&r);
    free(vol);
    free(lab);
    free(test);
    free(dir);
}

int main(void)
{
    root = test_make_temp_dir("dataset");
    if (!root) {
        fprintf(stderr, "cannot make a temporary folder\n");
        return 1;
    }
    char *good = make_good();
    test_scan_and_load(good);
    free(good);
    test_instances();
    test_problems();
    test_stacks();
    if (test_failures == 0) {
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", root);
    }
    free(root);
    return test_finish("dataset");
}
