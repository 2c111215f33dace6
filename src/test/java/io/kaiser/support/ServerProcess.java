package io.kaiser.support;

import java.io.File;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** The server of a {@link KaiserServer} run in a child JVM, so a test can kill it with SIGKILL. */
public final class ServerProcess implements AutoCloseable {
    private final KaiserServer server;
    private Process process;

    public ServerProcess(KaiserServer server) {
        this.server = server;
    }

    public ServerProcess start() {
        String cp = System.getProperty("surefire.test.class.path");
        if (cp == null || cp.isBlank()) {
            cp = System.getProperty("java.class.path");
        }
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.add("-Xmx512m");
        server.properties().forEach((k, v) -> cmd.add("-D" + k + "=" + v));
        cmd.add("-cp");
        cmd.add(cp);
        cmd.add("io.kaiser.KaiserMain");
        try {
            File log = Path.of("target", "server-process-" + server.kaiserId() + ".log").toFile();
            process = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.appendTo(log)).start();
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        return this;
    }

    /** SIGKILL: no shutdown hook, no graceful disconnect, no flush. */
    public void kill() {
        process.destroyForcibly();
        try {
            process.waitFor();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Override
    public void close() {
        if (process != null && process.isAlive()) {
            kill();
        }
    }
}
