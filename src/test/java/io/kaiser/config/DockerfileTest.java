package io.kaiser.config;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.Test;

/**
 * The Dockerfile, checked without a Docker engine: a Maven build stage and a JRE runtime stage, the jar and its lib/
 * copied from the build stage, routes and application.properties copied, a non-root USER, a HEALTHCHECK on
 * /api/v1/health, and every COPY source from the build context exists and is not excluded by .dockerignore.
 */
class DockerfileTest {
    private final Path projectDir = Path.of(System.getProperty("kaiser.project.dir", ".")).toAbsolutePath();

    private List<String> instructions() throws IOException {
        // join continuation lines, drop comments
        String text = Files.readString(projectDir.resolve("Dockerfile")).replaceAll("\\\\\\n", " ");
        return text.lines().map(String::trim).filter(l -> !l.isEmpty() && !l.startsWith("#")).toList();
    }

    @Test
    void multiStageBuildWithJreRuntime() throws IOException {
        List<String> from = instructions().stream().filter(l -> l.startsWith("FROM ")).toList();
        assertThat(from).hasSize(2);
        assertThat(from.get(0)).matches("FROM maven:\\S*eclipse-temurin-17\\S* AS build");
        assertThat(from.get(1)).isEqualTo("FROM eclipse-temurin:17-jre");
        String build = String.join("\n", instructions().subList(0, instructions().indexOf(from.get(1))));
        assertThat(build).contains("package").contains("target/kaiser-server-*.jar");
        assertThat(build).as("no profile that adds embedded or CLI jars").doesNotContain("-Pembedded").doesNotContain("-Pcli");
    }

    @Test
    void runtimeStageCopiesTheJarLibsRoutesAndConfiguration() throws IOException {
        List<String> lines = instructions();
        List<String> runtime = lines.subList(lines.indexOf("FROM eclipse-temurin:17-jre"), lines.size());
        assertThat(runtime).contains("COPY --from=build /build/target/lib/ /app/lib/",
                "COPY --from=build /build/target/kaiser-server.jar /app/kaiser-server.jar",
                "COPY routes/ /app/routes/", "COPY application.properties /app/application.properties");
        assertThat(runtime).anySatisfy(l -> assertThat(l).startsWith("WORKDIR /app"));
        assertThat(runtime).anySatisfy(l -> assertThat(l).isEqualTo("CMD [\"java\", \"-jar\", \"/app/kaiser-server.jar\"]"));

        // COPY sources from the build context exist and are not ignored
        List<String> ignored = Files.readAllLines(projectDir.resolve(".dockerignore")).stream()
                .map(String::trim).filter(l -> !l.isEmpty() && !l.startsWith("#")).map(l -> l.replaceAll("/$", "")).toList();
        for (String l : lines) {
            if (l.startsWith("COPY ") && !l.startsWith("COPY --from")) {
                String[] parts = l.split("\\s+");
                for (int i = 1; i < parts.length - 1; i++) {
                    String source = parts[i].replaceAll("/$", "");
                    assertThat(projectDir.resolve(source)).as(l).exists();
                    assertThat(ignored).as(l).doesNotContain(source, source.split("/")[0]);
                }
            }
        }
    }

    @Test
    void runsAsNonRootWithAHealthcheck() throws IOException {
        List<String> lines = instructions();
        List<String> users = lines.stream().filter(l -> l.startsWith("USER ")).toList();
        assertThat(users).isNotEmpty();
        String last = users.get(users.size() - 1).substring(5).trim();
        assertThat(last).doesNotStartWith("root").doesNotStartWith("0");
        // the USER line comes after the last RUN that needs root and before the CMD
        assertThat(lines.indexOf(users.get(users.size() - 1))).isGreaterThan(lastIndex(lines, "RUN "));
        String health = lines.stream().filter(l -> l.startsWith("HEALTHCHECK ")).findFirst().orElseThrow();
        assertThat(health).contains("/api/v1/health").contains("\\\"status\\\":\\\"UP\\\"");
        Matcher port = Pattern.compile("/dev/tcp/127.0.0.1/(\\d+)").matcher(health);
        assertThat(port.find()).isTrue();
        assertThat(lines).contains("EXPOSE " + port.group(1));
    }

    @Test
    void entrypointIsExecutableAndKeepsTlsFilePaths() throws IOException {
        Path entrypoint = projectDir.resolve("docker/entrypoint.sh");
        assertThat(Files.isExecutable(entrypoint)).isTrue();
        String script = Files.readString(entrypoint);
        assertThat(script).startsWith("#!/usr/bin/env bash").contains("KAISER_MQTT_TLS_*_FILE) ;;").contains("exec \"$@\"");
    }

    private static int lastIndex(List<String> lines, String prefix) {
        int last = -1;
        for (int i = 0; i < lines.size(); i++) {
            if (lines.get(i).startsWith(prefix)) {
                last = i;
            }
        }
        return last;
    }
}
