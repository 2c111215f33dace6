package io.kaiser.command;

import io.kaiser.KaiserHeaders;
import org.apache.camel.Exchange;
import org.apache.camel.Message;
import org.apache.camel.component.paho.mqtt5.PahoMqtt5Constants;

/**
 * A stored command as the MQTT message that carries it: its payload as the body, and for Paho its topic, its QoS and
 * the MQTT 5 user property {@code traceparent} (never retained: the route says so where it publishes). One processor
 * step rather than an expression per header: every bean or OGNL expression in a route works on a copy of the exchange,
 * HTTP request headers and all.
 */
public final class CommandMessage {
    /** Turns the exchange's message into the command's MQTT publish (the command is the property {@code kaiserCommand}). */
    public void toMqtt(Exchange exchange) {
        Command command = exchange.getProperty(KaiserHeaders.COMMAND, Command.class);
        if (command == null) {
            throw new IllegalStateException("no command to publish: exchange property " + KaiserHeaders.COMMAND + " is not set");
        }
        Message message = exchange.getMessage();
        message.setHeader(PahoMqtt5Constants.CAMEL_PAHO_OVERRIDE_TOPIC, command.topic());
        message.setHeader(PahoMqtt5Constants.CAMEL_PAHO_MSG_QOS, command.qos());
        message.setHeader(PahoMqtt5Constants.CAMEL_PAHO_MSG_PROPERTIES, CommandTrace.mqttProperties(command));
        message.setBody(command.payload());
    }
}
