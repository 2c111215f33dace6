/*
 * kaiser-vdev: N virtual Kaiser devices in one process, one thread, against a real MQTT 5 broker.
 *
 * Each device is the unmodified portable core (kaiser_core) behind a Linux port: libmosquitto for
 * MQTT (driven by one poll() loop over every socket, no per-device thread), an in-memory key-value
 * store for "NVS", and simulated sensors (plausible values with noise) and actuators.
 *
 *   kaiser-vdev --count 3 --url mqtt://127.0.0.1:1883 --duration 10 --stats-s 2
 *
 * Prints one JSON stats line per --stats-s to stdout and exits 0 after --duration seconds.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kaiser_core.h"

/* ------------------------------------------------------------------ options */

typedef struct {
    int count;
    char host[128];
    int port;
    char prefix[24];
    char kaiser_id[64];
    double duration_s;
    double stats_s;
    int heartbeat_s;
    int data_s;
    int offline_grace_s; /* 0 = the core's default (30 s) */
    int ramp_ms;
    bool default_config;
    int fault_drop_s;    /* every N s drop one random device's connection abruptly (LWT fires) */
    int fault_silent_pct;/* % of devices that never answer commands */
    int fault_dup_pct;   /* % of devices that answer every command twice */
    int fault_late_pct;  /* % of devices whose answers are late ... */
    int fault_late_ms;   /* ... by this many ms */
    bool data_phase_spread; /* --data-phase-spread: sensors start at a per-device phase (as the ESP-IDF app) */
    double ack_after_s;  /* heartbeat-ACK latencies count only after this many seconds (skip the ramp) */
} options_t;

/* ------------------------------------------------------------------ per-device state */

typedef struct kv {
    char *key, *val;
    struct kv *next;
} kv_t;

typedef struct late {
    uint64_t due_ms;
    char *topic, *payload;
    size_t len;
    int qos;
    struct late *next;
} late_t;

typedef struct vdev {
    int idx;
    char esp_id[KAISER_ESP_ID_MAX + 1];
    struct mosquitto *mosq;
    kaiser_device_t dev;
    bool mqtt_up;     /* CONNACK received */
    bool connecting;  /* socket open, CONNACK pending */
    bool restart;
    kv_t *kv;
    late_t *late;
    bool silent, dup, slow;
    unsigned seed;
    double t_offset, h_offset;
    bool out_level[KAISER_GPIO_MAX + 1];
    uint8_t out_pwm[KAISER_GPIO_MAX + 1];
    uint64_t hb_sent_ms; /* when the last heartbeat left, 0 once its ACK came */
} vdev_t;

static options_t g_opt;
static volatile sig_atomic_t g_stop;
static volatile sig_atomic_t g_ack_restart; /* SIGUSR1: heartbeat-ACK latencies count from now on */
static uint64_t g_start_ms;
static uint64_t g_ack_from_ms; /* heartbeats sent before this are not counted (the ramp, registration) */

static uint64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Heartbeat -> heartbeat ACK latency of every device, 1 ms buckets (the last one collects everything slower). */
#define ACK_HIST_MS 30000
static uint32_t g_ack_hist[ACK_HIST_MS + 1];
static uint64_t g_ack_n;
static uint64_t g_ack_max_ms;

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static void ack_record(uint64_t ms) {
    g_ack_hist[ms > ACK_HIST_MS ? ACK_HIST_MS : ms]++;
    g_ack_n++;
    if (ms > g_ack_max_ms) g_ack_max_ms = ms;
}

static long ack_percentile(double p) {
    if (g_ack_n == 0) return -1;
    uint64_t rank = (uint64_t)ceil(p / 100.0 * (double)g_ack_n), seen = 0;
    if (rank < 1) rank = 1;
    for (long i = 0; i <= ACK_HIST_MS; i++) {
        seen += g_ack_hist[i];
        if (seen >= rank) return i;
    }
    return ACK_HIST_MS;
}

/* ------------------------------------------------------------------ port implementation */

static bool is_answer(const char *topic) {
    static const char *const suffixes[] = {"/response", "/config_response", "/zone/ack", "/subzone/ack",
                                           "/emergency/ack", "/recovery_confirm"};
    size_t n = strlen(topic);
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        size_t m = strlen(suffixes[i]);
        if (n >= m && strcmp(topic + n - m, suffixes[i]) == 0) return true;
    }
    return false;
}

static int raw_publish(vdev_t *v, const char *topic, const char *payload, size_t len, int qos, bool retain) {
    int rc = mosquitto_publish_v5(v->mosq, NULL, topic, (int)len, payload, qos, retain, NULL);
    if (rc == MOSQ_ERR_SUCCESS && ends_with(topic, "/system/heartbeat")) v->hb_sent_ms = mono_ms();
    return rc == MOSQ_ERR_SUCCESS ? 0 : -1;
}

static int p_publish(void *ctx, const char *topic, const char *payload, size_t len, int qos, bool retain) {
    vdev_t *v = ctx;
    if (!v->mqtt_up) return -1;
    if (is_answer(topic)) {
        if (v->silent) return 0; /* fault: stop answering (the core believes it answered) */
        if (v->slow) {
            late_t *l = calloc(1, sizeof *l);
            l->due_ms = mono_ms() + (uint64_t)g_opt.fault_late_ms;
            l->topic = strdup(topic);
            l->payload = malloc(len);
            memcpy(l->payload, payload, len);
            l->len = len;
            l->qos = qos;
            late_t **tail = &v->late;
            while (*tail) tail = &(*tail)->next;
            *tail = l;
            return 0;
        }
        if (v->dup && raw_publish(v, topic, payload, len, qos, retain) != 0) return -1;
    }
    return raw_publish(v, topic, payload, len, qos, retain);
}

static int p_subscribe(void *ctx, const char *topic, int qos) {
    vdev_t *v = ctx;
    int mid = -1;
    if (mosquitto_subscribe_v5(v->mosq, &mid, topic, qos, 0, NULL) != MOSQ_ERR_SUCCESS) return -1;
    return mid;
}

static uint64_t p_now(void *ctx) {
    (void)ctx;
    return mono_ms();
}
static int64_t p_wall(void *ctx) {
    (void)ctx;
    return (int64_t)time(NULL);
}
static uint32_t p_random(void *ctx) {
    vdev_t *v = ctx;
    return (uint32_t)rand_r(&v->seed) ^ ((uint32_t)rand_r(&v->seed) << 16);
}

static kv_t *kv_find(vdev_t *v, const char *key) {
    for (kv_t *e = v->kv; e; e = e->next)
        if (strcmp(e->key, key) == 0) return e;
    return NULL;
}
static int p_get(void *ctx, const char *key, char *buf, size_t cap) {
    kv_t *e = kv_find(ctx, key);
    if (e == NULL) return -1;
    size_t n = strlen(e->val);
    if (n >= cap) return -1;
    memcpy(buf, e->val, n + 1);
    return (int)n;
}
static int p_set(void *ctx, const char *key, const char *val) {
    vdev_t *v = ctx;
    kv_t *e = kv_find(v, key);
    if (val == NULL) {
        if (e) {
            kv_t **pp = &v->kv;
            while (*pp != e) pp = &(*pp)->next;
            *pp = e->next;
            free(e->key);
            free(e->val);
            free(e);
        }
        return 0;
    }
    if (e == NULL) {
        e = calloc(1, sizeof *e);
        e->key = strdup(key);
        e->next = v->kv;
        v->kv = e;
    } else {
        free(e->val);
    }
    e->val = strdup(val);
    return 0;
}

static int p_gpio(void *ctx, int gpio, bool level) {
    ((vdev_t *)ctx)->out_level[gpio] = level;
    return 0;
}
static int p_pwm(void *ctx, int gpio, uint8_t duty) {
    ((vdev_t *)ctx)->out_pwm[gpio] = duty;
    return 0;
}

static double noise(vdev_t *v) { return ((double)rand_r(&v->seed) / RAND_MAX - 0.5); }

/* Plausible greenhouse readings: slow daily-ish wave + per-device offset + noise. A running
 * fan (pwm 18) cools the air a little so offline rules have something to act on. */
static int p_sensor(void *ctx, int gpio, const char *type, int32_t *raw) {
    vdev_t *v = ctx;
    double t = (double)(mono_ms() - g_start_ms) / 1000.0;
    double air = 22.0 + v->t_offset + 3.0 * sin(t / 300.0) - (v->out_pwm[18] / 255.0) * 1.5 + noise(v) * 0.2;
    if (strcmp(type, "ds18b20") == 0) {
        *raw = (int32_t)lround((air - 3.0) * 16.0);
    } else if (strcmp(type, "sht31_temp") == 0) {
        *raw = (int32_t)lround((air + 45.0) * 65535.0 / 175.0);
    } else if (strcmp(type, "sht31_humidity") == 0) {
        double h = 60.0 + v->h_offset - 5.0 * sin(t / 300.0) + noise(v);
        *raw = (int32_t)lround(h * 65535.0 / 100.0);
    } else {
        double m = 2100.0 + 300.0 * sin(t / 600.0) - (v->out_level[5] ? 200.0 : 0.0) + noise(v) * 40.0;
        *raw = (int32_t)lround(m);
    }
    (void)gpio;
    return 0;
}

static void p_vitals(void *ctx, kaiser_vitals_t *out) {
    vdev_t *v = ctx;
    out->heap_free = 180000u - (uint32_t)(v->idx % 97) * 100u;
    out->heap_min_free = 150000u;
    out->wifi_rssi = -50 - v->idx % 30;
    snprintf(out->wifi_ip, sizeof out->wifi_ip, "127.0.%d.%d", (v->idx / 250) % 256, v->idx % 250 + 1);
    out->reset_reason = "POWERON";
}

static void p_restart(void *ctx) { ((vdev_t *)ctx)->restart = true; }

/* ------------------------------------------------------------------ MQTT callbacks */

static void on_connect(struct mosquitto *m, void *obj, int rc, int flags, const mosquitto_property *props) {
    (void)m;
    (void)flags;
    (void)props;
    vdev_t *v = obj;
    v->connecting = false;
    if (rc == 0) {
        v->mqtt_up = true;
        kaiser_on_connected(&v->dev);
    } else {
        kaiser_on_connect_failed(&v->dev);
    }
}

static void link_down(vdev_t *v) {
    if (v->mqtt_up) {
        v->mqtt_up = false;
        kaiser_on_disconnected(&v->dev);
    } else if (v->connecting) {
        kaiser_on_connect_failed(&v->dev);
    }
    v->connecting = false;
}

static void on_disconnect(struct mosquitto *m, void *obj, int rc, const mosquitto_property *props) {
    (void)m;
    (void)rc;
    (void)props;
    link_down(obj);
}

static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg,
                       const mosquitto_property *props) {
    (void)m;
    (void)props;
    vdev_t *v = obj;
    if (v->hb_sent_ms != 0 && ends_with(msg->topic, "/system/heartbeat/ack")) {
        uint64_t now = mono_ms();
        if (v->hb_sent_ms >= g_ack_from_ms) ack_record(now - v->hb_sent_ms);
        v->hb_sent_ms = 0;
    }
    kaiser_on_message(&v->dev, msg->topic, msg->payload ? (const char *)msg->payload : "", (size_t)msg->payloadlen);
}

static void on_subscribe(struct mosquitto *m, void *obj, int mid, int qos_count, const int *granted,
                         const mosquitto_property *props) {
    (void)m;
    (void)qos_count;
    (void)granted;
    (void)props;
    kaiser_on_suback(&((vdev_t *)obj)->dev, mid);
}

/* ------------------------------------------------------------------ device lifecycle */

static char g_default_config[1024];

static int device_init(vdev_t *v) {
    kaiser_port_t p = {0};
    p.ctx = v;
    p.publish = p_publish;
    p.subscribe = p_subscribe;
    p.now_ms = p_now;
    p.wall_s = p_wall;
    p.random = p_random;
    p.storage_get = p_get;
    p.storage_set = p_set;
    p.gpio_write = p_gpio;
    p.pwm_write = p_pwm;
    p.sensor_read = p_sensor;
    p.vitals = p_vitals;
    p.restart = p_restart;
    kaiser_options_t o = kaiser_default_options();
    o.heartbeat_ms = (uint32_t)g_opt.heartbeat_s * 1000u;
    o.data_ms = (uint32_t)g_opt.data_s * 1000u;
    if (g_opt.offline_grace_s > 0) o.offline_grace_ms = (uint32_t)g_opt.offline_grace_s * 1000u;
    o.data_phase_spread = g_opt.data_phase_spread;
    if (kaiser_init(&v->dev, &p, &o, v->esp_id, g_opt.kaiser_id) != 0) return -1;
    if (g_opt.default_config && !kv_find(v, "cfg_actuators")) kaiser_apply_config_json(&v->dev, g_default_config);
    return 0;
}

static void start_connect(vdev_t *v) {
    char topic[KAISER_TOPIC_MAX], will[256];
    if (kaiser_will(&v->dev, topic, sizeof topic, will, sizeof will) == 0) {
        mosquitto_will_set_v5(v->mosq, topic, (int)strlen(will), will, 1, true, NULL);
    }
    int rc = mosquitto_connect_async(v->mosq, g_opt.host, g_opt.port, 60);
    if (rc == MOSQ_ERR_SUCCESS) {
        v->connecting = true;
    } else {
        kaiser_on_connect_failed(&v->dev);
    }
}

static void flush_late(vdev_t *v, uint64_t now) {
    while (v->late && v->late->due_ms <= now) {
        late_t *l = v->late;
        v->late = l->next;
        if (v->mqtt_up) raw_publish(v, l->topic, l->payload, l->len, l->qos, false);
        free(l->topic);
        free(l->payload);
        free(l);
    }
}

static void free_device(vdev_t *v) {
    while (v->late) {
        late_t *l = v->late;
        v->late = l->next;
        free(l->topic);
        free(l->payload);
        free(l);
    }
    while (v->kv) {
        kv_t *e = v->kv;
        v->kv = e->next;
        free(e->key);
        free(e->val);
        free(e);
    }
    kaiser_deinit(&v->dev);
    if (v->mosq) mosquitto_destroy(v->mosq);
}

/* ------------------------------------------------------------------ stats */

static void print_stats(vdev_t *devs, int n, bool final) {
    long connected = 0, registered = 0, offline_entered = 0, offline_now = 0, outputs_on = 0;
    kaiser_stats_t s = {0};
    for (int i = 0; i < n; i++) {
        kaiser_stats_t *x = &devs[i].dev.stats;
        connected += devs[i].mqtt_up;
        registered += devs[i].dev.registered;
        offline_entered += devs[i].dev.offline_enter_count;
        offline_now += devs[i].dev.offline == KAISER_OFFLINE_ACTIVE || devs[i].dev.offline == KAISER_OFFLINE_RECONNECTING;
        for (int k = 0; k < KAISER_MAX_ACTUATORS; k++) outputs_on += devs[i].dev.actuators[k].used && devs[i].dev.actuators[k].state;
        s.published += x->published;
        s.received += x->received;
        s.heartbeats += x->heartbeats;
        s.data_msgs += x->data_msgs;
        s.commands_executed += x->commands_executed;
        s.duplicates_ignored += x->duplicates_ignored;
        s.acks_valid += x->acks_valid;
        s.acks_rejected += x->acks_rejected;
        s.buffered += x->buffered;
        s.replayed += x->replayed;
        s.connects += x->connects;
        s.disconnects += x->disconnects;
        s.publish_failed += x->publish_failed;
    }
    printf("{\"t\":%.1f,\"final\":%s,\"devices\":%d,\"connected\":%ld,\"registered\":%ld,\"sent\":%u,\"received\":%u,"
           "\"heartbeats\":%u,\"data\":%u,\"commands\":%u,\"duplicates\":%u,\"acks\":%u,\"acks_rejected\":%u,\"buffered\":%u,"
           "\"publish_failed\":%u,\"connects\":%u,\"disconnects\":%u,\"replayed\":%u,\"offline_entered\":%ld,\"offline_active\":%ld,"
           "\"actuators_on\":%ld,\"hb_acks\":%llu,\"hb_ack_p50_ms\":%ld,\"hb_ack_p99_ms\":%ld,\"hb_ack_max_ms\":%llu}\n",
           (double)(mono_ms() - g_start_ms) / 1000.0, final ? "true" : "false", n, connected, registered, s.published,
           s.received, s.heartbeats, s.data_msgs, s.commands_executed, s.duplicates_ignored, s.acks_valid, s.acks_rejected, s.buffered,
           s.publish_failed, s.connects, s.disconnects, s.replayed, offline_entered, offline_now, outputs_on,
           (unsigned long long)g_ack_n, ack_percentile(50), ack_percentile(99), (unsigned long long)g_ack_max_ms);
    fflush(stdout);
}

/* ------------------------------------------------------------------ main */

static void usage(void) {
    fprintf(stderr,
            "usage: kaiser-vdev [options]\n"
            "  --count N          number of virtual devices (default 3)\n"
            "  --url URL          broker, mqtt://host:port (default mqtt://127.0.0.1:1883)\n"
            "  --prefix P         esp_id prefix; ids are P0001.. (default ESP_VD)\n"
            "  --kaiser-id K      kaiser id (default god)\n"
            "  --duration S       exit after S seconds (default 0 = until SIGINT)\n"
            "  --stats-s S        print a JSON stats line every S seconds (default 5)\n"
            "  --heartbeat-s S    heartbeat interval once registered (default 60; 5 s while unregistered)\n"
            "  --data-s S         sensor publish interval 1..300 (default 30)\n"
            "  --offline-grace-s S  disconnected S seconds before the offline rules run (default 30)\n"
            "  --ramp-ms MS       stagger first connects by MS per device (default 2)\n"
            "  --no-default-config  start without the built-in sensors/actuators\n"
            "  --fault-drop-s S   every S seconds abruptly drop one random device's connection\n"
            "  --fault-silent PCT PCT %% of devices never answer commands\n"
            "  --fault-dup PCT    PCT %% of devices answer every command twice\n"
            "  --fault-late PCT   PCT %% of devices answer late (see --fault-late-ms, default 5000)\n"
            "  --fault-late-ms MS\n"
            "  --ack-after-s S    heartbeat-ACK latency (hb_ack_* in the stats) counts heartbeats sent after S s (default 0);\n"
            "                     SIGUSR1 restarts it: only heartbeats sent from then on count\n"
            "  --data-phase-spread  each sensor's first reading after a per-device phase within its interval,\n"
            "                     as the ESP-IDF app does (default: at once)\n");
}

static int parse_url(const char *url) {
    const char *p = url;
    if (strncmp(p, "mqtt://", 7) == 0) p += 7;
    else if (strncmp(p, "tcp://", 6) == 0) p += 6;
    const char *colon = strrchr(p, ':');
    if (colon == NULL) {
        snprintf(g_opt.host, sizeof g_opt.host, "%s", p);
        g_opt.port = 1883;
    } else {
        snprintf(g_opt.host, sizeof g_opt.host, "%.*s", (int)(colon - p), p);
        g_opt.port = atoi(colon + 1);
    }
    return (g_opt.host[0] && g_opt.port > 0 && g_opt.port < 65536) ? 0 : -1;
}

static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

static void on_ack_restart(int sig) {
    (void)sig;
    g_ack_restart = 1;
}

int main(int argc, char **argv) {
    g_opt.count = 3;
    g_opt.duration_s = 0;
    g_opt.stats_s = 5;
    g_opt.heartbeat_s = 60;
    g_opt.data_s = 30;
    g_opt.ramp_ms = 2;
    g_opt.default_config = true;
    g_opt.fault_late_ms = 5000;
    snprintf(g_opt.prefix, sizeof g_opt.prefix, "ESP_VD");
    snprintf(g_opt.kaiser_id, sizeof g_opt.kaiser_id, "god");
    const char *url = getenv("KAISER_MQTT_URL") ? getenv("KAISER_MQTT_URL") : "mqtt://127.0.0.1:1883";
    static const struct option longopts[] = {
        {"count", required_argument, 0, 'n'},       {"url", required_argument, 0, 'u'},
        {"prefix", required_argument, 0, 'p'},      {"kaiser-id", required_argument, 0, 'k'},
        {"duration", required_argument, 0, 'd'},    {"stats-s", required_argument, 0, 's'},
        {"heartbeat-s", required_argument, 0, 'h'}, {"data-s", required_argument, 0, 'D'},
        {"ramp-ms", required_argument, 0, 'r'},     {"no-default-config", no_argument, 0, 'C'},
        {"fault-drop-s", required_argument, 0, 1},  {"fault-silent", required_argument, 0, 2},
        {"fault-dup", required_argument, 0, 3},     {"fault-late", required_argument, 0, 4},
        {"fault-late-ms", required_argument, 0, 5}, {"offline-grace-s", required_argument, 0, 6},
        {"ack-after-s", required_argument, 0, 7},   {"help", no_argument, 0, 'H'},
        {"data-phase-spread", no_argument, 0, 8},
        {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'n': g_opt.count = atoi(optarg); break;
        case 'u': url = optarg; break;
        case 'p': snprintf(g_opt.prefix, sizeof g_opt.prefix, "%s", optarg); break;
        case 'k': snprintf(g_opt.kaiser_id, sizeof g_opt.kaiser_id, "%s", optarg); break;
        case 'd': g_opt.duration_s = atof(optarg); break;
        case 's': g_opt.stats_s = atof(optarg); break;
        case 'h': g_opt.heartbeat_s = atoi(optarg); break;
        case 'D': g_opt.data_s = atoi(optarg); break;
        case 'r': g_opt.ramp_ms = atoi(optarg); break;
        case 'C': g_opt.default_config = false; break;
        case 1: g_opt.fault_drop_s = atoi(optarg); break;
        case 2: g_opt.fault_silent_pct = atoi(optarg); break;
        case 3: g_opt.fault_dup_pct = atoi(optarg); break;
        case 4: g_opt.fault_late_pct = atoi(optarg); break;
        case 5: g_opt.fault_late_ms = atoi(optarg); break;
        case 6: g_opt.offline_grace_s = atoi(optarg); break;
        case 7: g_opt.ack_after_s = atof(optarg); break;
        case 8: g_opt.data_phase_spread = true; break;
        case 'H': usage(); return 0;
        default: usage(); return 2;
        }
    }
    if (g_opt.count < 1 || g_opt.count > 100000 || g_opt.heartbeat_s < 1 || g_opt.data_s < 1 || g_opt.data_s > 300 || g_opt.offline_grace_s < 0 ||
        g_opt.stats_s <= 0 || parse_url(url) != 0) {
        usage();
        return 2;
    }
    snprintf(g_default_config, sizeof g_default_config,
             "{\"sensors\":[{\"gpio\":4,\"sensor_type\":\"ds18b20\",\"sensor_name\":\"Soil temp\",\"measurement_interval_seconds\":%d,"
             "\"onewire_address\":\"28FF641E8D3C0C79\"},{\"gpio\":21,\"sensor_type\":\"sht31\",\"sensor_name\":\"Air\","
             "\"i2c_address\":68,\"measurement_interval_seconds\":%d},{\"gpio\":32,\"sensor_type\":\"moisture\","
             "\"sensor_name\":\"Bed moisture\",\"measurement_interval_seconds\":%d}],"
             "\"actuators\":[{\"gpio\":5,\"actuator_type\":\"pump\",\"actuator_name\":\"Pump\",\"max_runtime_ms\":600000},"
             "{\"gpio\":18,\"actuator_type\":\"pwm\",\"actuator_name\":\"Fan\"}],"
             "\"offline_rules\":[{\"actuator_gpio\":5,\"sensor_gpio\":21,\"sensor_value_type\":\"sht31_temp\","
             "\"activate_above\":28.0,\"deactivate_below\":24.0}]}",
             g_opt.data_s, g_opt.data_s, g_opt.data_s);

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGUSR1, on_ack_restart);
    /* libmosquitto uses 3 descriptors per client (socket + wake-up pair): lift the soft limit. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)g_opt.count * 3u + 16u) {
        fprintf(stderr, "kaiser-vdev: open-file limit %lu is too low for %d devices (need ~%d)\n",
                (unsigned long)rl.rlim_cur, g_opt.count, g_opt.count * 3 + 16);
        return 1;
    }
    mosquitto_lib_init();
    g_start_ms = mono_ms();
    g_ack_from_ms = g_start_ms + (uint64_t)(g_opt.ack_after_s * 1000.0);
    vdev_t *devs = calloc((size_t)g_opt.count, sizeof *devs);
    struct pollfd *pfd = calloc((size_t)g_opt.count, sizeof *pfd);
    int *pidx = calloc((size_t)g_opt.count, sizeof *pidx);
    if (devs == NULL || pfd == NULL || pidx == NULL) return 1;
    for (int i = 0; i < g_opt.count; i++) {
        vdev_t *v = &devs[i];
        v->idx = i;
        v->seed = (unsigned)(i * 2654435761u) ^ (unsigned)g_start_ms;
        v->t_offset = noise(v) * 4.0;
        v->h_offset = noise(v) * 10.0;
        int bucket = (i * 37) % 100; /* spreads faulty devices evenly, also for small N */
        v->silent = bucket < g_opt.fault_silent_pct;
        v->dup = !v->silent && bucket < g_opt.fault_silent_pct + g_opt.fault_dup_pct;
        v->slow = !v->silent && !v->dup && bucket < g_opt.fault_silent_pct + g_opt.fault_dup_pct + g_opt.fault_late_pct;
        char id[64];
        snprintf(id, sizeof id, "%s%04d", g_opt.prefix, i + 1);
        if (!kaiser_esp_id_valid(id)) {
            fprintf(stderr, "kaiser-vdev: invalid esp_id %s (prefix too long or bad characters)\n", id);
            return 2;
        }
        memcpy(v->esp_id, id, strlen(id) + 1);
        v->mosq = mosquitto_new(v->esp_id, true, v);
        if (v->mosq == NULL || device_init(v) != 0) {
            fprintf(stderr, "kaiser-vdev: cannot create device %s\n", v->esp_id);
            return 1;
        }
        mosquitto_int_option(v->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
        mosquitto_connect_v5_callback_set(v->mosq, on_connect);
        mosquitto_disconnect_v5_callback_set(v->mosq, on_disconnect);
        mosquitto_message_v5_callback_set(v->mosq, on_message);
        mosquitto_subscribe_v5_callback_set(v->mosq, on_subscribe);
        v->dev.next_connect_ms = g_start_ms + (uint64_t)i * (uint64_t)g_opt.ramp_ms;
    }
    fprintf(stderr, "kaiser-vdev: %d device(s) %s0001.. -> %s:%d kaiser_id=%s\n", g_opt.count, g_opt.prefix, g_opt.host,
            g_opt.port, g_opt.kaiser_id);

    uint64_t next_stats = g_start_ms + (uint64_t)(g_opt.stats_s * 1000.0);
    uint64_t next_tick = 0, next_misc = 0, next_drop = g_start_ms + (uint64_t)g_opt.fault_drop_s * 1000u;
    unsigned drop_seed = 12345;
    while (!g_stop) {
        uint64_t now = mono_ms();
        if (g_opt.duration_s > 0 && now - g_start_ms >= (uint64_t)(g_opt.duration_s * 1000.0)) break;
        if (g_ack_restart) {
            g_ack_restart = 0;
            memset(g_ack_hist, 0, sizeof g_ack_hist);
            g_ack_n = 0;
            g_ack_max_ms = 0;
            g_ack_from_ms = now;
        }
        if (now >= next_tick) {
            next_tick = now + 50;
            for (int i = 0; i < g_opt.count; i++) {
                vdev_t *v = &devs[i];
                if (v->restart) {
                    v->restart = false;
                    if (v->mqtt_up || v->connecting) mosquitto_disconnect(v->mosq);
                    v->mqtt_up = v->connecting = false;
                    kaiser_stats_t keep = v->dev.stats; /* the process-wide counters survive the "reboot" */
                    kaiser_deinit(&v->dev);
                    device_init(v); /* "reboot": fresh RAM state, persisted kv kept */
                    v->dev.stats = keep;
                }
                if (!v->mqtt_up && !v->connecting && kaiser_connect_due(&v->dev)) start_connect(v);
                kaiser_tick(&v->dev);
                flush_late(v, now);
            }
        }
        if (now >= next_misc) {
            next_misc = now + 1000;
            for (int i = 0; i < g_opt.count; i++)
                if (devs[i].mqtt_up || devs[i].connecting) mosquitto_loop_misc(devs[i].mosq);
        }
        if (g_opt.fault_drop_s > 0 && now >= next_drop) {
            next_drop = now + (uint64_t)g_opt.fault_drop_s * 1000u;
            vdev_t *v = &devs[rand_r(&drop_seed) % (unsigned)g_opt.count];
            int s = mosquitto_socket(v->mosq);
            if (v->mqtt_up && s >= 0) shutdown(s, SHUT_RDWR); /* abrupt: no DISCONNECT, the broker sends the LWT */
        }
        if (now >= next_stats) {
            next_stats = now + (uint64_t)(g_opt.stats_s * 1000.0);
            print_stats(devs, g_opt.count, false);
        }
        int n = 0;
        for (int i = 0; i < g_opt.count; i++) {
            vdev_t *v = &devs[i];
            if (!v->mqtt_up && !v->connecting) continue;
            int s = mosquitto_socket(v->mosq);
            if (s < 0) {
                link_down(v);
                continue;
            }
            pfd[n].fd = s;
            pfd[n].events = (short)(POLLIN | (mosquitto_want_write(v->mosq) ? POLLOUT : 0));
            pfd[n].revents = 0;
            pidx[n++] = i;
        }
        int wait = (int)(next_tick > mono_ms() ? next_tick - mono_ms() : 0);
        int r = poll(pfd, (nfds_t)n, n > 0 ? wait : 0);
        if (n == 0 && wait > 0) nanosleep(&(struct timespec){0, (long)wait * 1000000L}, NULL);
        if (r <= 0) continue;
        for (int k = 0; k < n; k++) {
            vdev_t *v = &devs[pidx[k]];
            short re = pfd[k].revents;
            if (re == 0) continue;
            int rc = MOSQ_ERR_SUCCESS;
            if (re & (POLLIN | POLLHUP | POLLERR)) rc = mosquitto_loop_read(v->mosq, 10);
            if (rc == MOSQ_ERR_SUCCESS && (re & POLLOUT)) rc = mosquitto_loop_write(v->mosq, 10);
            if (rc != MOSQ_ERR_SUCCESS) {
                if (mosquitto_socket(v->mosq) >= 0) mosquitto_disconnect(v->mosq);
                link_down(v);
            }
        }
    }
    print_stats(devs, g_opt.count, true);
    for (int i = 0; i < g_opt.count; i++) {
        if (devs[i].mqtt_up) {
            /* MQTT 5 reason 0x04 "disconnect with will": a powered-off device, the server sees it go offline */
            mosquitto_disconnect_v5(devs[i].mosq, 4, NULL);
            mosquitto_loop_write(devs[i].mosq, 1);
        }
        free_device(&devs[i]);
    }
    free(devs);
    free(pfd);
    free(pidx);
    mosquitto_lib_cleanup();
    return 0;
}
