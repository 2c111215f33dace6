package io.kaiser.support;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** The firmware's Linux port, built on first use (firmware/scripts/ci.sh builds the same target with sanitizers). */
public final class Firmware {
    public static final Path VDEV = Path.of("firmware/build/linux/kaiser-vdev");

    private Firmware() {
    }

    public static synchronized Path vdev() {
        if (Files.isExecutable(VDEV)) {
            return VDEV;
        }
        for (List<String> step : List.of(
                List.of("cmake", "-S", "firmware/host", "-B", "firmware/build", "-DKAISER_BUILD_VDEV=ON"),
                List.of("cmake", "--build", "firmware/build", "-j", "2", "--target", "kaiser-vdev"))) {
            try {
                Process p = new ProcessBuilder(step).inheritIO().start();
                if (p.waitFor() != 0) {
                    throw new IllegalStateException("firmware build failed: " + String.join(" ", step));
                }
            } catch (IOException e) {
                throw new IllegalStateException("cmake is not installed", e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException(e);
            }
        }
        return VDEV;
    }
}
