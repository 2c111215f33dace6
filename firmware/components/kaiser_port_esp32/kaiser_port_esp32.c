/*
 * ESP-IDF 5.x port of the Kaiser core. Thin by design: it moves bytes and events between
 * esp-mqtt / Wi-Fi / NVS / drivers and the core, and makes no protocol decision of its own.
 *
 * Threading: esp-mqtt delivers events on its own task. The handler only copies each event into a
 * FreeRTOS queue; one "kaiser" task owns the core (kaiser_device_t is not thread-safe), drains the
 * queue, decides reconnects through kaiser_connect_due() and calls kaiser_tick().
 * Auto-reconnect of esp-mqtt is disabled so the core's backoff and circuit breaker are authoritative.
 */
#include "kaiser_port_esp32.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "esp_event.h"
#include "esp_log.h"
#include "esp_mac.h"
#include "esp_netif.h"
#include "esp_netif_sntp.h"
#include "esp_random.h"
#include "esp_system.h"
#include "esp_timer.h"
#include "esp_wifi.h"
#include "freertos/FreeRTOS.h"
#include "freertos/queue.h"
#include "freertos/task.h"
#include "kaiser_drivers_esp32.h"
#include "mqtt_client.h"
#include "nvs.h"
#include "nvs_flash.h"
#include "sdkconfig.h"

static const char *TAG = "kaiser_port";

#define NVS_NS "kaiser"
#define RX_MAX 8192 /* inbound messages above this are dropped (the core limits config to 4352 B) */

typedef enum { EV_CONNECTED, EV_DISCONNECTED, EV_SUBSCRIBED, EV_DATA } ev_type_t;

typedef struct {
    ev_type_t type;
    int mid;
    char *topic;
    char *data;
    size_t len;
} port_event_t;

static nvs_handle_t s_nvs;
static esp_netif_t *s_netif;
static volatile bool s_wifi_up;
static esp_mqtt_client_handle_t s_mqtt;
static QueueHandle_t s_events;
static bool s_mqtt_started;
static bool s_mqtt_connecting;
static bool s_mqtt_connected;
static int64_t s_connect_started_us;
#define CONNECT_TIMEOUT_US (30LL * 1000 * 1000) /* a connect attempt with no CONNECTED/DISCONNECTED event */
static char s_uri[128], s_user[64], s_pass[64];
static char s_will_topic[KAISER_TOPIC_MAX], s_will_msg[256];

/* ------------------------------------------------------------------ NVS helpers */

static bool nvs_str(const char *key, char *buf, size_t cap, const char *fallback)
{
    size_t len = cap;
    if (nvs_get_str(s_nvs, key, buf, &len) == ESP_OK) {
        return true;
    }
    snprintf(buf, cap, "%s", fallback);
    return false;
}

/* ------------------------------------------------------------------ port functions */

static int p_publish(void *ctx, const char *topic, const char *payload, size_t len, int qos, bool retain)
{
    (void)ctx;
    if (!s_mqtt_connected) {
        return -1;
    }
    /* enqueue never blocks the core task; esp-mqtt sends from its own task */
    int id = esp_mqtt_client_enqueue(s_mqtt, topic, payload, (int)len, qos, retain ? 1 : 0, true);
    return id < 0 ? -1 : 0;
}

static int p_subscribe(void *ctx, const char *topic, int qos)
{
    (void)ctx;
    return esp_mqtt_client_subscribe(s_mqtt, topic, qos);
}

static uint64_t p_now(void *ctx)
{
    (void)ctx;
    return (uint64_t)(esp_timer_get_time() / 1000);
}

static int64_t p_wall(void *ctx)
{
    (void)ctx;
    time_t t = time(NULL);
    return t > 1700000000 ? (int64_t)t : 0; /* valid only once SNTP has synced */
}

static uint32_t p_random(void *ctx)
{
    (void)ctx;
    return esp_random();
}

/* Values are stored as blobs: config arrays can exceed the 4000-byte NVS string limit. */
static int p_get(void *ctx, const char *key, char *buf, size_t cap)
{
    (void)ctx;
    size_t len = cap;
    if (nvs_get_blob(s_nvs, key, buf, &len) != ESP_OK || len == 0 || len > cap) {
        return -1;
    }
    return (int)len - 1; /* stored with its NUL */
}

static int p_set(void *ctx, const char *key, const char *val)
{
    (void)ctx;
    esp_err_t err = val == NULL ? nvs_erase_key(s_nvs, key) : nvs_set_blob(s_nvs, key, val, strlen(val) + 1);
    if (err == ESP_ERR_NVS_NOT_FOUND) {
        err = ESP_OK;
    }
    if (err == ESP_OK) {
        err = nvs_commit(s_nvs);
    }
    return err == ESP_OK ? 0 : -1;
}

static int p_gpio(void *ctx, int gpio, bool level)
{
    (void)ctx;
    return kd_gpio_write(gpio, level);
}

static int p_pwm(void *ctx, int gpio, uint8_t duty)
{
    (void)ctx;
    return kd_pwm_write(gpio, duty);
}

static int p_sensor(void *ctx, int gpio, const char *type, int32_t *raw)
{
    (void)ctx;
    return kd_sensor_read(gpio, type, raw);
}

static const char *reset_reason(void)
{
    switch (esp_reset_reason()) {
    case ESP_RST_POWERON: return "POWERON";
    case ESP_RST_EXT: return "EXT";
    case ESP_RST_SW: return "SW";
    case ESP_RST_PANIC: return "PANIC";
    case ESP_RST_INT_WDT: return "INT_WDT";
    case ESP_RST_TASK_WDT: return "TASK_WDT";
    case ESP_RST_WDT: return "WDT";
    case ESP_RST_DEEPSLEEP: return "DEEPSLEEP";
    case ESP_RST_BROWNOUT: return "BROWNOUT";
    case ESP_RST_SDIO: return "SDIO";
    default: return "UNKNOWN";
    }
}

static void p_vitals(void *ctx, kaiser_vitals_t *v)
{
    (void)ctx;
    v->heap_free = esp_get_free_heap_size();
    v->heap_min_free = esp_get_minimum_free_heap_size();
    wifi_ap_record_t ap;
    v->wifi_rssi = esp_wifi_sta_get_ap_info(&ap) == ESP_OK ? ap.rssi : 0;
    esp_netif_ip_info_t ip;
    if (s_netif && esp_netif_get_ip_info(s_netif, &ip) == ESP_OK) {
        snprintf(v->wifi_ip, sizeof v->wifi_ip, IPSTR, IP2STR(&ip.ip));
    }
    v->reset_reason = reset_reason();
}

static void p_restart(void *ctx)
{
    (void)ctx;
    esp_restart();
}

/* ------------------------------------------------------------------ Wi-Fi */

static void wifi_event(void *arg, esp_event_base_t base, int32_t id, void *data)
{
    (void)arg;
    (void)data;
    if (base == WIFI_EVENT && id == WIFI_EVENT_STA_START) {
        esp_wifi_connect();
    } else if (base == WIFI_EVENT && id == WIFI_EVENT_STA_DISCONNECTED) {
        s_wifi_up = false;
        esp_wifi_connect(); /* the driver paces retries; MQTT reconnects are the core's decision */
    } else if (base == IP_EVENT && id == IP_EVENT_STA_GOT_IP) {
        s_wifi_up = true;
    }
}

esp_err_t kaiser_port_esp32_init(void)
{
    esp_err_t err = nvs_flash_init();
    if (err == ESP_ERR_NVS_NO_FREE_PAGES || err == ESP_ERR_NVS_NEW_VERSION_FOUND) {
        ESP_ERROR_CHECK(nvs_flash_erase());
        err = nvs_flash_init();
    }
    ESP_ERROR_CHECK(err);
    ESP_ERROR_CHECK(nvs_open(NVS_NS, NVS_READWRITE, &s_nvs));

    ESP_ERROR_CHECK(esp_netif_init());
    ESP_ERROR_CHECK(esp_event_loop_create_default());
    s_netif = esp_netif_create_default_wifi_sta();
    wifi_init_config_t wcfg = WIFI_INIT_CONFIG_DEFAULT();
    ESP_ERROR_CHECK(esp_wifi_init(&wcfg));
    ESP_ERROR_CHECK(esp_event_handler_instance_register(WIFI_EVENT, ESP_EVENT_ANY_ID, wifi_event, NULL, NULL));
    ESP_ERROR_CHECK(esp_event_handler_instance_register(IP_EVENT, IP_EVENT_STA_GOT_IP, wifi_event, NULL, NULL));

    wifi_config_t wc = {0};
    char ssid[33], pass[65];
    nvs_str("wifi_ssid", ssid, sizeof ssid, CONFIG_KAISER_PORT_ESP32_WIFI_SSID);
    nvs_str("wifi_pass", pass, sizeof pass, CONFIG_KAISER_PORT_ESP32_WIFI_PASSWORD);
    memcpy(wc.sta.ssid, ssid, strnlen(ssid, sizeof wc.sta.ssid));
    memcpy(wc.sta.password, pass, strnlen(pass, sizeof wc.sta.password));
    ESP_ERROR_CHECK(esp_wifi_set_mode(WIFI_MODE_STA));
    ESP_ERROR_CHECK(esp_wifi_set_config(WIFI_IF_STA, &wc));
    ESP_ERROR_CHECK(esp_wifi_start());
    ESP_ERROR_CHECK(esp_wifi_set_ps(WIFI_PS_NONE)); /* modem sleep adds 100+ ms to MQTT latency */

    esp_sntp_config_t sntp = ESP_NETIF_SNTP_DEFAULT_CONFIG("pool.ntp.org");
    ESP_ERROR_CHECK(esp_netif_sntp_init(&sntp));

    nvs_str("mqtt_uri", s_uri, sizeof s_uri, CONFIG_KAISER_PORT_ESP32_MQTT_URI);
    nvs_str("mqtt_user", s_user, sizeof s_user, CONFIG_KAISER_PORT_ESP32_MQTT_USERNAME);
    nvs_str("mqtt_pass", s_pass, sizeof s_pass, CONFIG_KAISER_PORT_ESP32_MQTT_PASSWORD);
    return kd_init();
}

esp_err_t kaiser_port_esp32_make(kaiser_port_t *port, char *esp_id, size_t esp_id_cap, char *kaiser_id,
                                 size_t kaiser_id_cap)
{
    memset(port, 0, sizeof *port);
    port->publish = p_publish;
    port->subscribe = p_subscribe;
    port->now_ms = p_now;
    port->wall_s = p_wall;
    port->random = p_random;
    port->storage_get = p_get;
    port->storage_set = p_set;
    port->gpio_write = p_gpio;
    port->pwm_write = p_pwm;
    port->sensor_read = p_sensor;
    port->vitals = p_vitals;
    port->restart = p_restart;

    if (!nvs_str("esp_id", esp_id, esp_id_cap, "")) {
        uint8_t mac[6];
        ESP_ERROR_CHECK(esp_read_mac(mac, ESP_MAC_WIFI_STA));
        snprintf(esp_id, esp_id_cap, "ESP_%02X%02X%02X", mac[3], mac[4], mac[5]);
        ESP_ERROR_CHECK(nvs_set_str(s_nvs, "esp_id", esp_id));
        ESP_ERROR_CHECK(nvs_commit(s_nvs));
    }
    /* kaiser_id: the core reads its own persisted value (zone assign) when given ""; Kconfig is the default */
    char stored[KAISER_KAISER_ID_MAX + 2];
    snprintf(kaiser_id, kaiser_id_cap, "%s",
             p_get(NULL, "kaiser_id", stored, sizeof stored) >= 0 ? "" : CONFIG_KAISER_PORT_ESP32_KAISER_ID);
    ESP_LOGI(TAG, "esp_id %s", esp_id);
    return ESP_OK;
}

/* ------------------------------------------------------------------ MQTT */

static void mqtt_event(void *arg, esp_event_base_t base, int32_t id, void *data)
{
    (void)arg;
    (void)base;
    static char *rx;      /* reassembly of fragmented DATA events (esp-mqtt task only) */
    static char rx_topic[KAISER_TOPIC_MAX];
    esp_mqtt_event_handle_t e = data;
    port_event_t ev = {0};
    switch ((esp_mqtt_event_id_t)id) {
    case MQTT_EVENT_CONNECTED:
        ev.type = EV_CONNECTED;
        break;
    case MQTT_EVENT_DISCONNECTED:
        ev.type = EV_DISCONNECTED;
        break;
    case MQTT_EVENT_SUBSCRIBED:
        ev.type = EV_SUBSCRIBED;
        ev.mid = e->msg_id;
        break;
    case MQTT_EVENT_DATA:
        if (e->total_data_len >= RX_MAX) {
            return; /* oversize: dropped */
        }
        if (e->current_data_offset == 0) {
            free(rx);
            rx = malloc((size_t)e->total_data_len + 1);
            snprintf(rx_topic, sizeof rx_topic, "%.*s", e->topic_len, e->topic);
        }
        if (rx == NULL) {
            return;
        }
        memcpy(rx + e->current_data_offset, e->data, (size_t)e->data_len);
        if (e->current_data_offset + e->data_len < e->total_data_len) {
            return; /* wait for the remaining fragments */
        }
        ev.type = EV_DATA;
        ev.topic = strdup(rx_topic);
        ev.data = rx;
        ev.len = (size_t)e->total_data_len;
        rx = NULL;
        break;
    default:
        return;
    }
    if (xQueueSend(s_events, &ev, pdMS_TO_TICKS(100)) != pdTRUE) {
        free(ev.topic);
        free(ev.data);
    }
}

static void start_connect(kaiser_device_t *dev)
{
    kaiser_will(dev, s_will_topic, sizeof s_will_topic, s_will_msg, sizeof s_will_msg);
    esp_mqtt_client_config_t cfg = {
        .broker.address.uri = s_uri,
        .credentials.client_id = dev->esp_id,
        .credentials.username = s_user[0] ? s_user : NULL,
        .credentials.authentication.password = s_pass[0] ? s_pass : NULL,
        .session.keepalive = 60,
        .session.disable_clean_session = false, /* commands are actions: never replay stale ones */
        .session.protocol_ver = MQTT_PROTOCOL_V_5,
        .session.last_will.topic = s_will_topic,
        .session.last_will.msg = s_will_msg,
        .session.last_will.msg_len = (int)strlen(s_will_msg),
        .session.last_will.qos = 1,
        .session.last_will.retain = 1,
        .network.disable_auto_reconnect = true, /* the core's backoff + breaker decide */
        .buffer.size = RX_MAX,
        .buffer.out_size = RX_MAX,
    };
    if (!s_mqtt_started) {
        s_mqtt = esp_mqtt_client_init(&cfg);
        if (s_mqtt == NULL) {
            kaiser_on_connect_failed(dev);
            return;
        }
        esp_mqtt_client_register_event(s_mqtt, ESP_EVENT_ANY_ID, mqtt_event, NULL);
        s_mqtt_started = true;
    } else {
        /* With auto-reconnect disabled the esp-mqtt task ends after a disconnect or a failed
         * connect; stop() waits for that (it only fails when already stopped), then the LWT
         * timestamp is refreshed and the client started again. Never called from the event handler. */
        esp_mqtt_client_stop(s_mqtt);
        esp_mqtt_set_config(s_mqtt, &cfg);
    }
    s_mqtt_connecting = esp_mqtt_client_start(s_mqtt) == ESP_OK;
    s_connect_started_us = esp_timer_get_time();
    if (!s_mqtt_connecting) {
        kaiser_on_connect_failed(dev);
    }
}

static void kaiser_task(void *arg)
{
    kaiser_device_t *dev = arg;
    for (;;) {
        port_event_t ev;
        if (xQueueReceive(s_events, &ev, pdMS_TO_TICKS(CONFIG_KAISER_PORT_ESP32_TICK_MS)) == pdTRUE) {
            switch (ev.type) {
            case EV_CONNECTED:
                s_mqtt_connecting = false;
                s_mqtt_connected = true;
                kaiser_on_connected(dev);
                break;
            case EV_DISCONNECTED:
                s_mqtt_connected = false;
                s_mqtt_connecting = false;
                kaiser_on_disconnected(dev); /* also counts a failed connect attempt */
                break;
            case EV_SUBSCRIBED:
                kaiser_on_suback(dev, ev.mid);
                break;
            case EV_DATA:
                kaiser_on_message(dev, ev.topic, ev.data, ev.len);
                break;
            }
            free(ev.topic);
            free(ev.data);
        }
        if (s_mqtt_connecting && esp_timer_get_time() - s_connect_started_us > CONNECT_TIMEOUT_US) {
            esp_mqtt_client_stop(s_mqtt);
            s_mqtt_connecting = false;
            kaiser_on_connect_failed(dev);
        }
        if (s_wifi_up && !s_mqtt_connected && !s_mqtt_connecting && kaiser_connect_due(dev)) {
            start_connect(dev);
        }
        kaiser_tick(dev);
    }
}

esp_err_t kaiser_port_esp32_start(kaiser_device_t *dev)
{
    s_events = xQueueCreate(32, sizeof(port_event_t));
    if (s_events == NULL) {
        return ESP_ERR_NO_MEM;
    }
    BaseType_t ok = xTaskCreatePinnedToCore(kaiser_task, "kaiser", 12288, dev, 5, NULL, 1);
    return ok == pdPASS ? ESP_OK : ESP_ERR_NO_MEM;
}
