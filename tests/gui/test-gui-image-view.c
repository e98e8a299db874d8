/* test-gui-image-view.c - UnetImageView: grey images, masks, overlays and
 * colour-mapped maps with their colour bar reach the screen; linked views
 * zoom and pan together; widget and image coordinates agree; pixel values
 * are described. */
#include <math.h>
#include <string.h>

#include "gui-test-util.h"
#include "unet-colormap.h"
#include "unet-image-view.h"

#define IW 64
#define IH 48

static guint8 *shot(GtkWidget *w, const char *name, int *pw, int *ph)
{
    gui_test_wait_frames(w, 2, 5000);
    GdkTexture *tex = gui_test_render(w);
    if (!tex)
        return NULL;
    char *path = gui_test_save(tex, name);
    g_free(path);
    guint8 *px = gui_test_pixels(tex, pw, ph);
    g_object_unref(tex);
    return px;
}

static int hovered_x = -2, hovered_y = -2;

static void on_hover(UnetImageView *v, int x, int y, gpointer data)
{
    hovered_x = x;
    hovered_y = y;
}

int main(void)
{
    gui_test_init();
    GtkWidget *window = gtk_window_new();
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 0);
    GtkWidget *a = unet_image_view_new(), *b = unet_image_view_new();
    gtk_widget_set_size_request(a, 320, 240);
    gtk_widget_set_size_request(b, 320, 240);
    gtk_box_append(GTK_BOX(box), a);
    gtk_box_append(GTK_BOX(box), b);
    gtk_window_set_child(GTK_WINDOW(window), box);
    gtk_window_present(GTK_WINDOW(window));
    UnetImageView *va = UNET_IMAGE_VIEW(a), *vb = UNET_IMAGE_VIEW(b);
    g_signal_connect(va, "pixel-hovered", G_CALLBACK(on_hover), NULL);

    /* Horizontal grey ramp 0..63 on a, a class mask on b, linked. */
    float *ramp = g_new(float, IW * IH);
    gint32 *mask = g_new(gint32, IW * IH);
    for (int y = 0; y < IH; y++) {
        for (int x = 0; x < IW; x++) {
            ramp[y * IW + x] = (float)x;
            mask[y * IW + x] = x < IW / 2 ? 1 : 0;
        }
    }
    unet_image_view_set_image(va, ramp, IW, IH, 1, 0, 0);
    unet_image_view_set_labels(vb, mask, IW, IH);
    unet_image_view_set_transform(vb, unet_image_view_get_transform(va));
    int w, h;
    CHECK(unet_image_view_get_image_size(va, &w, &h) && w == IW && h == IH);

    int pw, ph;
    guint8 *px = shot(a, "image-view-ramp", &pw, &ph);
    CHECK(px != NULL);
    if (px) {
        /* Fit: 320x240 shows 64x48 at scale 5; left is dark, right bright. */
        const guint8 *l = gui_test_px(px, pw, 10, ph / 2), *r = gui_test_px(px, pw, pw - 10, ph / 2);
        CHECK_MSG(l[0] < 30 && r[0] > 220, "ramp ends %d and %d", l[0], r[0]);
        CHECK(gui_test_distinct_colors(px, pw, 0, ph / 2, pw, ph / 2 + 1) > 40);
        g_free(px);
    }
    double ix, iy;
    double ww = gtk_widget_get_width(a), wh = gtk_widget_get_height(a);
    CHECK(unet_image_view_widget_to_image(va, ww / 2, wh / 2, &ix, &iy));
    CHECK_MSG(fabs(ix - IW / 2.0) < 1e-9 && fabs(iy - IH / 2.0) < 1e-9, "centre maps to %g, %g", ix, iy);
    px = shot(b, "image-view-mask", &pw, &ph);
    if (px) {
        const guint8 *l = gui_test_px(px, pw, 40, ph / 2), *r = gui_test_px(px, pw, pw - 40, ph / 2);
        CHECK_MSG(l[0] == 255 && r[0] == 0, "binary mask drawn %d / %d", l[0], r[0]);
        g_free(px);
    }

    /* Zoom about a point of a: b follows; the point stays put. */
    double px0, py0, ax, ay, bx, by;
    CHECK(unet_image_view_widget_to_image(va, 80, 60, &px0, &py0));
    unet_image_view_zoom_at(va, 4, 80, 60);
    CHECK(unet_image_view_widget_to_image(va, 80, 60, &ax, &ay));
    CHECK_MSG(fabs(ax - px0) < 1e-6 && fabs(ay - py0) < 1e-6, "zoom moved the point from %g, %g to %g, %g", px0,
              py0, ax, ay);
    CHECK(unet_image_view_widget_to_image(vb, 10, 10, &bx, &by));
    CHECK(unet_image_view_widget_to_image(va, 10, 10, &ax, &ay));
    CHECK(fabs(ax - bx) < 1e-9 && fabs(ay - by) < 1e-9);
    CHECK(!unet_view_transform_get_fit(unet_image_view_get_transform(vb)));
    /* Pan: the view centre moves, in both. */
    double s, cx, cy;
    unet_view_transform_get_view(unet_image_view_get_transform(va), &s, &cx, &cy);
    CHECK(fabs(s - 20) < 1e-9);
    unet_view_transform_set_view(unet_image_view_get_transform(va), s, cx + 5, cy);
    CHECK(unet_image_view_widget_to_image(vb, ww / 2, wh / 2, &bx, &by));
    CHECK(fabs(bx - (cx + 5)) < 1e-9);
    /* Magnified pixels stay crisp: one image pixel = 20 equal screen pixels. */
    unet_view_transform_set_hover(unet_image_view_get_transform(va), -1, -1);
    px = shot(a, "image-view-zoomed", &pw, &ph);
    if (px) {
        /* The screen column where the image pixel containing the centre starts. */
        int x0 = (int)ceil((floor(cx + 5) - (cx + 5)) * 20 + ww / 2) + 1;
        CHECK(gui_test_distinct_colors(px, pw, x0, (int)wh / 2 - 8, x0 + 16, (int)wh / 2 + 8) == 1);
        g_free(px);
    }
    /* Zoom is clamped. */
    unet_image_view_zoom(va, 1e6);
    unet_view_transform_get_view(unet_image_view_get_transform(va), &s, &cx, &cy);
    CHECK(s == UNET_VIEW_MAX_SCALE);
    unet_image_view_zoom_fit(vb);
    CHECK(unet_view_transform_get_fit(unet_image_view_get_transform(va)));

    /* The hovered pixel is marked in linked views. */
    unet_view_transform_set_hover(unet_image_view_get_transform(va), 10, 10);
    px = shot(b, "image-view-hover", &pw, &ph);
    if (px) {
        int yellow = 0;
        for (int i = 0; i < pw * ph; i++)
            yellow += px[i * 4] > 200 && px[i * 4 + 1] > 180 && px[i * 4 + 2] < 60;
        CHECK_MSG(yellow > 5, "hover mark: %d yellow pixels", yellow);
        g_free(px);
    }
    unet_view_transform_set_hover(unet_image_view_get_transform(va), -1, -1);
    CHECK(hovered_x == -2);

    /* Values under the pointer. */
    char *d = unet_image_view_describe_pixel(va, 7, 3);
    CHECK(d && !strcmp(d, "7"));
    g_free(d);
    d = unet_image_view_describe_pixel(vb, 7, 3);
    CHECK(d && !strcmp(d, "class 1"));
    g_free(d);
    CHECK(unet_image_view_describe_pixel(va, IW, 0) == NULL);

    /* Overlay at full opacity: label colour over the left half. */
    float *black = g_new0(float, IW * IH);
    unet_image_view_set_image(va, black, IW, IH, 1, 0, 1);
    unet_image_view_set_overlay(va, mask, IW, IH);
    GdkRGBA green = { 0, 1, 0, 1 };
    unet_image_view_set_overlay_color(va, &green);
    unet_image_view_set_overlay_opacity(va, 1);
    px = shot(a, "image-view-overlay", &pw, &ph);
    if (px) {
        const guint8 *l = gui_test_px(px, pw, 40, ph / 2), *r = gui_test_px(px, pw, pw - 40, ph / 2);
        CHECK_MSG(l[1] == 255 && l[0] == 0 && r[1] == 0, "overlay %d,%d,%d / %d", l[0], l[1], l[2], r[1]);
        g_free(px);
    }
    d = unet_image_view_describe_pixel(va, 3, 3);
    CHECK(d && strstr(d, "mask 1"));
    g_free(d);

    /* Colour-mapped map with its colour bar: both ends of viridis show. */
    unet_image_view_set_overlay(va, NULL, 0, 0);
    gtk_widget_set_size_request(a, 400, 240);
    unet_image_view_set_map(va, ramp, IW, IH, 0, IW - 1, "w");
    unet_image_view_set_colormap(va, UNET_COLORMAP_VIRIDIS);
    px = shot(a, "image-view-map", &pw, &ph);
    if (px) {
        guint8 lo[3], hi[3];
        unet_colormap_lookup(UNET_COLORMAP_VIRIDIS, 0, lo);
        unet_colormap_lookup(UNET_COLORMAP_VIRIDIS, 1, hi);
        int n_lo = 0, n_hi = 0, bar_lo = 0;
        for (int y = 0; y < ph; y++) {
            for (int x = 0; x < pw; x++) {
                const guint8 *p = gui_test_px(px, pw, x, y);
                gboolean is_lo = abs(p[0] - lo[0]) < 6 && abs(p[1] - lo[1]) < 6 && abs(p[2] - lo[2]) < 6;
                gboolean is_hi = abs(p[0] - hi[0]) < 6 && abs(p[1] - hi[1]) < 6 && abs(p[2] - hi[2]) < 6;
                n_lo += is_lo;
                n_hi += is_hi;
                bar_lo += is_lo && x > pw - 76;
            }
        }
        CHECK_MSG(n_lo > 50 && n_hi > 50, "viridis ends: %d low, %d high pixels", n_lo, n_hi);
        CHECK_MSG(bar_lo > 5, "colour bar low end: %d pixels", bar_lo);
        g_free(px);
    }
    guint8 c0[3], c1[3];
    unet_colormap_lookup(UNET_COLORMAP_MAGMA, 0, c0);
    unet_colormap_lookup(UNET_COLORMAP_MAGMA, 1, c1);
    CHECK(c0[0] == 0 && c0[2] == 4 && c1[0] == 252 && c1[2] == 191);
    UnetColormap m;
    CHECK(unet_colormap_parse("magma", &m) && m == UNET_COLORMAP_MAGMA && !unet_colormap_parse("jet", &m));

    unet_image_view_clear(va);
    CHECK(!unet_image_view_get_image_size(va, &w, &h));
    gtk_window_destroy(GTK_WINDOW(window));
    g_free(ramp);
    g_free(mask);
    g_free(black);
    return test_finish("gui-image-view");
}
