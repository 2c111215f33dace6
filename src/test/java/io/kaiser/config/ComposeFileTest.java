package io.kaiser.config;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.snakeyaml.engine.v2.api.Load;
import org.snakeyaml.engine.v2.api.LoadSettings;

/**
 * docker-compose.yml, checked without a Docker engine: the three services, the mounts exist (or are the build's
 * output), the kaiser command names the jar this build produces, and kaiser waits for healthy broker and database.
 */
@SuppressWarnings("unchecked")
class ComposeFileTest {
    private final Path projectDir = Path.of(System.getProperty("kaiser.project.dir", ".")).toAbsolutePath();

    @Test
    void composeFileMatchesTheBuildAndTheRepository() throws IOException {
        Map<String, Object> compose;
        try (InputStream in = Files.newInputStream(projectDir.resolve("docker-compose.yml"))) {
            compose = (Map<String, Object>) new Load(LoadSettings.builder().build()).loadFromInputStream(in);
        }
        Map<String, Map<String, Object>> services = (Map<String, Map<String, Object>>) compose.get("services");
        assertThat(services).containsOnlyKeys("mosquitto", "postgres", "kaiser");
        assertThat(services.get("mosquitto").get("image")).isEqualTo("eclipse-mosquitto:2");
        assertThat(services.get("postgres").get("image")).isEqualTo("postgres:16");

        Map<String, Object> kaiser = services.get("kaiser");
        assertThat(kaiser.get("image")).isEqualTo("eclipse-temurin:17-jre");
        assertThat(kaiser.get("working_dir")).isEqualTo("/app");
        String jar = "kaiser-server-" + projectVersion() + ".jar";
        assertThat((List<String>) kaiser.get("command")).containsExactly("java", "-jar", jar);
        assertThat((List<String>) kaiser.get("volumes")).contains("./target/" + jar + ":/app/" + jar + ":ro",
                "./target/lib:/app/lib:ro", "./routes:/app/routes:ro", "./application.properties:/app/application.properties:ro");
        Map<String, Object> env = (Map<String, Object>) kaiser.get("environment");
        assertThat(env).containsEntry("KAISER_MQTT_URL", "tcp://mosquitto:1883")
                .containsEntry("KAISER_DB_URL", "jdbc:postgresql://postgres:5432/kaiser");
        Map<String, Map<String, Object>> dependsOn = (Map<String, Map<String, Object>>) kaiser.get("depends_on");
        assertThat(dependsOn).containsOnlyKeys("mosquitto", "postgres");
        dependsOn.forEach((name, condition) -> {
            assertThat(condition).containsEntry("condition", "service_healthy");
            assertThat(services.get(name)).containsKey("healthcheck");
        });
        assertThat((Map<String, Object>) services.get("postgres").get("environment")).containsEntry("POSTGRES_DB", "kaiser");

        // every host path that is not build output exists in the repository
        for (Map<String, Object> service : services.values()) {
            for (String volume : (List<String>) service.getOrDefault("volumes", List.of())) {
                String source = volume.split(":")[0];
                if (source.startsWith("./") && !source.startsWith("./target/")) {
                    assertThat(projectDir.resolve(source)).as(volume).exists();
                } else if (!source.startsWith("./")) {
                    assertThat((Map<String, Object>) compose.get("volumes")).as(volume).containsKey(source);
                }
            }
        }
    }

    /** The project version from pom.xml (the first version after the project's artifactId). */
    private String projectVersion() throws IOException {
        String pom = Files.readString(projectDir.resolve("pom.xml"));
        String afterArtifact = pom.substring(pom.indexOf("<artifactId>kaiser-server</artifactId>"));
        return afterArtifact.substring(afterArtifact.indexOf("<version>") + "<version>".length(), afterArtifact.indexOf("</version>"));
    }
}
