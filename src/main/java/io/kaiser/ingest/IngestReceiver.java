package io.kaiser.ingest;

import java.util.concurrent.atomic.LongAdder;

import io.kaiser.KaiserHeaders;
import org.apache.camel.Exchange;
import org.apache.camel.Message;
import org.apache.camel.component.paho.mqtt5.PahoMqtt5Constants;
import org.apache.camel.component.paho.mqtt5.PahoMqtt5Message;

/**
 * The only step that runs on the MQTT callback thread: append the message to the journal and return.
 * The client acknowledges the message to the broker when this returns.
 */
public final class IngestReceiver {
    private final IngestJournal journal;
    private final LongAdder received = new LongAdder();

    public IngestReceiver(IngestJournal journal) {
        this.journal = journal;
    }

    public void receive(Exchange exchange) {
        Message in = exchange.getMessage();
        String key = in.getHeader(KaiserHeaders.TOPIC_KEY, String.class);
        String topic = in.getHeader(PahoMqtt5Constants.MQTT_TOPIC, String.class);
        Integer qos = in.getHeader(PahoMqtt5Constants.MQTT_QOS, Integer.class);
        boolean retained = in instanceof PahoMqtt5Message paho && paho.getMqttMessage() != null && paho.getMqttMessage().isRetained();
        byte[] payload = in.getBody(byte[].class);
        journal.append(key, topic, qos == null ? 0 : qos, retained, System.currentTimeMillis(), payload == null ? new byte[0] : payload);
        received.increment();
    }

    public long received() {
        return received.sum();
    }
}
