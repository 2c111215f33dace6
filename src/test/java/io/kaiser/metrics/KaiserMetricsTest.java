package io.kaiser.metrics;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.ref.WeakReference;
import java.util.function.LongSupplier;

import org.junit.jupiter.api.Test;

class KaiserMetricsTest {

    @Test
    void should_keep_reading_a_gauge_whose_supplier_nobody_else_references() {
        try (KaiserMetrics metrics = new KaiserMetrics(null)) {
            long[] backlog = {42};
            LongSupplier supplier = () -> backlog[0];
            metrics.gauge("kaiser_test_backlog", "a live value", supplier);
            WeakReference<LongSupplier> ref = new WeakReference<>(supplier);
            supplier = null;
            // a full collection (System.gc() on the default collector) clears objects that are only weakly reachable
            System.gc();
            System.gc();
            assertThat(ref.get()).as("supplier kept by the registry").isNotNull();
            assertThat(metrics.scrape()).contains("kaiser_test_backlog 42.0").doesNotContain("kaiser_test_backlog NaN");
        }
    }
}
