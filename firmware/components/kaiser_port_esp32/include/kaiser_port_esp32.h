/**
 * @file kaiser_port_esp32.h
 * @brief ESP-IDF 5.x implementation of kaiser_port_t. Thin: no protocol decision lives here.
 */
#pragma once

#include <stddef.h>

#include "esp_err.h"
#include "kaiser_core.h"

#ifdef __cplusplus
extern "C" {
#endif

/** NVS, netif, default event loop, Wi-Fi STA (power save off) and the hardware drivers. */
esp_err_t kaiser_port_esp32_init(void);

/**
 * Fill @p port and read the identity: esp_id from NVS (generated from the STA MAC as
 * ESP_XXXXXX and persisted on first boot) and kaiser_id from NVS or Kconfig.
 */
esp_err_t kaiser_port_esp32_make(kaiser_port_t *port, char *esp_id, size_t esp_id_cap, char *kaiser_id,
                                 size_t kaiser_id_cap);

/** Create the esp-mqtt client (MQTT 5, LWT from kaiser_will()) and the task that runs the core. */
esp_err_t kaiser_port_esp32_start(kaiser_device_t *dev);

#ifdef __cplusplus
}
#endif
