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
        assertThat(services).containsOnlyKeys("mosquitto", "postgres", "kaiser", "mosquitto-prod", "kaiser-prod");
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
                if (PROVIDED_ELSEWHERE.contains(source) || source.startsWith("${")) {
                    continue;   // another branch's file, or a host directory chosen by the operator
                }
                if (source.startsWith("./") && !source.startsWith("./target/")) {
                    assertThat(projectDir.resolve(source)).as(volume).exists();
                } else if (!source.startsWith("./")) {
                    assertThat((Map<String, Object>) compose.get("volumes")).as(volume).containsKey(source);
                }
            }
        }
    }

    /** Files docker-compose.yml names that another branch adds (the production broker configuration). */
    private static final List<String> PROVIDED_ELSEWHERE = List.of("./mosquitto/mosquitto.prod.conf");

    private Map<String, Object> compose() throws IOException {
        try (InputStream in = Files.newInputStream(projectDir.resolve("docker-compose.yml"))) {
            return (Map<String, Object>) new Load(LoadSettings.builder().build()).loadFromInputStream(in);
        }
    }

    @Test
    void profilesSeparateTheDevAndProdStacks() throws IOException {
        Map<String, Object> compose = compose();
        Map<String, Map<String, Object>> services = (Map<String, Map<String, Object>>) compose.get("services");
        assertThat(services.get("postgres")).as("postgres serves both profiles").doesNotContainKey("profiles");
        assertThat((List<String>) services.get("mosquitto").get("profiles")).containsExactly("dev");
        assertThat((List<String>) services.get("kaiser").get("profiles")).containsExactly("dev");
        assertThat((List<String>) services.get("mosquitto-prod").get("profiles")).containsExactly("prod");
        assertThat((List<String>) services.get("kaiser-prod").get("profiles")).containsExactly("prod");
        // `docker compose up` without --profile: .env makes it the dev stack
        assertThat(Files.readAllLines(projectDir.resolve(".env"))).contains("COMPOSE_PROFILES=dev");

        Map<String, Object> broker = services.get("mosquitto-prod");
        assertThat((List<String>) broker.get("volumes"))
                .contains("./mosquitto/mosquitto.prod.conf:/mosquitto/config/mosquitto.conf:ro");
        assertThat((List<String>) broker.get("ports")).containsExactly("8883:8883");
        assertThat(broker).containsKey("healthcheck");

        Map<String, Object> kaiser = services.get("kaiser-prod");
        assertThat(kaiser.get("build")).isEqualTo(".");
        Map<String, Object> env = (Map<String, Object>) kaiser.get("environment");
        assertThat(env).containsEntry("KAISER_MODE", "production").containsEntry("KAISER_AUTH_ENABLED", "true")
                .containsEntry("KAISER_MQTT_URL", "${KAISER_MQTT_URL:-mqtts://mosquitto-prod:8883}")
                .containsKeys("KAISER_MQTT_TLS_CA_FILE", "KAISER_MQTT_PASSWORD_FILE", "KAISER_DB_PASSWORD_FILE",
                        "KAISER_AUTH_BOOTSTRAP_TOKENS_FILE");
        // no secret value is written in the compose file itself
        assertThat(env).doesNotContainKeys("KAISER_MQTT_PASSWORD", "KAISER_DB_PASSWORD", "KAISER_AUTH_BOOTSTRAP_TOKENS");
        Map<String, Object> secrets = (Map<String, Object>) compose.get("secrets");
        assertThat(secrets).containsKeys(((List<String>) kaiser.get("secrets")).toArray(String[]::new));
        env.forEach((name, value) -> {
            if (name.endsWith("_FILE")) {
                assertThat(value.toString()).as(name).startsWith("/run/secrets/");
                assertThat(secrets).as(name).containsKey(value.toString().substring("/run/secrets/".length()));
            }
        });
        Map<String, Map<String, Object>> dependsOn = (Map<String, Map<String, Object>>) kaiser.get("depends_on");
        assertThat(dependsOn).containsOnlyKeys("mosquitto-prod", "postgres");
        // the dev kaiser never talks to the prod broker and the other way round
        assertThat((Map<String, Object>) services.get("kaiser").get("depends_on")).doesNotContainKey("mosquitto-prod");
    }

    /** The project version from pom.xml (the first version after the project's artifactId). */
    private String projectVersion() throws IOException {
        String pom = Files.readString(projectDir.resolve("pom.xml"));
        String afterArtifact = pom.substring(pom.indexOf("<artifactId>kaiser-server</artifactId>"));
        return afterArtifact.substring(afterArtifact.indexOf("<version>") + "<version>".length(), afterArtifact.indexOf("</version>"));
    }
}
