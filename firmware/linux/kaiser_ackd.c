/*
 * kaiser-ackd: a tiny stand-in for the Kaiser server's registration route, for smoke and load
 * tests of kaiser-vdev when the real server is not running. It answers every
 * `kaiser/{k}/esp/{id}/system/heartbeat` with a contract-valid `system/heartbeat/ack`
 * (status from --status, handover_epoch echoing the heartbeat's active_handover_epoch, min 1).
 * It is a test tool only: it persists nothing and never sends commands.
 *
 *   kaiser-ackd --url mqtt://127.0.0.1:1883 --status online --duration 30
 */
#include <getopt.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cJSON.h"

static const char *g_status = "online";
static unsigned long g_acks;
static volatile sig_atomic_t g_stop;

static void on_signal(int s) {
    (void)s;
    g_stop = 1;
}

static void on_connect(struct mosquitto *m, void *obj, int rc, int flags, const mosquitto_property *p) {
    (void)obj;
    (void)flags;
    (void)p;
    if (rc == 0) mosquitto_subscribe_v5(m, NULL, "kaiser/+/esp/+/system/heartbeat", 0, 0, NULL);
}

static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg, const mosquitto_property *p) {
    (void)obj;
    (void)p;
    cJSON *hb = cJSON_ParseWithLength(msg->payload, (size_t)msg->payloadlen);
    const cJSON *ep = cJSON_GetObjectItemCaseSensitive(hb, "active_handover_epoch");
    double epoch = cJSON_IsNumber(ep) && ep->valuedouble >= 1 ? ep->valuedouble : 1;
    cJSON_Delete(hb);
    char topic[256], payload[256];
    snprintf(topic, sizeof topic, "%s/ack", msg->topic);
    snprintf(payload, sizeof payload,
             "{\"status\":\"%s\",\"config_available\":false,\"server_time\":%lld,\"handover_epoch\":%.0f,"
             "\"ack_type\":\"heartbeat\",\"contract_version\":2}",
             g_status, (long long)time(NULL), epoch);
    if (mosquitto_publish_v5(m, NULL, topic, (int)strlen(payload), payload, 0, false, NULL) == MOSQ_ERR_SUCCESS) g_acks++;
}

int main(int argc, char **argv) {
    const char *url = getenv("KAISER_MQTT_URL") ? getenv("KAISER_MQTT_URL") : "mqtt://127.0.0.1:1883";
    double duration = 0;
    static const struct option o[] = {{"url", required_argument, 0, 'u'},
                                      {"status", required_argument, 0, 's'},
                                      {"duration", required_argument, 0, 'd'},
                                      {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", o, NULL)) != -1) {
        if (c == 'u') url = optarg;
        else if (c == 's') g_status = optarg;
        else if (c == 'd') duration = atof(optarg);
        else {
            fprintf(stderr, "usage: kaiser-ackd [--url mqtt://host:port] [--status online|pending_approval|rejected|error] [--duration S]\n");
            return 2;
        }
    }
    char host[128] = "127.0.0.1";
    int port = 1883;
    const char *h = strncmp(url, "mqtt://", 7) == 0 ? url + 7 : url;
    const char *colon = strrchr(h, ':');
    if (colon) {
        snprintf(host, sizeof host, "%.*s", (int)(colon - h), h);
        port = atoi(colon + 1);
    } else {
        snprintf(host, sizeof host, "%s", h);
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    mosquitto_lib_init();
    char id[64];
    snprintf(id, sizeof id, "kaiser-ackd-%ld", (long)time(NULL) % 100000);
    struct mosquitto *m = mosquitto_new(id, true, NULL);
    mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
    mosquitto_connect_v5_callback_set(m, on_connect);
    mosquitto_message_v5_callback_set(m, on_message);
    if (mosquitto_connect(m, host, port, 30) != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "kaiser-ackd: cannot connect to %s:%d\n", host, port);
        return 1;
    }
    time_t end = duration > 0 ? time(NULL) + (time_t)duration : 0;
    while (!g_stop && (end == 0 || time(NULL) < end)) {
        if (mosquitto_loop(m, 100, 100) != MOSQ_ERR_SUCCESS) mosquitto_reconnect(m);
    }
    fprintf(stderr, "kaiser-ackd: %lu acks sent\n", g_acks);
    mosquitto_disconnect(m);
    mosquitto_destroy(m);
    mosquitto_lib_cleanup();
    return 0;
}
