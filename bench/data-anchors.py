#!/usr/bin/python3
"""data-anchors.py - the anchors bench-data runs beside our weight maps and augmentation.

* the notebook's weight map: cv2.connectedComponents, then one exact
  cv2.distanceTransform per cell, sorted per pixel for d1 and d2;
* the blog's elastic deformation: scipy.ndimage gaussian_filter on a random
  field, then map_coordinates (order 1 for the image, 0 for the mask);
* OpenCV: the same field blurred by cv2.GaussianBlur, then cv2.remap (linear
  for the image, nearest for the mask, BORDER_REFLECT_101).

Times are thread CPU time (like bench-data), min and median over --repeat runs,
with OpenCV held to one thread.
"""
import argparse
import time

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter, map_coordinates


def timed(fn, repeat):
    times = []
    out = None
    for _ in range(repeat):
        t0 = time.thread_time()
        out = fn()
        times.append((time.thread_time() - t0) * 1e3)
    times.sort()
    return times[0], times[len(times) // 2], out


def report(what, t):
    print("  %-46s %9.3f ms   (median %.3f)" % (what, t[0], t[1]), flush=True)


def notebook_weight_map(mask, w0=10.0, sigma=5.0):
    """U-Net weight map as the notebook computes it (one distance transform per cell)."""
    fg = (mask > 0).astype(np.uint8)
    n, labels = cv2.connectedComponents(fg, connectivity=8)
    # class balance: max frequency / frequency
    counts = np.bincount(fg.ravel(), minlength=2).astype(np.float64)
    wc = np.where(counts > 0, counts.max() / np.maximum(counts, 1), 0.0)
    w = wc[fg].astype(np.float64)
    if n - 1 >= 2:
        dist = np.zeros(mask.shape + (n - 1,), np.float32)
        for i in range(1, n):
            dist[:, :, i - 1] = cv2.distanceTransform((labels != i).astype(np.uint8), cv2.DIST_L2,
                                                      cv2.DIST_MASK_PRECISE)
        dist = np.sort(dist, axis=2)
        d1 = dist[:, :, 0].astype(np.float64)
        d2 = dist[:, :, 1].astype(np.float64)
        w += w0 * np.exp(-((d1 + d2) ** 2) / (2 * sigma ** 2)) * (labels == 0)
    return w.astype(np.float32)


def blog_elastic(image, mask, alpha, sigma, rng):
    shape = image.shape
    dx = gaussian_filter(rng.random(shape) * 2 - 1, sigma, mode="constant", cval=0) * alpha
    dy = gaussian_filter(rng.random(shape) * 2 - 1, sigma, mode="constant", cval=0) * alpha
    x, y = np.meshgrid(np.arange(shape[1]), np.arange(shape[0]))
    idx = np.reshape(y + dy, (-1, 1)), np.reshape(x + dx, (-1, 1))
    out = map_coordinates(image, idx, order=1, mode="reflect").reshape(shape)
    out_mask = map_coordinates(mask, idx, order=0, mode="reflect").reshape(shape)
    return out, out_mask


def opencv_elastic(image, mask, alpha, sigma, rng):
    h, w = image.shape
    dx = cv2.GaussianBlur((rng.random((h, w)) * 2 - 1).astype(np.float32), (0, 0), sigma) * alpha
    dy = cv2.GaussianBlur((rng.random((h, w)) * 2 - 1).astype(np.float32), (0, 0), sigma) * alpha
    x, y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    mx, my = x + dx, y + dy
    out = cv2.remap(image, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    out_mask = cv2.remap(mask, mx, my, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REFLECT_101)
    return out, out_mask


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--what", default="all", choices=["all", "weightmap", "augment"])
    ap.add_argument("--label")
    ap.add_argument("--tile")
    ap.add_argument("--tile-mask")
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--save-weight")
    a = ap.parse_args()
    cv2.setNumThreads(1)

    if a.what in ("all", "weightmap") and a.label:
        mask = cv2.imread(a.label, cv2.IMREAD_GRAYSCALE)
        n, _ = cv2.connectedComponents((mask > 0).astype(np.uint8), connectivity=8)
        t = timed(lambda: notebook_weight_map(mask), max(1, min(a.repeat, 3)))
        report("notebook: weight map (%d cells, cv2 per cell)" % (n - 1), t)
        if a.save_weight:
            np.save(a.save_weight, t[2])
        fg = (mask == 0).astype(np.uint8)
        report("cv2.distanceTransform (exact) of the label",
               timed(lambda: cv2.distanceTransform(fg, cv2.DIST_L2, cv2.DIST_MASK_PRECISE), a.repeat))
        fg1 = (mask > 0).astype(np.uint8)
        report("cv2.connectedComponents (8)",
               timed(lambda: cv2.connectedComponents(fg1, connectivity=8), a.repeat))

    if a.what in ("all", "augment") and a.tile:
        image = cv2.imread(a.tile, cv2.IMREAD_GRAYSCALE).astype(np.float32)
        tmask = (cv2.imread(a.tile_mask, cv2.IMREAD_GRAYSCALE) > 0).astype(np.uint8)
        rng = np.random.default_rng(1)
        report("blog: elastic (scipy gaussian_filter + map_coordinates)",
               timed(lambda: blog_elastic(image, tmask, 35.0, 5.0, rng), a.repeat))
        report("OpenCV: elastic (GaussianBlur field + remap)",
               timed(lambda: opencv_elastic(image, tmask, 35.0, 5.0, rng), a.repeat))
        h, w = image.shape
        m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), 30.0, 1.05)
        report("OpenCV: shift-scale-rotate (warpAffine, image + mask)",
               timed(lambda: (cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR,
                                             borderMode=cv2.BORDER_REFLECT_101),
                              cv2.warpAffine(tmask, m, (w, h), flags=cv2.INTER_NEAREST,
                                             borderMode=cv2.BORDER_REFLECT_101)), a.repeat))


if __name__ == "__main__":
    main()
