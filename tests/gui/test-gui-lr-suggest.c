/* test-gui-lr-suggest.c - reading an LR range test: the suggestion sits where
 * the smoothed loss falls fastest, divergence where it exceeds the factor
 * times its minimum or turns NaN, and noise or flat curves suggest nothing
 * wrong. */
#include <math.h>

#include "test-common.h"
#include "unet-lr-suggest.h"

#define N 200

int main(void)
{
    double lr[N], loss[N];
    for (int i = 0; i < N; i++) {
        lr[i] = 1e-7 * pow(1e7, i / (N - 1.0));
        /* Logistic fall centred at 1e-3, then a blow-up past 0.3. */
        double u = log10(lr[i]);
        loss[i] = 1.0 - 0.8 / (1 + exp(-(u + 3) * 4)) + (lr[i] > 0.3 ? (lr[i] - 0.3) * 30 : 0);
    }
    UnetLrSuggestion s;
    unet_lr_suggest(lr, loss, N, 4, &s);
    CHECK(s.has_suggestion);
    CHECK_MSG(fabs(log10(s.suggested_lr) + 3) < 0.15, "suggested %g, want about 1e-3", s.suggested_lr);
    CHECK(s.has_minimum && s.min_lr > 0.1 && s.min_lr <= 0.31);
    CHECK(s.diverged && s.diverged_lr > 0.3 && s.diverged_lr < 1.01);
    /* A larger factor moves divergence later (or past the end). */
    UnetLrSuggestion s2;
    unet_lr_suggest(lr, loss, N, 40, &s2);
    CHECK(!s2.diverged || s2.diverged_lr > s.diverged_lr);

    /* A NaN loss is divergence, and nothing after it counts. */
    loss[150] = NAN;
    unet_lr_suggest(lr, loss, N, 4, &s);
    CHECK(s.diverged && s.diverged_lr == lr[150]);
    CHECK(s.has_suggestion);

    /* A rising curve has its minimum first: no descent to suggest. */
    for (int i = 0; i < N; i++)
        loss[i] = 1 + i * 0.01;
    unet_lr_suggest(lr, loss, N, 4, &s);
    CHECK(!s.has_suggestion);
    CHECK(s.has_minimum && s.min_lr == lr[0]);

    /* Too few points. */
    unet_lr_suggest(lr, loss, 0, 4, &s);
    CHECK(!s.has_suggestion && !s.has_minimum && !s.diverged);
    unet_lr_suggest(lr, loss, 1, 4, &s);
    CHECK(!s.has_suggestion && s.has_minimum);
    return test_finish("gui-lr-suggest");
}
