/* Kaiser firmware entry point: wiring only. Every decision lives in components/kaiser_core. */
#include "esp_err.h"
#include "kaiser_core.h"
#include "kaiser_port_esp32.h"

static kaiser_device_t s_device;

void app_main(void)
{
    ESP_ERROR_CHECK(kaiser_port_esp32_init());

    kaiser_port_t port;
    char esp_id[KAISER_ESP_ID_MAX + 1];
    char kaiser_id[KAISER_KAISER_ID_MAX + 1];
    ESP_ERROR_CHECK(kaiser_port_esp32_make(&port, esp_id, sizeof esp_id, kaiser_id, sizeof kaiser_id));

    kaiser_options_t opt = kaiser_default_options();
    opt.heartbeat_ms = CONFIG_KAISER_APP_HEARTBEAT_S * 1000u;
    opt.data_ms = CONFIG_KAISER_APP_DEFAULT_DATA_S * 1000u;
    opt.data_phase_spread = true; /* a fleet powered on together must not publish its readings in step */
    ESP_ERROR_CHECK(kaiser_init(&s_device, &port, &opt, esp_id, kaiser_id) == 0 ? ESP_OK : ESP_ERR_INVALID_ARG);

    ESP_ERROR_CHECK(kaiser_port_esp32_start(&s_device));
}
