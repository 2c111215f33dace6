package io.kaiser.contract;

import java.io.IOException;
import java.io.InputStream;
import java.io.Reader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.networknt.schema.JsonSchema;
import com.networknt.schema.JsonSchemaFactory;
import com.networknt.schema.SpecVersion;
import com.networknt.schema.ValidationMessage;
import io.kaiser.KaiserMain;
import org.apache.camel.BeanInject;
import org.apache.camel.CamelContext;
import org.apache.camel.Route;
import org.apache.camel.component.paho.mqtt5.PahoMqtt5Endpoint;
import org.apache.camel.model.Model;
import org.apache.camel.model.ProcessorDefinition;
import org.apache.camel.model.RouteDefinition;
import org.apache.camel.model.SetHeaderDefinition;
import org.apache.camel.test.main.junit5.CamelMainTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

/**
 * contract/topics.yaml against everything that must agree with it: the routes the server really starts (via
 * Camel Main with the project's application.properties and routes), application.properties, the schemas and the
 * golden vectors of the firmware team. The server starts without broker or database (it connects in the background).
 */
@CamelMainTest(mainClass = KaiserMain.class, properties = {
        "kaiser.id=" + TopicContractTest.KAISER_ID,
        "kaiser.instance-id=topic-contract-test",
        "kaiser.mqtt.session-expiry-seconds=0",
        "kaiser.ingest.journal-dir=target/journal-topic-contract",
        "camel.server.port=0",
        "camel.server.host=127.0.0.1",
        "camel.main.routes-include-pattern=file:routes/*.camel.yaml"})
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TopicContractTest {
    static final String KAISER_ID = "tcontract";
    static final Path CONTRACT = Path.of("contract");
    static final ObjectMapper JSON = new ObjectMapper();
    static final TopicTable TABLE = new TopicTable();

    @BeanInject
    CamelContext context;

    /** Routes consuming from paho-mqtt5, by route id. */
    Map<String, PahoMqtt5Endpoint> mqttRoutes() {
        Map<String, PahoMqtt5Endpoint> out = new TreeMap<>();
        for (Route r : context.getRoutes()) {
            if (r.getEndpoint() instanceof PahoMqtt5Endpoint e) {
                out.put(r.getId(), e);
            }
        }
        return out;
    }

    @Test
    void should_subscribe_every_device_to_server_topic_with_exactly_one_route_at_the_table_qos() {
        Map<String, PahoMqtt5Endpoint> routes = mqttRoutes();
        assertThat(routes).as("paho-mqtt5 routes").isNotEmpty();
        List<String> problems = new ArrayList<>();
        for (TopicTable.Topic t : TABLE.deviceToServer()) {
            String filter = t.subscription(KAISER_ID);
            List<Map.Entry<String, PahoMqtt5Endpoint>> matching = routes.entrySet().stream()
                    .filter(e -> filter.equals(e.getValue().getTopic())).toList();
            if (matching.size() != 1) {
                problems.add(t.property() + ": " + matching.size() + " routes subscribe " + filter + " " + matching.stream().map(Map.Entry::getKey).toList());
                continue;
            }
            int qos = matching.get(0).getValue().getConfiguration().getQos();
            if (qos != t.qos()) {
                problems.add(t.property() + ": route " + matching.get(0).getKey() + " subscribes with QoS " + qos + ", table says " + t.qos());
            }
        }
        assertThat(problems).as("device-to-server topics vs routes").isEmpty();
    }

    @Test
    void should_not_subscribe_any_topic_that_is_not_in_the_table() {
        Set<String> table = TABLE.deviceToServer().stream().map(t -> t.subscription(KAISER_ID)).collect(Collectors.toSet());
        Map<String, String> extra = new TreeMap<>();
        mqttRoutes().forEach((id, e) -> {
            if (!table.contains(e.getTopic())) {
                extra.put(id, e.getTopic());
            }
        });
        assertThat(extra).as("routes subscribing topics missing from topics.yaml").isEmpty();
    }

    @Test
    void should_tag_each_subscription_with_the_topic_key_of_its_own_row() {
        Model model = context.getCamelContextExtension().getContextPlugin(Model.class);
        Map<String, String> bySubscription = new LinkedHashMap<>();
        TABLE.deviceToServer().forEach(t -> bySubscription.put(t.subscription(KAISER_ID), t.property()));
        List<String> problems = new ArrayList<>();
        mqttRoutes().forEach((id, e) -> {
            RouteDefinition rd = model.getRouteDefinition(id);
            String key = null;
            for (ProcessorDefinition<?> p : rd.getOutputs()) {
                if (p instanceof SetHeaderDefinition sh && "kaiserTopicKey".equals(sh.getName())) {
                    key = sh.getExpression().getExpression();
                    // a templated route keeps {{param}}: resolve it with the route's template parameters
                    if (key.startsWith("{{") && key.endsWith("}}") && rd.getTemplateParameters() != null) {
                        Object v = rd.getTemplateParameters().get(key.substring(2, key.length() - 2));
                        key = v == null ? key : v.toString();
                    }
                }
            }
            String expected = bySubscription.get(e.getTopic());
            if (expected != null && !expected.equals(key)) {
                problems.add(id + " subscribes " + e.getTopic() + " but tags it as " + key + " (expected " + expected + ")");
            }
        });
        assertThat(problems).isEmpty();
    }

    @Test
    void should_have_application_properties_equal_to_the_table() throws IOException {
        Properties props = new Properties();
        try (Reader r = Files.newBufferedReader(Path.of("application.properties"))) {
            props.load(r);
        }
        List<String> problems = new ArrayList<>();
        for (TopicTable.Topic t : TABLE.all()) {
            String qosKey = "kaiser.qos." + t.property();
            if (!String.valueOf(t.qos()).equals(props.getProperty(qosKey))) {
                problems.add(qosKey + "=" + props.getProperty(qosKey) + ", table says " + t.qos());
            }
            if (t.deviceToServer()) {
                String topicKey = "kaiser.topic." + t.property();
                String expected = t.pattern().replace("{kaiser_id}", "{{kaiser.id}}").replace("{esp_id}", "+").replace("{gpio}", "+");
                if (!expected.equals(props.getProperty(topicKey))) {
                    problems.add(topicKey + "=" + props.getProperty(topicKey) + ", table says " + expected);
                }
            }
        }
        Set<String> inbound = TABLE.deviceToServer().stream().map(TopicTable.Topic::property).collect(Collectors.toSet());
        for (String name : props.stringPropertyNames()) {
            if (name.startsWith("kaiser.topic.") && !inbound.contains(name.substring("kaiser.topic.".length()))) {
                problems.add(name + " has no device-to-server row in topics.yaml");
            }
        }
        assertThat(problems).as("application.properties vs topics.yaml").isEmpty();
    }

    @Test
    void should_have_a_compiling_schema_for_every_schema_named_in_the_table() {
        JsonSchemaFactory factory = JsonSchemaFactory.getInstance(SpecVersion.VersionFlag.V7);
        List<String> problems = new ArrayList<>();
        for (String name : tableSchemas()) {
            Path file = CONTRACT.resolve("schemas").resolve(name + ".schema.json");
            if (!Files.exists(file)) {
                problems.add("missing " + file);
                continue;
            }
            try (InputStream in = Files.newInputStream(file)) {
                JsonNode doc = JSON.readTree(in);
                assertThat(doc.path("$schema").asText()).as(file + " $schema").contains("draft-07");
                JsonSchema schema = factory.getSchema(doc);
                schema.initializeValidators();
                // a schema that accepts anything would make every vector pass
                if (schema.validate(JSON.readTree("42")).isEmpty()) {
                    problems.add(name + " accepts a bare number");
                }
            } catch (Exception e) {
                problems.add(name + " does not compile: " + e.getMessage());
            }
        }
        assertThat(problems).isEmpty();
    }

    @Test
    void should_validate_every_vector_against_its_schema() throws IOException {
        JsonSchemaFactory factory = JsonSchemaFactory.getInstance(SpecVersion.VersionFlag.V7);
        Set<String> schemas = tableSchemas();
        List<String> problems = new ArrayList<>();
        int checked = 0;
        for (Path dir : vectorDirs()) {
            String name = dir.getFileName().toString();
            if (!schemas.contains(name)) {
                problems.add("vectors/" + name + " names no schema of topics.yaml");
                continue;
            }
            JsonSchema schema;
            try (InputStream in = Files.newInputStream(CONTRACT.resolve("schemas").resolve(name + ".schema.json"))) {
                schema = factory.getSchema(in);
            }
            for (Path vector : vectors(dir)) {
                Set<ValidationMessage> errors = schema.validate(JSON.readTree(vector.toFile()));
                checked++;
                if (!errors.isEmpty()) {
                    problems.add(CONTRACT.relativize(vector) + ": " + errors.stream().map(ValidationMessage::getMessage).sorted().toList());
                }
            }
        }
        assertThat(checked).as("vectors checked").isGreaterThan(0);
        assertThat(problems).as("vectors that do not validate").isEmpty();
    }

    @Test
    void should_accept_every_device_to_server_vector_in_the_payload_validator() throws IOException {
        PayloadValidator validator = new PayloadValidator(TABLE, 16384, 48);
        List<String> problems = new ArrayList<>();
        for (TopicTable.Topic t : TABLE.deviceToServer()) {
            Path dir = CONTRACT.resolve("vectors").resolve(t.schema());
            if (!Files.isDirectory(dir)) {
                continue; // reported by should_have_at_least_one_vector_for_every_schema
            }
            for (Path vector : vectors(dir)) {
                byte[] payload = Files.readAllBytes(vector);
                JsonNode node = JSON.readTree(payload);
                String esp = node.path("esp_id").asText("ESP_A1B2C3");
                int gpio = node.path("gpio").isInt() && node.path("gpio").asInt() <= 48 ? node.path("gpio").asInt() : 4;
                String topic = t.topic("god", esp, t.hasGpio() ? gpio : null);
                try {
                    validator.check(t.property(), topic, payload);
                } catch (KaiserRejection e) {
                    problems.add(CONTRACT.relativize(vector) + " on " + topic + ": " + e.getReasonCode() + ": " + e.getMessage());
                }
            }
        }
        assertThat(problems).as("firmware vectors the server would dead-letter").isEmpty();
    }

    @Test
    void should_have_at_least_one_vector_for_every_schema() throws IOException {
        List<String> missing = new ArrayList<>();
        for (String name : tableSchemas()) {
            Path dir = CONTRACT.resolve("vectors").resolve(name);
            if (!Files.isDirectory(dir) || vectors(dir).isEmpty()) {
                missing.add(name);
            }
        }
        if (!missing.isEmpty()) {
            fail("schemas without a golden vector under contract/vectors (firmware team to provide): " + missing);
        }
    }

    static Set<String> tableSchemas() {
        return TABLE.all().stream().map(TopicTable.Topic::schema).filter(s -> s != null).collect(Collectors.toCollection(TreeSet::new));
    }

    static List<Path> vectorDirs() throws IOException {
        try (Stream<Path> s = Files.list(CONTRACT.resolve("vectors"))) {
            return s.filter(Files::isDirectory).sorted().toList();
        }
    }

    static List<Path> vectors(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(p -> p.toString().endsWith(".json")).sorted().toList();
        }
    }
}
