package io.kaiser.config;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * mosquitto/mosquitto.prod.conf: no anonymous access, every listener with TLS, authorisation by the dynamic
 * security plugin. (BrokerSecurityIT runs the file against real clients.)
 */
class MosquittoProdConfigTest {
    final Path prod = Path.of("mosquitto/mosquitto.prod.conf");

    List<String> settings() throws IOException {
        return Files.readAllLines(prod).stream().map(String::trim).filter(l -> !l.isEmpty() && !l.startsWith("#")).toList();
    }

    @Test
    void should_refuse_anonymous_clients_everywhere() throws IOException {
        List<String> s = settings();
        assertThat(s).contains("per_listener_settings false", "allow_anonymous false").doesNotContain("allow_anonymous true");
        assertThat(s).anyMatch(l -> l.startsWith("plugin ") && l.endsWith("mosquitto_dynamic_security.so"));
        assertThat(s).anyMatch(l -> l.startsWith("plugin_opt_config_file "));
    }

    @Test
    void should_give_every_listener_a_certificate_and_key() throws IOException {
        List<List<String>> listeners = new ArrayList<>();
        for (String l : settings()) {
            if (l.startsWith("listener ")) {
                listeners.add(new ArrayList<>());
            }
            if (!listeners.isEmpty()) {
                listeners.get(listeners.size() - 1).add(l);
            }
        }
        assertThat(listeners).hasSize(2);
        assertThat(listeners.get(0)).contains("listener 8883", "protocol mqtt");
        assertThat(listeners.get(1)).contains("listener 8884", "protocol websockets");
        assertThat(listeners).allSatisfy(block -> assertThat(block)
                .anyMatch(l -> l.startsWith("certfile ")).anyMatch(l -> l.startsWith("keyfile ")).anyMatch(l -> l.startsWith("cafile ")));
    }
}
